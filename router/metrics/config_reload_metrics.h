// Prometheus metrics of configuration reloads (SIGHUP): how many, by result.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

namespace conduit::metrics {

class ConfigReloadMetrics {
 public:
  explicit ConfigReloadMetrics(prometheus::Registry& registry);

  // The configuration and its rules were put in force (`ok`), or refused and the old ones kept.
  void Reloaded(bool ok) { (ok ? ok_ : failed_).Increment(); }

 private:
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Counter& ok_;
  prometheus::Counter& failed_;
};

}  // namespace conduit::metrics
