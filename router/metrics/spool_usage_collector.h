// Spool and disk gauges computed when Prometheus scrapes, so they are never stale: bytes and
// instances held, free disk (a fresh statvfs), and whether the spool is refusing data.
#pragma once

#include <prometheus/collectable.h>

#include <vector>

namespace conduit::spool {
class SpoolUsage;
}

namespace conduit::metrics {

class SpoolUsageCollector : public prometheus::Collectable {
 public:
  explicit SpoolUsageCollector(spool::SpoolUsage& usage) : usage_(usage) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  spool::SpoolUsage& usage_;
};

}  // namespace conduit::metrics
