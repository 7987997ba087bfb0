// Prometheus metrics of the rules: reloads, staleness, matches per rule, unrouted and
// discarded instances, evaluation time.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>

#include "router/metrics/ingest_metrics.h"
#include "rules/rule_set.h"

namespace conduit::metrics {

class RoutingMetrics {
 public:
  explicit RoutingMetrics(prometheus::Registry& registry);

  void ReloadSucceeded(std::uint64_t generation);
  void ReloadFailed();
  // One instance's decision, and how long evaluating the rules took.
  void Decided(const rules::RoutingDecision& decision, double seconds);

 private:
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Gauge& stale_;
  prometheus::Gauge& generation_;
  BoundedLabelCounters matches_;
  prometheus::Counter& unrouted_;
  BoundedLabelCounters discarded_;
  prometheus::Counter& defaulted_;
  prometheus::Histogram& evaluation_seconds_;
};

}  // namespace conduit::metrics
