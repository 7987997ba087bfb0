// Whether the daemon should be sent work (/readyz, `conduit status`): the spool recovered, the
// destination queues rebuilt from it, rules in force, the DICOM listener open, and not stopping.
// Each step is marked by the thread that completes it; anyone may ask.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

namespace conduit::app {

class Readiness {
 public:
  // `rules_loaded` tells whether rules are in force (RulesRuntime::Loaded).
  explicit Readiness(std::function<bool()> rules_loaded) : rules_loaded_(std::move(rules_loaded)) {}

  void SpoolRecovered() { spool_recovered_ = true; }
  void QueuesRecovered() { queues_recovered_ = true; }
  void ListenerOpen() { listener_open_ = true; }
  void Stopping() { stopping_ = true; }

  // nullopt when ready; else the first step missing, one line for the operator.
  std::optional<std::string> NotReadyReason() const;

 private:
  std::function<bool()> rules_loaded_;
  std::atomic<bool> spool_recovered_{false};
  std::atomic<bool> queues_recovered_{false};
  std::atomic<bool> listener_open_{false};
  std::atomic<bool> stopping_{false};
};

}  // namespace conduit::app
