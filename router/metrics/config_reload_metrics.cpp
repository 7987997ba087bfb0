#include "router/metrics/config_reload_metrics.h"

namespace conduit::metrics {

ConfigReloadMetrics::ConfigReloadMetrics(prometheus::Registry& registry)
    : reloads_(prometheus::BuildCounter()
                   .Name("conduit_config_reloads_total")
                   .Help("Configuration reloads (SIGHUP), by result (ok, failed)")
                   .Register(registry)),
      // Both series from the start, so that a rate over them is defined before the first reload;
      // result values as conduit_rules_reloads_total has them.
      ok_(reloads_.Add({{"result", "ok"}})),
      failed_(reloads_.Add({{"result", "failed"}})) {}

}  // namespace conduit::metrics
