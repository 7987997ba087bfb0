#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "router/app/io_probe.h"
#include "router/app/liveness_monitor.h"
#include "router/app/readiness.h"
#include "router/app/service_watchdog.h"

namespace conduit::app {
namespace {

using Clock = LivenessMonitor::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(LivenessMonitor, NamesEveryLoopThatOwesProgressBeyondTheLimit) {
  const Clock::time_point now = Clock::now();
  LivenessMonitor monitor(seconds(30));
  monitor.Watch("idle workers", [] { return std::optional<Clock::time_point>(); });
  monitor.Watch("fresh tick", [now] { return std::optional(now - seconds(1)); });
  EXPECT_EQ(monitor.FindStall(now), std::nullopt);

  monitor.Watch("spool commits", [now] { return std::optional(now - seconds(42)); });
  monitor.Watch("forwarding tick", [now] { return std::optional(now - seconds(31)); });
  const std::optional<std::string> stall = monitor.FindStall(now);
  ASSERT_TRUE(stall);
  EXPECT_EQ(*stall, "spool commits: no progress for 42 s; forwarding tick: no progress for 31 s");
}

TEST(IoProbe, PendingUntilTheIoContextRunsItAndOneAtATime) {
  boost::asio::io_context io;
  IoProbe probe(io);
  EXPECT_EQ(probe.PendingSince(), std::nullopt);
  probe.Post();
  const auto since = probe.PendingSince();
  ASSERT_TRUE(since);
  std::this_thread::sleep_for(milliseconds(5));
  probe.Post();  // still the first one
  EXPECT_EQ(probe.PendingSince(), since);
  EXPECT_EQ(io.poll(), 1U) << "one handler posted, not two";
  EXPECT_EQ(probe.PendingSince(), std::nullopt);
}

// Records what the watchdog tells the service manager.
struct Notifications {
  std::mutex mutex;
  std::vector<std::string> states;
  void Add(std::string_view state) {
    std::lock_guard lock(mutex);
    states.emplace_back(state);
  }
  std::size_t Count(std::string_view prefix) {
    std::lock_guard lock(mutex);
    std::size_t count = 0;
    for (const std::string& state : states) count += state.starts_with(prefix) ? 1 : 0;
    return count;
  }
};

TEST(ServiceWatchdog, PingsOnlyWhileEveryLoopProgresses) {
  std::atomic<bool> stuck{false};
  LivenessMonitor monitor(milliseconds(50));
  monitor.Watch("test loop", [&stuck]() -> std::optional<Clock::time_point> {
    if (stuck) return Clock::now() - seconds(1);
    return Clock::now();
  });
  Notifications notified;
  std::atomic<int> checks{0};
  ServiceWatchdog watchdog(
      monitor, ServiceWatchdogOptions{milliseconds(1000), std::chrono::microseconds(40000),
                                      [&](std::string_view state) { notified.Add(state); },
                                      [&] { ++checks; }});
  watchdog.Start();
  // WATCHDOG_USEC=40 ms: pings every 20 ms, checks every 10 ms.
  std::this_thread::sleep_for(milliseconds(300));
  const std::size_t healthy_pings = notified.Count("WATCHDOG=1");
  EXPECT_GE(healthy_pings, 3U);
  EXPECT_GE(checks.load(), 5);
  EXPECT_EQ(watchdog.Problem(), std::nullopt);

  stuck = true;
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_TRUE(watchdog.Problem());
  EXPECT_NE(watchdog.Problem()->find("test loop: no progress"), std::string::npos);
  const std::size_t pings_when_stuck = notified.Count("WATCHDOG=1");
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(notified.Count("WATCHDOG=1"), pings_when_stuck) << "no pings while stuck";
  EXPECT_EQ(notified.Count("STATUS=stuck: test loop"), 1U) << "said once, not every check";

  stuck = false;
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(watchdog.Problem(), std::nullopt);
  EXPECT_GT(notified.Count("WATCHDOG=1"), pings_when_stuck) << "pings resume";
  watchdog.Stop();
  const std::size_t final_pings = notified.Count("WATCHDOG=1");
  std::this_thread::sleep_for(milliseconds(60));
  EXPECT_EQ(notified.Count("WATCHDOG=1"), final_pings) << "none after Stop";
}

TEST(ServiceWatchdog, WithoutSystemdItChecksButNeverPings) {
  LivenessMonitor monitor(milliseconds(10));
  monitor.Watch("stuck loop", [] { return std::optional(Clock::now() - seconds(5)); });
  Notifications notified;
  ServiceWatchdog watchdog(
      monitor,
      ServiceWatchdogOptions{
          milliseconds(5), std::nullopt, [&](std::string_view state) { notified.Add(state); }, {}});
  watchdog.Start();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_TRUE(watchdog.Problem());
  EXPECT_EQ(notified.Count("WATCHDOG=1"), 0U);
}

TEST(Readiness, ReportsTheFirstMissingStepThenStopping) {
  bool rules = false;
  Readiness readiness([&rules] { return rules; });
  EXPECT_EQ(readiness.NotReadyReason(), "starting: recovering the spool");
  readiness.SpoolRecovered();
  EXPECT_EQ(readiness.NotReadyReason(),
            "starting: rebuilding the destination queues from the spool");
  readiness.QueuesRecovered();
  EXPECT_EQ(readiness.NotReadyReason(), "starting: no rules in force yet");
  rules = true;
  EXPECT_EQ(readiness.NotReadyReason(), "starting: the DICOM listener is not open yet");
  readiness.ListenerOpen();
  EXPECT_EQ(readiness.NotReadyReason(), std::nullopt);
  readiness.Stopping();
  EXPECT_EQ(readiness.NotReadyReason(), "stopping: no new associations are accepted");
}

}  // namespace
}  // namespace conduit::app
