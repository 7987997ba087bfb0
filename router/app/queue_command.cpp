#include "router/app/queue_command.h"

#include <chrono>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "router/app/admin_client.h"
#include "router/app/cli_config.h"

namespace conduit::app {
namespace {

constexpr std::string_view kQueueUsage = R"(Usage:
  conduit queue [--config CONFIG] list
      Every destination and the size of its queue.
  conduit queue [--config CONFIG] show DEST
      The queue of one destination in detail.
  conduit queue [--config CONFIG] retry DEST [--dead-letter] [--study UID]
      Retry now instead of after the backoff; --dead-letter moves dead-letter items back into
      the queue; --study limits either to one study.
  conduit queue [--config CONFIG] purge DEST (--dead-letter | --study UID | --all)
      Drop items for good: the dead-letter items, the items of one study (both options
      together: the dead-letter items of that study), or everything queued for DEST.

The command goes to the running daemon over its admin socket (admin.socket in CONFIG).
CONFIG defaults to /etc/conduit/conduit.yaml when it exists, else the embedded default.

Exit status: 0 done; 1 the daemon refused or failed the command (its reason on stderr);
2 usage or configuration error; 3 the daemon could not be reached or did not answer.
)";

// Longer than the daemon's own 10 s deadline per connection, so that its answer wins.
constexpr std::chrono::seconds kReplyTimeout{15};

int QueueUsage(std::string_view complaint) {
  std::cerr << "conduit queue: " << complaint << "\n\n" << kQueueUsage;
  return 2;
}

struct Command {
  std::filesystem::path config;
  std::vector<std::string> words;  // sent to the daemon: "queue", the verb, DEST, options
};

// Checks the syntax; a complaint for the usage message, or nullopt when fine.
std::optional<std::string> Parse(std::span<const std::string_view> args, Command& command) {
  std::optional<std::string_view> verb;
  std::vector<std::string_view> positional;
  bool dead_letter = false;
  bool all = false;
  std::optional<std::string_view> study;
  command.words = {"queue"};
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    const bool has_value = i + 1 < args.size();
    if (arg == "--config") {
      if (!has_value) return "--config needs a FILE";
      if (!command.config.empty()) return "--config given twice";
      command.config = std::string(args[++i]);
      continue;  // for us, not for the daemon
    }
    command.words.emplace_back(arg);
    if (!verb) {
      if (arg != "list" && arg != "show" && arg != "retry" && arg != "purge") {
        return "unknown command '" + std::string(arg) + "'";
      }
      verb = arg;
    } else if (arg == "--dead-letter" && (*verb == "retry" || *verb == "purge")) {
      if (dead_letter) return "--dead-letter given twice";
      dead_letter = true;
    } else if (arg == "--all" && *verb == "purge") {
      if (all) return "--all given twice";
      all = true;
    } else if (arg == "--study" && (*verb == "retry" || *verb == "purge")) {
      if (!has_value || args[i + 1].starts_with("--")) return "--study needs a study UID";
      if (study) return "--study given twice";
      study = args[++i];
      command.words.emplace_back(*study);
    } else if (arg.starts_with("-")) {
      return "unknown option for " + std::string(*verb) + ": " + std::string(arg);
    } else {
      positional.push_back(arg);
    }
  }
  if (!verb) return "a command is required (list, show, retry or purge)";
  if (*verb == "list") {
    if (!positional.empty()) return "list takes no DEST";
    return std::nullopt;
  }
  if (positional.empty()) return std::string(*verb) + " needs a DEST";
  if (positional.size() > 1) {
    return std::string(*verb) + " takes one DEST; also got '" + std::string(positional[1]) + "'";
  }
  if (*verb == "purge") {
    if (!dead_letter && !study && !all) return "purge needs --dead-letter, --study UID or --all";
    if (all && (dead_letter || study)) return "purge --all takes no other option";
  }
  return std::nullopt;
}

}  // namespace

int RunQueueCommand(std::span<const std::string_view> args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help")) {
    std::cout << kQueueUsage;
    return 0;
  }
  Command command;
  if (auto complaint = Parse(args, command)) return QueueUsage(*complaint);
  const auto config = LoadConfigForCommand(ConfigPathOrSystem(command.config));
  if (!config) return 2;
  auto reply = SendAdminRequest(config->admin.socket, command.words, kReplyTimeout);
  if (!reply) {
    std::cerr << "conduit queue: " << reply.error() << "\n";
    return 3;
  }
  if (reply->ok) {
    std::cout << reply->text;
    return 0;
  }
  std::cerr << (reply->text.empty() ? "conduit queue: the daemon refused the command\n"
                                    : reply->text);
  return 1;
}

}  // namespace conduit::app
