#include "router/metrics/forward_metrics.h"

#include "router/dimse/status.h"

namespace conduit::metrics {
namespace {

// A destination could answer with any 16-bit status; past this many distinct ones the rest
// share status="other".
constexpr std::size_t kMaxStatusValues = 32;

prometheus::Histogram::BucketBoundaries SendBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
}

}  // namespace

ForwardMetrics::ForwardMetrics(prometheus::Registry& registry)
    : sends_(prometheus::BuildCounter()
                 .Name("conduit_forward_sends_total")
                 .Help("C-STORE requests answered by a destination, by DIMSE status")
                 .Register(registry)),
      delivered_(prometheus::BuildCounter()
                     .Name("conduit_forward_delivered_total")
                     .Help("Instances a destination confirmed")
                     .Register(registry)),
      retries_(prometheus::BuildCounter()
                   .Name("conduit_forward_retries_total")
                   .Help("Failed attempts that were scheduled for a retry")
                   .Register(registry)),
      dead_lettered_(prometheus::BuildCounter()
                         .Name("conduit_forward_dead_lettered_total")
                         .Help("Instances moved to a destination's dead-letter queue")
                         .Register(registry)),
      connection_failures_(prometheus::BuildCounter()
                               .Name("conduit_forward_connection_failures_total")
                               .Help("Associations that could not be opened or broke")
                               .Register(registry)),
      possible_duplicates_(prometheus::BuildCounter()
                               .Name("conduit_forward_possible_duplicates_total")
                               .Help("Instances sent again after a restart although the "
                                     "previous run may have delivered them")
                               .Register(registry)),
      late_arrivals_(prometheus::BuildCounter()
                         .Name("conduit_forward_late_arrivals_total")
                         .Help("Instances of a study or series that had already been sent")
                         .Register(registry)),
      bytes_sent_(prometheus::BuildCounter()
                      .Name("conduit_forward_bytes_total")
                      .Help("Dataset bytes sent to a destination")
                      .Register(registry)),
      http_responses_(prometheus::BuildCounter()
                          .Name("conduit_forward_http_responses_total")
                          .Help("HTTP answers of a STOW-RS or S3 destination, by status code")
                          .Register(registry)),
      probes_(prometheus::BuildCounter()
                  .Name("conduit_forward_probes_total")
                  .Help("Probes (C-ECHO, an HTTP request or a folder check) of a destination whose "
                        "circuit is open, by result (answered, failed)")
                  .Register(registry)),
      associations_active_(prometheus::BuildGauge()
                               .Name("conduit_forward_associations_active")
                               .Help("Open associations (DIMSE) or requests in flight (HTTP) to a "
                                     "destination")
                               .Register(registry)),
      send_seconds_(prometheus::BuildHistogram()
                        .Name("conduit_forward_send_seconds")
                        .Help("From request to response: per instance for C-STORE and "
                              "folders, per HTTP request for STOW-RS and S3")
                        .Register(registry)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("conduit_forward_queue_depth")
                       .Help("Instances a destination's queue holds, by state")
                       .Register(registry)),
      oldest_age_(prometheus::BuildGauge()
                      .Name("conduit_forward_oldest_item_age_seconds")
                      .Help("Age of the oldest instance still owed to a destination")
                      .Register(registry)),
      circuit_state_(prometheus::BuildGauge()
                         .Name("conduit_forward_circuit_state")
                         .Help("0 closed (sending), 1 open (destination failing), 2 probing")
                         .Register(registry)),
      limits_(prometheus::BuildGauge()
                  .Name("conduit_forward_limit")
                  .Help("A destination's configured limits")
                  .Register(registry)) {}

std::unique_ptr<DestinationMetrics> ForwardMetrics::ForDestination(
    const config::DestinationConfig* config, const std::string& name) {
  if (config) {
    const auto limit = [&](const char* what, double value) {
      limits_.Add({{"destination", name}, {"limit", what}}).Set(value);
    };
    switch (config->kind) {
      case config::DestinationKind::kDimse:
        limit("max_associations", config->max_associations);
        limit("max_instances_per_association", config->max_instances_per_association);
        limit("max_pdu_bytes", config->max_pdu_bytes);
        limit("connect_timeout_seconds", static_cast<double>(config->connect_timeout.count()));
        limit("response_timeout_seconds", static_cast<double>(config->response_timeout.count()));
        limit("idle_timeout_seconds", static_cast<double>(config->idle_timeout.count()));
        break;
      case config::DestinationKind::kStow:
      case config::DestinationKind::kS3:
        limit("parallel_requests", config->http.parallel_requests);
        limit("connect_timeout_seconds", static_cast<double>(config->connect_timeout.count()));
        limit("request_timeout_seconds", static_cast<double>(config->http.request_timeout.count()));
        if (config->kind == config::DestinationKind::kStow) {
          limit("max_instances_per_request", config->stow.max_instances_per_request);
          limit("max_request_bytes", static_cast<double>(config->stow.max_request_bytes));
        } else {
          limit("multipart_threshold_bytes",
                static_cast<double>(config->s3.multipart_threshold_bytes));
          limit("multipart_part_bytes", static_cast<double>(config->s3.multipart_part_bytes));
        }
        break;
      case config::DestinationKind::kFolder:
        break;
    }
    limit("retry_max_delay_seconds",
          std::chrono::duration<double>(config->retry.max_delay).count());
    limit("retry_max_age_seconds", std::chrono::duration<double>(config->retry.max_age).count());
    limit("breaker_failures", config->retry.breaker_failures);
  }
  return std::make_unique<DestinationMetrics>(*this, name);
}

DestinationMetrics::DestinationMetrics(ForwardMetrics& families, const std::string& destination)
    : families_(families),
      destination_(destination),
      delivered_(families.delivered_.Add({{"destination", destination}})),
      retries_(families.retries_.Add({{"destination", destination}})),
      dead_lettered_(families.dead_lettered_.Add({{"destination", destination}})),
      connection_failures_(families.connection_failures_.Add({{"destination", destination}})),
      possible_duplicates_(families.possible_duplicates_.Add({{"destination", destination}})),
      late_arrivals_(families.late_arrivals_.Add({{"destination", destination}})),
      bytes_sent_(families.bytes_sent_.Add({{"destination", destination}})),
      probes_answered_(
          families.probes_.Add({{"destination", destination}, {"result", "answered"}})),
      probes_failed_(families.probes_.Add({{"destination", destination}, {"result", "failed"}})),
      associations_active_(families.associations_active_.Add({{"destination", destination}})),
      send_seconds_(families.send_seconds_.Add({{"destination", destination}}, SendBuckets())),
      depth_ready_(families.queue_depth_.Add({{"destination", destination}, {"state", "ready"}})),
      depth_retry_wait_(
          families.queue_depth_.Add({{"destination", destination}, {"state", "retry_wait"}})),
      depth_held_(families.queue_depth_.Add({{"destination", destination}, {"state", "held"}})),
      depth_in_flight_(
          families.queue_depth_.Add({{"destination", destination}, {"state", "in_flight"}})),
      depth_dead_letter_(
          families.queue_depth_.Add({{"destination", destination}, {"state", "dead_letter"}})),
      oldest_age_(families.oldest_age_.Add({{"destination", destination}})),
      circuit_state_(families.circuit_state_.Add({{"destination", destination}})) {}

void DestinationMetrics::Sent(std::uint16_t status, double seconds, std::uint64_t bytes) {
  send_seconds_.Observe(seconds);
  bytes_sent_.Increment(static_cast<double>(bytes));
  prometheus::Counter* counter = nullptr;
  {
    std::lock_guard lock(status_mutex_);
    auto found = sends_by_status_.find(status);
    if (found == sends_by_status_.end()) {
      const std::string label =
          sends_by_status_.size() < kMaxStatusValues ? dimse::FormatStatus(status) : "other";
      counter = &families_.sends_.Add({{"destination", destination_}, {"status", label}});
      if (sends_by_status_.size() < kMaxStatusValues) sends_by_status_.emplace(status, counter);
    } else {
      counter = found->second;
    }
  }
  counter->Increment();
}

void DestinationMetrics::Transferred(double seconds, std::uint64_t bytes) {
  send_seconds_.Observe(seconds);
  bytes_sent_.Increment(static_cast<double>(bytes));
}

void DestinationMetrics::HttpAnswered(long status) {
  prometheus::Counter* counter = nullptr;
  {
    std::lock_guard lock(status_mutex_);
    auto found = responses_by_code_.find(status);
    if (found == responses_by_code_.end()) {
      const bool room = responses_by_code_.size() < kMaxStatusValues;
      const std::string label = room ? std::to_string(status) : "other";
      counter = &families_.http_responses_.Add({{"destination", destination_}, {"code", label}});
      if (room) responses_by_code_.emplace(status, counter);
    } else {
      counter = found->second;
    }
  }
  counter->Increment();
}

void DestinationMetrics::Probed(bool answered) {
  (answered ? probes_answered_ : probes_failed_).Increment();
}

void DestinationMetrics::SetQueue(std::size_t ready, std::size_t retry_wait, std::size_t held,
                                  std::size_t in_flight, std::size_t dead_letter,
                                  double oldest_age_seconds, int circuit_state) {
  depth_ready_.Set(static_cast<double>(ready));
  depth_retry_wait_.Set(static_cast<double>(retry_wait));
  depth_held_.Set(static_cast<double>(held));
  depth_in_flight_.Set(static_cast<double>(in_flight));
  depth_dead_letter_.Set(static_cast<double>(dead_letter));
  oldest_age_.Set(oldest_age_seconds);
  circuit_state_.Set(circuit_state);
}

}  // namespace conduit::metrics
