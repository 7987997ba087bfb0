// Prometheus metrics of the ingest side: associations, instances, C-STORE statuses, spool and
// disk, and the configured limits. Components get this (or a part of it) injected; nothing
// here is global.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "router/config/config.h"

namespace conduit::metrics {

// A counter family keyed by one label whose values come from outside (AE titles): at most
// `max_values` distinct values get their own series, the rest share "other", so a misbehaving
// sender cannot blow up the number of series.
class BoundedLabelCounters {
 public:
  BoundedLabelCounters(prometheus::Family<prometheus::Counter>& family, std::string label,
                       std::size_t max_values);
  prometheus::Counter& Get(std::string_view value);

 private:
  prometheus::Family<prometheus::Counter>& family_;
  std::string label_;
  std::size_t max_values_;
  std::mutex mutex_;
  std::unordered_map<std::string, prometheus::Counter*> counters_;
};

class IngestMetrics {
 public:
  IngestMetrics(prometheus::Registry& registry, const config::Config& config);

  void AssociationOpened();
  void AssociationClosed();
  void AssociationRejected(std::string_view reason);
  void AssociationAborted(std::string_view cause);  // "peer", "protocol_error", "timeout"
  void EchoAnswered();
  void InstanceStored(std::string_view calling_ae, std::uint64_t dataset_bytes);
  void StoreAnswered(std::uint16_t status);

  prometheus::Histogram& commit_seconds() { return commit_seconds_; }

 private:
  prometheus::Gauge& associations_active_;
  prometheus::Counter& associations_total_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& aborted_;
  prometheus::Counter& echoes_;
  BoundedLabelCounters instances_by_ae_;
  BoundedLabelCounters bytes_by_ae_;
  prometheus::Family<prometheus::Counter>& store_responses_;
  prometheus::Histogram& commit_seconds_;
};

}  // namespace conduit::metrics
