#include "router/metrics/ingest_metrics.h"

#include "router/dimse/status.h"

namespace conduit::metrics {
namespace {

// Distinct calling AEs that get their own series; an imaging centre has tens, not hundreds.
constexpr std::size_t kMaxCallingAeSeries = 100;

// The label values the listener uses (router/net), exported at 0 from the start: a series
// that first appears at 1 hides that first event from rate() and increase(), and so from
// alerts and the dashboard. A value not listed here still gets its series when it happens.
constexpr const char* kRejectReasons[] = {"called_ae_unknown",         "calling_ae_not_allowed",
                                          "network_not_allowed",       "application_context",
                                          "protocol_version",          "max_associations",
                                          "max_associations_per_peer", "spool_full",
                                          "connection_flood"};
constexpr const char* kAbortCauses[] = {"peer", "protocol_error", "timeout", "connection_lost"};

// From about 0.5 ms (a commit sharing its journal flush) to several seconds (a saturated disk).
const prometheus::Histogram::BucketBoundaries kCommitBuckets{
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.0, 5.0};

void PublishLimits(prometheus::Registry& registry, const config::Config& config) {
  auto& limits = prometheus::BuildGauge()
                     .Name("conduit_config_limit")
                     .Help("Configured limits, by name (units in the name)")
                     .Register(registry);
  const auto& listener = config.listener;
  const auto& spool = config.spool;
  const std::pair<const char*, double> values[] = {
      {"max_associations", listener.max_associations},
      {"max_associations_per_peer", listener.max_associations_per_peer},
      {"max_pdu_bytes", listener.max_pdu_bytes},
      {"artim_timeout_seconds", static_cast<double>(listener.artim_timeout.count())},
      {"idle_timeout_seconds", static_cast<double>(listener.idle_timeout.count())},
      {"spool_max_bytes", static_cast<double>(spool.max_bytes)},
      {"spool_min_free_bytes", static_cast<double>(spool.min_free_bytes)},
      {"spool_max_instances", static_cast<double>(spool.max_instances)},
      {"spool_sync_threads", spool.sync_threads},
      {"network_threads", config.network_threads},
  };
  for (const auto& [name, value] : values) limits.Add({{"limit", name}}).Set(value);
}

}  // namespace

BoundedLabelCounters::BoundedLabelCounters(prometheus::Family<prometheus::Counter>& family,
                                           std::string label, std::size_t max_values)
    : family_(family), label_(std::move(label)), max_values_(max_values) {}

prometheus::Counter& BoundedLabelCounters::Get(std::string_view value) {
  std::lock_guard lock(mutex_);
  std::string key(value);
  if (auto found = counters_.find(key); found != counters_.end()) return *found->second;
  if (counters_.size() >= max_values_) key = "other";
  auto [slot, inserted] = counters_.try_emplace(key, nullptr);
  if (inserted) slot->second = &family_.Add({{label_, key}});
  return *slot->second;
}

IngestMetrics::IngestMetrics(prometheus::Registry& registry, const config::Config& config)
    : associations_active_(prometheus::BuildGauge()
                               .Name("conduit_associations_active")
                               .Help("Associations currently open on the listener")
                               .Register(registry)
                               .Add({})),
      associations_total_(prometheus::BuildCounter()
                              .Name("conduit_associations_total")
                              .Help("TCP connections accepted by the listener")
                              .Register(registry)
                              .Add({})),
      rejected_(prometheus::BuildCounter()
                    .Name("conduit_associations_rejected_total")
                    .Help("Associations refused with A-ASSOCIATE-RJ, by reason")
                    .Register(registry)),
      aborted_(prometheus::BuildCounter()
                   .Name("conduit_associations_aborted_total")
                   .Help("Associations that ended without a release, by cause")
                   .Register(registry)),
      echoes_(prometheus::BuildCounter()
                  .Name("conduit_cecho_total")
                  .Help("C-ECHO requests answered")
                  .Register(registry)
                  .Add({})),
      instances_by_ae_(prometheus::BuildCounter()
                           .Name("conduit_instances_received_total")
                           .Help("Instances durably spooled, by calling AE")
                           .Register(registry),
                       "calling_ae", kMaxCallingAeSeries),
      bytes_by_ae_(prometheus::BuildCounter()
                       .Name("conduit_received_bytes_total")
                       .Help("Dataset bytes durably spooled, by calling AE")
                       .Register(registry),
                   "calling_ae", kMaxCallingAeSeries),
      store_responses_(prometheus::BuildCounter()
                           .Name("conduit_cstore_responses_total")
                           .Help("C-STORE responses sent, by DIMSE status")
                           .Register(registry)),
      commit_seconds_(prometheus::BuildHistogram()
                          .Name("conduit_spool_commit_seconds")
                          .Help("Time from the last byte of an instance to it being durable")
                          .Register(registry)
                          .Add({}, kCommitBuckets)) {
  for (const char* reason : kRejectReasons) {
    rejected_.Add({{"reason", reason}});
  }
  for (const char* cause : kAbortCauses) {
    aborted_.Add({{"cause", cause}});
  }
  PublishLimits(registry, config);
}

void IngestMetrics::AssociationOpened() {
  associations_active_.Increment();
  associations_total_.Increment();
}
void IngestMetrics::AssociationClosed() { associations_active_.Decrement(); }
void IngestMetrics::AssociationRejected(std::string_view reason) {
  rejected_.Add({{"reason", std::string(reason)}}).Increment();
}
void IngestMetrics::AssociationAborted(std::string_view cause) {
  aborted_.Add({{"cause", std::string(cause)}}).Increment();
}
void IngestMetrics::EchoAnswered() { echoes_.Increment(); }
void IngestMetrics::InstanceStored(std::string_view calling_ae, std::uint64_t dataset_bytes) {
  instances_by_ae_.Get(calling_ae).Increment();
  bytes_by_ae_.Get(calling_ae).Increment(static_cast<double>(dataset_bytes));
}
void IngestMetrics::StoreAnswered(std::uint16_t status) {
  store_responses_.Add({{"status", dimse::FormatStatus(status)}}).Increment();
}

}  // namespace conduit::metrics
