#include "router/app/status_command.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <string>

#include "router/app/admin_client.h"
#include "router/app/cli_config.h"

namespace conduit::app {
namespace {

constexpr std::string_view kStatusUsage = R"(Usage:
  conduit status [--config CONFIG]
      The running daemon at a glance: whether it is ready and healthy; the listener and its open
      associations; the configuration and rules in force and how their last reload went; the
      spool against its limits; each destination's state, queue and oldest instance; the
      transcoding workers.

The request goes to the daemon over its admin socket (admin.socket in CONFIG).
CONFIG defaults to /etc/conduit/conduit.yaml when it exists, else the embedded default.

Exit status: 0 the status was printed; 1 the daemon refused the request; 2 usage or
configuration error; 3 the daemon could not be reached or did not answer.
)";

// Longer than the daemon's own 10 s deadline per connection, so that its answer wins.
constexpr std::chrono::seconds kReplyTimeout{15};

int StatusUsage(std::string_view complaint) {
  std::cerr << "conduit status: " << complaint << "\n\n" << kStatusUsage;
  return 2;
}

}  // namespace

int RunStatusCommand(std::span<const std::string_view> args) {
  std::filesystem::path config_path;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--help" || args[i] == "-h" || args[i] == "help") {
      std::cout << kStatusUsage;
      return 0;
    }
    if (args[i] != "--config")
      return StatusUsage("unknown argument '" + std::string(args[i]) + "'");
    if (i + 1 == args.size()) return StatusUsage("--config needs a FILE");
    if (!config_path.empty()) return StatusUsage("--config given twice");
    config_path = std::string(args[++i]);
  }
  const auto config = LoadConfigForCommand(ConfigPathOrSystem(config_path));
  if (!config) return 2;
  auto reply = SendAdminRequest(config->admin.socket, {"status"}, kReplyTimeout);
  if (!reply) {
    std::cerr << "conduit status: " << reply.error() << "\n";
    return 3;
  }
  if (!reply->ok) {
    std::cerr << (reply->text.empty() ? "conduit status: the daemon refused the request\n"
                                      : "conduit status: " + reply->text);
    return 1;
  }
  std::cout << reply->text;
  return 0;
}

}  // namespace conduit::app
