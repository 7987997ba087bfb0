// systemd's service protocol (sd_notify(3), sd_watchdog_enabled(3)): readiness, reloads, status
// lines and watchdog pings. Without NOTIFY_SOCKET (not run by systemd) every call does nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace conduit::app {

// Sends `state`, newline-separated assignments such as "READY=1\nSTATUS=...", to the service
// manager.
void NotifyServiceManager(std::string_view state);

// "RELOADING=1" with the MONOTONIC_USEC that systemd 253's Type=notify-reload wants (older
// versions ignore it); READY=1 must follow once the reload is over, whatever its outcome.
void NotifyReloading();

// The watchdog interval (WATCHDOG_USEC) when the service manager expects pings from this process
// (WatchdogSec= in the unit); nullopt otherwise.
std::optional<std::chrono::microseconds> ServiceWatchdogInterval();

}  // namespace conduit::app
