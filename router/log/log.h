// One-line log records to stderr (journald adds its own metadata under systemd). Each record is
// a single write(2), so lines from different threads never interleave.
#pragma once

#include <sstream>
#include <string_view>

#include "router/config/config.h"

namespace conduit::log {

void SetLevel(config::LogLevel level);
// "debug", "info", "warning" or "error", as log_level spells it.
std::string_view LevelName(config::LogLevel level);
bool Enabled(config::LogLevel level);
void Write(config::LogLevel level, std::string_view message);

// Log(kInfo, "association ", id, " from ", peer): the parts are only formatted when enabled.
template <typename... Parts>
void Log(config::LogLevel level, const Parts&... parts) {
  if (!Enabled(level)) return;
  std::ostringstream line;
  (line << ... << parts);
  Write(level, line.str());
}

template <typename... Parts>
void Debug(const Parts&... parts) {
  Log(config::LogLevel::kDebug, parts...);
}
template <typename... Parts>
void Info(const Parts&... parts) {
  Log(config::LogLevel::kInfo, parts...);
}
template <typename... Parts>
void Warning(const Parts&... parts) {
  Log(config::LogLevel::kWarning, parts...);
}
template <typename... Parts>
void Error(const Parts&... parts) {
  Log(config::LogLevel::kError, parts...);
}

}  // namespace conduit::log
