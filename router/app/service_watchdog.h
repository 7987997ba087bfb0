// The daemon's own watchdog: a thread that, once a period, nudges the loops that cannot report
// by themselves (an IoProbe), asks the LivenessMonitor whether every loop progresses and keeps
// the verdict for /healthz. When systemd expects pings (WatchdogSec=), it sends WATCHDOG=1 at
// half the interval, but only while the verdict is good: a stuck daemon stops pinging and
// systemd restarts it, which a thread that pinged unconditionally would prevent.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "router/app/liveness_monitor.h"

namespace conduit::app {

struct ServiceWatchdogOptions {
  std::chrono::milliseconds check_period{1000};  // shortened to a quarter of systemd_interval
  // WATCHDOG_USEC; nullopt: no pings are expected (the checks still run, for /healthz).
  std::optional<std::chrono::microseconds> systemd_interval;
  std::function<void(std::string_view state)> notify;  // NotifyServiceManager, or a test's
  std::function<void()> before_check;                  // e.g. IoProbe::Post; may be empty
};

class ServiceWatchdog {
 public:
  ServiceWatchdog(const LivenessMonitor& monitor, ServiceWatchdogOptions options);
  ~ServiceWatchdog();  // stops the thread
  ServiceWatchdog(const ServiceWatchdog&) = delete;
  ServiceWatchdog& operator=(const ServiceWatchdog&) = delete;

  void Start();
  void Stop();  // idempotent; no pings after it returns
  // The last check's verdict: nullopt when every loop progressed, else what is stuck.
  std::optional<std::string> Problem() const;

 private:
  void Run();

  const LivenessMonitor& monitor_;
  ServiceWatchdogOptions options_;
  std::chrono::milliseconds check_period_;
  mutable std::mutex mutex_;
  std::condition_variable stop_requested_;
  bool stop_ = false;
  std::optional<std::string> problem_;
  std::thread thread_;
};

}  // namespace conduit::app
