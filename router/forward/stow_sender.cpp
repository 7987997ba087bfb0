#include "router/forward/stow_sender.h"

#include <utility>

#include "router/dimse/status.h"
#include "router/forward/http_status.h"

namespace conduit::forward {
namespace {

// A failed instance's FailureReason read like a C-STORE status (PS3.18 10.5.3 uses the same
// codes): 0xA7xx passing, 0xA9xx / 0xCxxx permanent, unknown ones retried until the maximum
// age. Without a reason, the HTTP status decides.
ArchiveResult ClassifyFailedInstance(const http::StowInstanceResult& result, long http_status) {
  if (!result.failure_reason) {
    const ArchiveResult by_status = ClassifyHttpStatus(http_status);
    // A 200 or 202 that names an instance failed without saying why: try it again.
    return by_status == ArchiveResult::kDelivered ? ArchiveResult::kTransient : by_status;
  }
  const auto reason = static_cast<std::uint16_t>(*result.failure_reason);
  switch (ClassifyStoreStatus(reason, /*warning_is_success=*/true)) {
    case DeliveryOutcome::kDelivered:
      return ArchiveResult::kDelivered;
    case DeliveryOutcome::kTransient:
      return ArchiveResult::kTransient;
    case DeliveryOutcome::kPermanent:
      break;
  }
  return ArchiveResult::kPermanent;
}

}  // namespace

StowSender::StowSender(const config::DestinationConfig& config, const std::atomic<bool>& cancel,
                       std::function<void(long status)> count_response)
    : max_objects_(config.stow.max_instances_per_request),
      max_bytes_(config.stow.max_request_bytes),
      settings_(config.stow),
      http_(ClientOptionsFor(config, cancel)),
      client_(http_, config.stow.url),
      count_response_(std::move(count_response)) {
  if (settings_.auth == config::StowSettings::Auth::kBasic) {
    secret_ = std::make_unique<SecretFile>(settings_.password_file);
  } else if (settings_.auth == config::StowSettings::Auth::kBearer) {
    secret_ = std::make_unique<SecretFile>(settings_.token_file);
  }
}

Result<http::StowAuth, SecretFileError> StowSender::CurrentAuth() {
  http::StowAuth auth;
  switch (settings_.auth) {
    case config::StowSettings::Auth::kNone:
      return auth;
    case config::StowSettings::Auth::kBasic:
      auth.kind = http::StowAuth::Kind::kBasic;
      auth.username = settings_.username;
      break;
    case config::StowSettings::Auth::kBearer:
      auth.kind = http::StowAuth::Kind::kBearer;
      break;
  }
  auto secret = secret_->Read();
  if (!secret) return secret.error();
  (auth.kind == http::StowAuth::Kind::kBasic ? auth.password : auth.token) = secret.value();
  return auth;
}

std::optional<std::string> StowSender::Probe() {
  auto auth = CurrentAuth();
  if (!auth) return auth.error().message;
  auto answer = client_.Probe(auth.value());
  if (!answer) return answer.error().detail;
  count_response_(answer.value());
  const long status = answer.value();
  if (status >= 500 || status == 401 || status == 403 || status == 429) {
    return "DICOMweb service answered HTTP " + std::to_string(status);
  }
  return std::nullopt;
}

ArchiveDelivery StowSender::Deliver(const std::vector<ArchiveObject>& objects) {
  auto auth = CurrentAuth();
  if (!auth) {
    // Our configuration cannot be used right now: nothing was sent; the breaker keeps trying.
    ArchiveDelivery delivery = ArchiveDelivery::AllSame(
        objects.size(), ArchiveResult::kNotAttempted, auth.error().message);
    delivery.destination_failure = auth.error().message;
    return delivery;
  }
  std::vector<http::StowInstance> instances;
  instances.reserve(objects.size());
  for (const ArchiveObject& object : objects) {
    instances.push_back({object.sop_instance_uid, object.item->sop_class_uid, object.part10});
  }
  auto answer = client_.Store(instances, auth.value());
  if (!answer) return TransportFailure(objects.size(), answer.error());
  const http::StowResponse& response = answer.value();
  count_response_(response.http_status);

  ArchiveDelivery delivery;
  const ArchiveResult by_status = ClassifyHttpStatus(response.http_status);
  // 429 and 503 say the server is overloaded: all workers wait as long as it asks.
  if ((response.http_status == 429 || response.http_status == 503) && response.retry_after) {
    delivery.retry_after = response.retry_after;
  }
  if (response.http_status >= 500) delivery.destination_failure = response.detail;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const http::StowInstanceResult* result =
        i < response.instances.size() ? &response.instances[i] : nullptr;
    if (by_status == ArchiveResult::kTransient) {
      delivery.objects.push_back({ArchiveResult::kTransient, response.detail});
    } else if (result && result->stored) {
      delivery.objects.push_back({ArchiveResult::kDelivered, {}});
    } else if (result) {
      // The answer's own summary names only the first failure: each instance gets its own.
      const std::string detail =
          result->detail.empty()
              ? response.detail
              : "HTTP " + std::to_string(response.http_status) + ": " + result->detail;
      delivery.objects.push_back({ClassifyFailedInstance(*result, response.http_status), detail});
    } else {
      delivery.objects.push_back({by_status == ArchiveResult::kDelivered
                                      ? ArchiveResult::kDelivered
                                      : ArchiveResult::kPermanent,
                                  response.detail});
    }
  }
  return delivery;
}

}  // namespace conduit::forward
