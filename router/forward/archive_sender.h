// What the archive forwarder (STOW-RS, S3, folder) asks of a kind of destination: deliver a few
// ready Part 10 objects and say what became of each, or check whether the destination is back.
// One sender per worker thread, so a sender keeps its own connection and needs no locking.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "router/forward/dataset_preparer.h"
#include "router/forward/delivery_outcome.h"
#include "router/forward/queued_instance.h"
#include "router/http/http_client.h"

namespace conduit::forward {

// One instance as it leaves the router: a Part 10 file made of a fresh meta group (no private
// spool record) and the dataset bytes as spooled, or as prepared for this destination.
struct ArchiveObject {
  QueuedInstancePtr item;
  std::string sop_instance_uid;  // as sent: new after a lossy transcode
  std::string transfer_syntax_uid;
  http::Body part10;
  std::uint64_t bytes = 0;
  // Owns the in-memory dataset that `part10` may point into.
  std::shared_ptr<const PreparedDataset> prepared;
};

enum class ArchiveResult {
  kDelivered,
  kTransient,    // retried with backoff
  kPermanent,    // dead-lettered
  kNotAttempted  // never reached the destination (it was down, or we are stopping): requeued
};

struct ArchiveObjectOutcome {
  ArchiveResult result = ArchiveResult::kDelivered;
  std::string reason;  // for the failed ones: the dead-letter reason or the retry's cause
};

struct ArchiveDelivery {
  std::vector<ArchiveObjectOutcome> objects;  // one per object given, in the same order
  // Set when the destination itself failed (no answer, refused connection, unusable folder):
  // counts towards its circuit breaker.
  std::optional<std::string> destination_failure;
  // The destination asked to be left alone for this long (HTTP 429 or 503 with Retry-After).
  std::optional<std::chrono::seconds> retry_after;

  static ArchiveDelivery AllSame(std::size_t count, ArchiveResult result,
                                 const std::string& reason) {
    ArchiveDelivery delivery;
    delivery.objects.assign(count, ArchiveObjectOutcome{result, reason});
    return delivery;
  }
};

class ArchiveSender {
 public:
  virtual ~ArchiveSender() = default;
  // How much one Deliver may carry; consecutive ready instances of one study are put together
  // up to these (the first is taken whatever its size).
  virtual std::size_t max_objects() const { return 1; }
  virtual std::uint64_t max_bytes() const { return std::numeric_limits<std::uint64_t>::max(); }
  virtual ArchiveDelivery Deliver(const std::vector<ArchiveObject>& objects) = 0;
  // For an open circuit: nullopt when the destination is usable again, otherwise why not.
  virtual std::optional<std::string> Probe() = 0;
};

// Makes a worker's sender. `cancel` is raised when the forwarder stops: a sender cuts off what
// it is doing (HTTP requests in flight) when it sees it.
using ArchiveSenderFactory =
    std::function<std::unique_ptr<ArchiveSender>(const std::atomic<bool>& cancel)>;

}  // namespace conduit::forward
