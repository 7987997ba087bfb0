#include "router/app/service_watchdog.h"

#include <algorithm>
#include <utility>

#include "router/log/log.h"

namespace conduit::app {

ServiceWatchdog::ServiceWatchdog(const LivenessMonitor& monitor, ServiceWatchdogOptions options)
    : monitor_(monitor), options_(std::move(options)), check_period_(options_.check_period) {
  if (options_.systemd_interval) {
    // Checked four times per interval, pinged at most every half interval: a ping is never
    // later than the interval even when a check lands just before it is due.
    const auto quarter =
        std::chrono::duration_cast<std::chrono::milliseconds>(*options_.systemd_interval / 4);
    check_period_ = std::max(std::chrono::milliseconds(1), std::min(check_period_, quarter));
  }
}

ServiceWatchdog::~ServiceWatchdog() { Stop(); }

void ServiceWatchdog::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ServiceWatchdog::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  stop_requested_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<std::string> ServiceWatchdog::Problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

void ServiceWatchdog::Run() {
  using Clock = LivenessMonitor::Clock;
  std::optional<Clock::duration> ping_interval;
  if (options_.systemd_interval) {
    ping_interval = std::chrono::duration_cast<Clock::duration>(*options_.systemd_interval / 2);
  }
  Clock::time_point next_ping = Clock::now();
  std::unique_lock lock(mutex_);
  while (!stop_) {
    lock.unlock();
    if (options_.before_check) options_.before_check();
    const Clock::time_point now = Clock::now();
    std::optional<std::string> problem = monitor_.FindStall(now);
    lock.lock();
    if (problem != problem_) {
      if (problem) {
        log::Error("watchdog: ", *problem,
                   ping_interval ? "; no longer pinging systemd's watchdog, which will restart "
                                   "the service"
                                 : "; /healthz answers 503");
        options_.notify("STATUS=stuck: " + *problem);
      } else {
        log::Info("watchdog: every loop makes progress again");
        options_.notify("STATUS=running: every loop makes progress again");
      }
      problem_ = problem;
    }
    if (ping_interval && !problem && now >= next_ping) {
      options_.notify("WATCHDOG=1");
      next_ping = now + *ping_interval;
    }
    stop_requested_.wait_for(lock, check_period_, [this] { return stop_; });
  }
}

}  // namespace conduit::app
