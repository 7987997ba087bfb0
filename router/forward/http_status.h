// How the archive forwarders read an HTTP answer or the lack of one (PS3.18 10.5.3 for STOW-RS;
// S3 behaves the same way): what becomes of the instances, and whether the destination itself
// is failing.
#pragma once

#include <atomic>
#include <string>

#include "router/config/config.h"
#include "router/forward/archive_sender.h"
#include "router/http/http_client.h"

namespace conduit::forward {

// 408, 429 and 5xx are passing (retried: the server is busy or failing for now); any other 4xx
// is permanent (the same request would be refused again: bad data, no permission, unknown
// bucket); 2xx is success.
ArchiveResult ClassifyHttpStatus(long status);

// No answer came. Refused or unresolved connections and TLS failures mean nothing reached the
// server (the instances are requeued untouched); a timeout or a broken connection may have
// (retried with backoff). Either way the destination failed. Cancellation is shutdown.
ArchiveDelivery TransportFailure(std::size_t objects, const http::HttpError& error);

// An HTTP archive destination's client settings: timeouts and TLS from its configuration, cut
// off when `cancel` is raised.
http::ClientOptions ClientOptionsFor(const config::DestinationConfig& config,
                                     const std::atomic<bool>& cancel);

}  // namespace conduit::forward
