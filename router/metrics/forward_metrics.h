// Prometheus metrics of the forwarders, one set of series per destination (the label values
// are configured destination names, so the cardinality is bounded by the configuration).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "router/config/config.h"

namespace conduit::metrics {

class ForwardMetrics;

// The series of one destination; thread-safe (prometheus-cpp metrics are atomic).
class DestinationMetrics {
 public:
  DestinationMetrics(ForwardMetrics& families, const std::string& destination);

  void Sent(std::uint16_t status, double seconds, std::uint64_t bytes);  // a C-STORE answered
  void Transferred(double seconds, std::uint64_t bytes);  // an HTTP request or a file written
  void HttpAnswered(long status);
  void Delivered() { delivered_.Increment(); }
  void Retried() { retries_.Increment(); }
  void DeadLettered() { dead_lettered_.Increment(); }
  void ConnectionFailed() { connection_failures_.Increment(); }
  void PossibleDuplicate() { possible_duplicates_.Increment(); }
  void LateArrival() { late_arrivals_.Increment(); }
  void AssociationOpened() { associations_active_.Increment(); }
  void AssociationClosed() { associations_active_.Decrement(); }
  void Probed(bool answered);
  // Refreshed by the forwarding service's tick.
  void SetQueue(std::size_t ready, std::size_t retry_wait, std::size_t held, std::size_t in_flight,
                std::size_t dead_letter, double oldest_age_seconds, int circuit_state);

 private:
  ForwardMetrics& families_;
  std::string destination_;
  std::mutex status_mutex_;
  std::map<std::uint16_t, prometheus::Counter*> sends_by_status_;  // at most kMaxStatusValues
  std::map<long, prometheus::Counter*> responses_by_code_;         // at most kMaxStatusValues
  prometheus::Counter& delivered_;
  prometheus::Counter& retries_;
  prometheus::Counter& dead_lettered_;
  prometheus::Counter& connection_failures_;
  prometheus::Counter& possible_duplicates_;
  prometheus::Counter& late_arrivals_;
  prometheus::Counter& bytes_sent_;
  prometheus::Counter& probes_answered_;
  prometheus::Counter& probes_failed_;
  prometheus::Gauge& associations_active_;
  prometheus::Histogram& send_seconds_;
  prometheus::Gauge& depth_ready_;
  prometheus::Gauge& depth_retry_wait_;
  prometheus::Gauge& depth_held_;
  prometheus::Gauge& depth_in_flight_;
  prometheus::Gauge& depth_dead_letter_;
  prometheus::Gauge& oldest_age_;
  prometheus::Gauge& circuit_state_;
};

class ForwardMetrics {
 public:
  explicit ForwardMetrics(prometheus::Registry& registry);
  // The destination's series, with its configured limits exported as gauges.
  std::unique_ptr<DestinationMetrics> ForDestination(const config::DestinationConfig* config,
                                                     const std::string& name);

 private:
  friend class DestinationMetrics;
  prometheus::Family<prometheus::Counter>& sends_;
  prometheus::Family<prometheus::Counter>& delivered_;
  prometheus::Family<prometheus::Counter>& retries_;
  prometheus::Family<prometheus::Counter>& dead_lettered_;
  prometheus::Family<prometheus::Counter>& connection_failures_;
  prometheus::Family<prometheus::Counter>& possible_duplicates_;
  prometheus::Family<prometheus::Counter>& late_arrivals_;
  prometheus::Family<prometheus::Counter>& bytes_sent_;
  prometheus::Family<prometheus::Counter>& http_responses_;
  prometheus::Family<prometheus::Counter>& probes_;
  prometheus::Family<prometheus::Gauge>& associations_active_;
  prometheus::Family<prometheus::Histogram>& send_seconds_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& oldest_age_;
  prometheus::Family<prometheus::Gauge>& circuit_state_;
  prometheus::Family<prometheus::Gauge>& limits_;
};

}  // namespace conduit::metrics
