#include "router/log/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <string>

namespace conduit::log {
namespace {

std::atomic<config::LogLevel> g_level{config::LogLevel::kInfo};

}  // namespace

std::string_view LevelName(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::kDebug:
      return "debug";
    case config::LogLevel::kInfo:
      return "info";
    case config::LogLevel::kWarning:
      return "warning";
    case config::LogLevel::kError:
      return "error";
  }
  return "?";
}

void SetLevel(config::LogLevel level) { g_level = level; }

bool Enabled(config::LogLevel level) { return level >= g_level.load(std::memory_order_relaxed); }

void Write(config::LogLevel level, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::string line;
  line.reserve(message.size() + 48);
  line.append(stamp).append(".");
  const std::string ms = std::to_string(millis);
  line.append(3 - ms.size(), '0').append(ms).append("Z ");
  line.append(LevelName(level)).append(" ").append(message).append("\n");
  [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace conduit::log
