// Which of the daemon's loops have stopped making progress, for /healthz and the systemd
// watchdog. Each loop tells since when it owes progress: a periodic loop, the time of its last
// round; workers that wait for jobs, the start of the job in hand, or nothing while idle (an
// idle worker is not stuck).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace conduit::app {

class LivenessMonitor {
 public:
  using Clock = std::chrono::steady_clock;
  using OwedSince = std::function<std::optional<Clock::time_point>()>;

  // A loop owing progress for longer than `stall_limit` is stuck.
  explicit LivenessMonitor(std::chrono::milliseconds stall_limit) : stall_limit_(stall_limit) {}

  // Adds a loop to watch, named for the operator ("spool commits"). Before the first Check;
  // `owed_since` is then called from the watchdog's thread and must be thread-safe.
  void Watch(std::string loop, OwedSince owed_since);

  // nullopt when every loop progressed within the limit; else which did not, e.g.
  // "spool commits: no progress for 42 s".
  std::optional<std::string> FindStall(Clock::time_point now) const;

  std::chrono::milliseconds stall_limit() const { return stall_limit_; }

 private:
  struct Loop {
    std::string name;
    OwedSince owed_since;
  };
  std::chrono::milliseconds stall_limit_;
  std::vector<Loop> loops_;
};

}  // namespace conduit::app
