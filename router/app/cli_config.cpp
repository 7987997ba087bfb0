#include "router/app/cli_config.h"

#include <iostream>
#include <variant>

#include "router/config/config_loader.h"
#include "router/config/default_config.h"

namespace conduit::app {

std::optional<config::Config> LoadConfigForCommand(const std::filesystem::path& path) {
  const config::ConfigResult result =
      path.empty() ? config::LoadConfigText(config::kDefaultConfigYaml, "<embedded default config>")
                   : config::LoadConfigFile(path);
  if (const auto* errors = std::get_if<std::vector<config::ConfigError>>(&result)) {
    for (const auto& error : *errors) std::cerr << error.ToString() << "\n";
    return std::nullopt;
  }
  return std::get<config::Config>(result);
}

std::filesystem::path ConfigPathOrSystem(const std::filesystem::path& given) {
  if (!given.empty()) return given;
  std::error_code ignored;
  if (std::filesystem::exists(kSystemConfigPath, ignored)) return kSystemConfigPath;
  return {};
}

}  // namespace conduit::app
