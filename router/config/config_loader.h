// Turns the YAML configuration file into a validated Config, or into the full list of what is
// wrong with it, each problem pointing at its file, line and column.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "router/config/config.h"

namespace conduit::config {

struct ConfigError {
  std::string file;  // source name, as given to the loader
  int line = 0;      // 1-based; 0 when the problem is the file as a whole (e.g. unreadable)
  int column = 0;    // 1-based; 0 together with line 0
  std::string message;

  // "file:line:column: message", or "file: message" when there is no line.
  std::string ToString() const;
};

// A valid configuration, or every error found (never empty), in file order.
using ConfigResult = std::variant<Config, std::vector<ConfigError>>;

// Parses `yaml_text`; `source_name` only labels the errors. Empty text, or text that is only
// comments, yields the defaults of config.h, and every key left out keeps its default.
ConfigResult LoadConfigText(std::string_view yaml_text, std::string_view source_name);

// Reads and parses the file at `path`. An unreadable file yields one error with line 0.
ConfigResult LoadConfigFile(const std::filesystem::path& path);

}  // namespace conduit::config
