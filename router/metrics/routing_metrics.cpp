#include "router/metrics/routing_metrics.h"

namespace conduit::metrics {
namespace {

// Rule names come from the admin's file, not from senders, but are still bounded.
constexpr std::size_t kMaxRuleSeries = 1000;

// From 1 us (a handful of rules) to 10 ms (something is badly wrong).
const prometheus::Histogram::BucketBoundaries kEvaluationBuckets{
    0.000001, 0.000002, 0.000005, 0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.01};

}  // namespace

RoutingMetrics::RoutingMetrics(prometheus::Registry& registry)
    : reloads_(prometheus::BuildCounter()
                   .Name("conduit_rules_reloads_total")
                   .Help("Rules file loads, by result (ok, failed)")
                   .Register(registry)),
      stale_(prometheus::BuildGauge()
                 .Name("conduit_rules_stale")
                 .Help("1 when the rules file on disk failed to load and older rules are in force")
                 .Register(registry)
                 .Add({})),
      generation_(prometheus::BuildGauge()
                      .Name("conduit_rules_generation")
                      .Help("Generation of the rules in force; grows by one per successful load")
                      .Register(registry)
                      .Add({})),
      matches_(prometheus::BuildCounter()
                   .Name("conduit_rule_matches_total")
                   .Help("Instances each rule matched")
                   .Register(registry),
               "rule", kMaxRuleSeries),
      unrouted_(prometheus::BuildCounter()
                    .Name("conduit_instances_unrouted_total")
                    .Help("Instances no rule and no default routed anywhere (kept in the spool)")
                    .Register(registry)
                    .Add({})),
      discarded_(prometheus::BuildCounter()
                     .Name("conduit_instances_discarded_total")
                     .Help("Instances acknowledged and dropped by a discard rule, by rule")
                     .Register(registry),
                 "rule", kMaxRuleSeries),
      defaulted_(prometheus::BuildCounter()
                     .Name("conduit_instances_default_routed_total")
                     .Help("Instances no rule matched that took the default route")
                     .Register(registry)
                     .Add({})),
      evaluation_seconds_(prometheus::BuildHistogram()
                              .Name("conduit_rules_evaluation_seconds")
                              .Help("Time to evaluate the rules for one instance")
                              .Register(registry)
                              .Add({}, kEvaluationBuckets)) {
  // Both results exported at 0 from the start, so that the first failed reload is an increase
  // (an alert on increase() would miss a series that first appears at 1).
  reloads_.Add({{"result", "ok"}});
  reloads_.Add({{"result", "failed"}});
}

void RoutingMetrics::ReloadSucceeded(std::uint64_t generation) {
  reloads_.Add({{"result", "ok"}}).Increment();
  stale_.Set(0);
  generation_.Set(static_cast<double>(generation));
}

void RoutingMetrics::ReloadFailed() {
  reloads_.Add({{"result", "failed"}}).Increment();
  stale_.Set(1);
}

void RoutingMetrics::Decided(const rules::RoutingDecision& decision, double seconds) {
  evaluation_seconds_.Observe(seconds);
  for (const std::string& rule : decision.matched_rules) matches_.Get(rule).Increment();
  if (decision.discarded) {
    discarded_.Get(decision.discarded_by).Increment();
  } else if (decision.routes.empty()) {
    unrouted_.Increment();
  } else if (decision.used_default) {
    defaulted_.Increment();
  }
}

}  // namespace conduit::metrics
