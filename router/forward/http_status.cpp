#include "router/forward/http_status.h"

namespace conduit::forward {

ArchiveResult ClassifyHttpStatus(long status) {
  if (status >= 200 && status < 300) return ArchiveResult::kDelivered;
  if (status == 408 || status == 429 || status >= 500) return ArchiveResult::kTransient;
  return ArchiveResult::kPermanent;
}

ArchiveDelivery TransportFailure(std::size_t objects, const http::HttpError& error) {
  const std::string reason =
      std::string(http::HttpFailureName(error.kind)) + " failure: " + error.detail;
  switch (error.kind) {
    case http::HttpFailure::kCancelled:
      return ArchiveDelivery::AllSame(objects, ArchiveResult::kNotAttempted, reason);
    case http::HttpFailure::kBody: {
      // Our side: a spooled or transcoded file could not be read. Retried (it may be a passing
      // I/O error) until the maximum age; the destination is fine.
      return ArchiveDelivery::AllSame(objects, ArchiveResult::kTransient, reason);
    }
    case http::HttpFailure::kConnect:
    case http::HttpFailure::kTls: {
      ArchiveDelivery delivery =
          ArchiveDelivery::AllSame(objects, ArchiveResult::kNotAttempted, reason);
      delivery.destination_failure = reason;
      return delivery;
    }
    case http::HttpFailure::kTimeout:
    case http::HttpFailure::kOther:
      break;
  }
  ArchiveDelivery delivery = ArchiveDelivery::AllSame(objects, ArchiveResult::kTransient, reason);
  delivery.destination_failure = reason;
  return delivery;
}

http::ClientOptions ClientOptionsFor(const config::DestinationConfig& config,
                                     const std::atomic<bool>& cancel) {
  http::ClientOptions options;
  options.connect_timeout = config.connect_timeout;
  options.request_timeout = config.http.request_timeout;
  options.tls.verify = config.http.tls_verify;
  options.tls.ca_file = config.http.tls_ca_file;
  options.cancel = &cancel;
  return options;
}

}  // namespace conduit::forward
