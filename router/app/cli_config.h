// Loading the configuration for a command: the named file, or the system file when present, or
// the embedded default. Errors are printed to stderr as file:line:column lines.
#pragma once

#include <filesystem>
#include <optional>

#include "router/config/config.h"

namespace conduit::app {

inline constexpr const char* kSystemConfigPath = "/etc/conduit/conduit.yaml";

// `path` empty: the embedded default configuration.
std::optional<config::Config> LoadConfigForCommand(const std::filesystem::path& path);

// The file named on the command line, else the system configuration if it exists, else none.
std::filesystem::path ConfigPathOrSystem(const std::filesystem::path& given);

}  // namespace conduit::app
