#include "router/app/systemd_notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdint>
#include <string>

namespace conduit::app {

void NotifyServiceManager(std::string_view state) {
  const std::string text(state);
  ::sd_notify(0, text.c_str());
}

void NotifyReloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  const std::uint64_t microseconds = static_cast<std::uint64_t>(now.tv_sec) * 1000000 +
                                     static_cast<std::uint64_t>(now.tv_nsec) / 1000;
  NotifyServiceManager("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(microseconds));
}

std::optional<std::chrono::microseconds> ServiceWatchdogInterval() {
  std::uint64_t microseconds = 0;
  // > 0: enabled for this process (WATCHDOG_PID, when set, names us).
  if (::sd_watchdog_enabled(0, &microseconds) <= 0 || microseconds == 0) return std::nullopt;
  return std::chrono::microseconds(microseconds);
}

}  // namespace conduit::app
