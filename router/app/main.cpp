// The `conduit` command line: one binary, a few subcommands.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "router/app/queue_command.h"
#include "router/app/rules_command.h"
#include "router/app/server.h"
#include "router/app/status_command.h"
#include "router/config/config_loader.h"
#include "router/config/default_config.h"

namespace {

constexpr std::string_view kVersion = "0.1.0";

constexpr std::string_view kUsage = R"(Conduit - a DICOM edge router

Usage:
  conduit serve [--config FILE]   run the router (default: the embedded configuration,
                                  listening on port 11112 as AE CONDUIT, spool in ./var/spool)
  conduit config check FILE       validate a configuration file; errors as FILE:LINE:COLUMN
  conduit config default          print the embedded default configuration (all keys, commented)
  conduit rules check [--config CONFIG] [RULES]
                                  validate a rules file; errors as RULES:LINE:COLUMN
  conduit rules explain [--config CONFIG] [--rules RULES] FILE.dcm...
                                  show, rule by rule, how each file would be routed
                                  (`conduit rules` alone lists all options)
  conduit queue [--config CONFIG] list | show DEST | retry DEST [--dead-letter] [--study UID]
              | purge DEST (--dead-letter | --study UID | --all)
                                  inspect and act on the running daemon's destination queues
                                  over its admin socket (`conduit queue --help`: details)
  conduit status [--config CONFIG]
                                  the running daemon at a glance: readiness, listener, rules,
                                  spool, destinations, transcoding (over its admin socket)
  conduit --help                  this text
  conduit --version               the version

Signals to `conduit serve`: SIGTERM/SIGINT stop it (open associations get 10 s); SIGHUP reloads
the configuration file's destinations and log_level, and the rules file, without dropping
associations (a file that fails validation is refused and what runs stays).

Exit status: 0 on success, 1 on a runtime failure (queue, status: the daemon refused the
command), 2 on a usage or configuration error, 3 when `conduit queue` or `conduit status`
cannot reach the daemon.
)";

int Usage(std::string_view complaint) {
  std::cerr << "conduit: " << complaint << "\n\n" << kUsage;
  return 2;
}

// Prints every error and returns nullptr, or the loaded configuration.
std::optional<conduit::config::Config> Load(const conduit::config::ConfigResult& result) {
  if (const auto* errors = std::get_if<std::vector<conduit::config::ConfigError>>(&result)) {
    for (const auto& error : *errors) std::cerr << error.ToString() << "\n";
    return std::nullopt;
  }
  return std::get<conduit::config::Config>(result);
}

int Serve(const std::vector<std::string_view>& args) {
  std::optional<conduit::config::Config> config;
  std::filesystem::path file;  // read again on SIGHUP; none for the embedded default
  if (args.empty()) {
    config = Load(conduit::config::LoadConfigText(conduit::config::kDefaultConfigYaml,
                                                  "<embedded default config>"));
  } else if (args.size() == 2 && args[0] == "--config") {
    file = std::string(args[1]);
    config = Load(conduit::config::LoadConfigFile(file));
  } else {
    return Usage("serve takes only --config FILE");
  }
  if (!config) return 2;
  return conduit::app::RunServer(std::move(*config), std::move(file));
}

int Config(const std::vector<std::string_view>& args) {
  if (args.size() == 1 && args[0] == "default") {
    std::cout << conduit::config::kDefaultConfigYaml;
    return 0;
  }
  if (args.size() == 2 && args[0] == "check") {
    if (!Load(conduit::config::LoadConfigFile(std::string(args[1])))) return 2;
    std::cout << args[1] << ": OK\n";
    return 0;
  }
  return Usage("config takes 'check FILE' or 'default'");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("a subcommand is required");
  const std::string_view command = args.front();
  args.erase(args.begin());
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "--version") {
    std::cout << "conduit " << kVersion << "\n";
    return 0;
  }
  if (command == "serve") return Serve(args);
  if (command == "config") return Config(args);
  if (command == "rules") return conduit::app::RunRulesCommand(args);
  if (command == "queue") return conduit::app::RunQueueCommand(args);
  if (command == "status") return conduit::app::RunStatusCommand(args);
  return Usage("unknown subcommand '" + std::string(command) + "'");
}
