#include "router/app/liveness_monitor.h"

#include <utility>

namespace conduit::app {

void LivenessMonitor::Watch(std::string loop, OwedSince owed_since) {
  loops_.push_back(Loop{std::move(loop), std::move(owed_since)});
}

std::optional<std::string> LivenessMonitor::FindStall(Clock::time_point now) const {
  std::optional<std::string> stalls;
  for (const Loop& loop : loops_) {
    const std::optional<Clock::time_point> since = loop.owed_since();
    if (!since || now - *since <= stall_limit_) continue;
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now - *since).count();
    const std::string stall = loop.name + ": no progress for " + std::to_string(seconds) + " s";
    stalls = stalls ? *stalls + "; " + stall : stall;
  }
  return stalls;
}

}  // namespace conduit::app
