#include "router/metrics/spool_usage_collector.h"

#include <prometheus/metric_family.h>

#include <string>

#include "router/spool/spool_usage.h"

namespace conduit::metrics {
namespace {

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  prometheus::ClientMetric metric;
  metric.gauge.value = value;
  return prometheus::MetricFamily{
      std::move(name), std::move(help), prometheus::MetricType::Gauge, {metric}};
}

}  // namespace

std::vector<prometheus::MetricFamily> SpoolUsageCollector::Collect() const {
  usage_.RefreshFreeSpace();
  return {
      Gauge("conduit_spool_bytes", "Bytes held in the spool, committed and being received",
            static_cast<double>(usage_.bytes())),
      Gauge("conduit_spool_instances", "Committed instances held in the spool",
            static_cast<double>(usage_.instances())),
      Gauge("conduit_disk_free_bytes", "Free bytes on the spool's filesystem",
            static_cast<double>(usage_.free_bytes())),
      Gauge("conduit_spool_accepting", "1 while the spool accepts data, 0 while it refuses (full)",
            usage_.HasRoom() ? 1.0 : 0.0),
  };
}

}  // namespace conduit::metrics
