#include "router/forward/archive_forwarder.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <string>
#include <utility>

#include "router/log/log.h"
#include "router/spool/part10_header.h"

namespace conduit::forward {
namespace asio = boost::asio;

namespace {

// An idle worker looks again this often even without a wake-up: a throttle (Retry-After) or a
// backoff pause ends without one.
constexpr std::chrono::seconds kIdlePoll{1};

std::string MetaHeader(const QueuedInstance& item, const std::string& sop_instance_uid,
                       const std::string& transfer_syntax_uid, const std::string& our_ae) {
  const spool::Part10Header header = spool::BuildPart10Header(
      {item.sop_class_uid, sop_instance_uid, transfer_syntax_uid, our_ae, ""},
      /*reserve_spool_record=*/false);
  return {header.bytes.begin(), header.bytes.end()};
}

}  // namespace

ArchiveForwarder::ArchiveForwarder(asio::io_context& io, Destination& destination,
                                   const config::DestinationConfig& config,
                                   PreparationServices& services, ArchiveSenderFactory make_sender,
                                   unsigned workers)
    : io_(io),
      destination_(destination),
      config_(config),
      services_(services),
      make_sender_(std::move(make_sender)),
      worker_count_(workers == 0 ? 1 : workers) {}

ArchiveForwarder::~ArchiveForwarder() {
  Stop();
  for (std::thread& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void ArchiveForwarder::Start() {
  destination_.SetWake([this] { Wake(); });
  for (unsigned i = 0; i < worker_count_; ++i) {
    ++running_workers_;
    workers_.emplace_back([this] { RunWorker(); });
  }
}

void ArchiveForwarder::Wake() {
  {
    std::lock_guard lock(wake_mutex_);
    ++wake_generation_;
  }
  wake_.notify_all();
}

void ArchiveForwarder::Stop() {
  if (stopping_.exchange(true)) return;
  destination_.SetWake({});
  Wake();
}

bool ArchiveForwarder::Stopped() const { return running_workers_ == 0; }

void ArchiveForwarder::WaitForWork() {
  std::unique_lock lock(wake_mutex_);
  // Every waiting worker sees a wake-up (a released study is work for all of them).
  const std::uint64_t seen = wake_generation_;
  wake_.wait_for(lock, kIdlePoll, [&] { return wake_generation_ != seen || stopping_; });
}

void ArchiveForwarder::RunWorker() {
  const std::unique_ptr<ArchiveSender> sender = make_sender_(stopping_);
  while (!stopping_) {
    if (destination_.BeginProbe()) {
      if (const std::optional<std::string> problem = sender->Probe()) {
        destination_.ConnectionFailed("probe: " + *problem);
      } else {
        destination_.ConnectionSucceeded();
      }
      continue;
    }
    const std::vector<QueuedInstancePtr> batch = TakeBatch(*sender);
    if (batch.empty()) {
      WaitForWork();
      continue;
    }
    const std::vector<ArchiveObject> objects = MakeObjects(batch);
    if (objects.empty()) continue;
    if (stopping_) {
      std::vector<QueuedInstancePtr> untouched;
      for (const ArchiveObject& object : objects) untouched.push_back(object.item);
      destination_.Return(std::move(untouched));
      break;
    }
    destination_.metrics().AssociationOpened();  // a request in flight
    const auto started = std::chrono::steady_clock::now();
    const ArchiveDelivery delivery = sender->Deliver(objects);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    destination_.metrics().AssociationClosed();
    Settle(objects, delivery, seconds);
  }
  --running_workers_;
}

std::vector<QueuedInstancePtr> ArchiveForwarder::TakeBatch(const ArchiveSender& sender) {
  std::vector<QueuedInstancePtr> batch = destination_.Take(1);
  if (batch.empty()) return batch;
  // Fill the request with the next ready instances of the same study while they fit, one at a
  // time so that nothing is taken (and marked as attempted) that will not be sent. Sizes are
  // the spooled ones: a transcoded copy is usually smaller, so the limit errs on the safe side.
  std::uint64_t bytes = batch.front()->file_bytes;
  const std::string study = batch.front()->study_instance_uid;
  while (batch.size() < sender.max_objects() && bytes < sender.max_bytes() && !study.empty()) {
    std::vector<QueuedInstancePtr> next = destination_.Take(1, study, sender.max_bytes() - bytes);
    if (next.empty()) break;
    bytes += next.front()->file_bytes;
    batch.push_back(std::move(next.front()));
  }
  return batch;
}

std::vector<ArchiveObject> ArchiveForwarder::MakeObjects(
    const std::vector<QueuedInstancePtr>& batch) {
  std::vector<ArchiveObject> objects;
  objects.reserve(batch.size());
  for (const QueuedInstancePtr& item : batch) {
    if (std::optional<ArchiveObject> object = MakeObject(item)) {
      objects.push_back(std::move(*object));
    }
  }
  return objects;
}

std::optional<ArchiveObject> ArchiveForwarder::MakeObject(const QueuedInstancePtr& item) {
  ArchiveObject object;
  object.item = item;
  const std::string& profile_name = item->route.transcode_profile;
  const config::TranscodeProfile* profile = services_.Profile(profile_name);
  if (!profile_name.empty() && !profile) {
    destination_.Failed(item, DeliveryOutcome::kPermanent,
                        "transcode profile '" + profile_name + "' is not in the configuration");
    return std::nullopt;
  }
  if (!profile && item->route.edits.empty()) {
    // As stored: the spooled dataset bytes behind a fresh meta group.
    auto offset = spool::ReadDatasetOffset(item->file);
    if (!offset) {
      destination_.Failed(item, DeliveryOutcome::kPermanent, offset.error());
      return std::nullopt;
    }
    object.sop_instance_uid = item->sop_instance_uid;
    object.transfer_syntax_uid = item->transfer_syntax_uid;
    std::string meta =
        MetaHeader(*item, object.sop_instance_uid, object.transfer_syntax_uid, config_.calling_ae);
    object.bytes = meta.size() + (item->file_bytes - offset.value());
    object.part10.emplace_back(std::move(meta));
    object.part10.emplace_back(
        http::FileSlice{item->file, offset.value(), item->file_bytes - offset.value()});
    return object;
  }
  // Edited or transcoded on the pool. This thread waits: the pool bounds the CPU work, and the
  // wait holds this worker back (backpressure) like a DIMSE lane.
  const std::string target_uid = profile ? profile->transfer_syntax : item->transfer_syntax_uid;
  if (profile && !CanProduce(item->transfer_syntax_uid, target_uid, profile)) {
    destination_.Failed(
        item, DeliveryOutcome::kPermanent,
        "Conduit cannot produce " + target_uid + " from " + item->transfer_syntax_uid);
    return std::nullopt;
  }
  std::optional<PreparedDataset> prepared =
      asio::co_spawn(io_, PrepareForDestination(services_, destination_, item, target_uid),
                     asio::use_future)
          .get();
  if (!prepared) return std::nullopt;  // dead-lettered with the reason
  auto kept = std::make_shared<const PreparedDataset>(std::move(*prepared));
  object.sop_instance_uid = kept->sop_instance_uid;
  object.transfer_syntax_uid = kept->transfer_syntax_uid;
  std::string meta =
      MetaHeader(*item, object.sop_instance_uid, object.transfer_syntax_uid, config_.calling_ae);
  object.bytes = meta.size();
  object.part10.emplace_back(std::move(meta));
  if (kept->file.empty()) {
    object.bytes += kept->bytes.size();
    object.part10.emplace_back(std::span<const std::uint8_t>(kept->bytes));
  } else {
    object.bytes += kept->dataset_bytes;
    object.part10.emplace_back(
        http::FileSlice{kept->file, kept->dataset_offset, kept->dataset_bytes});
  }
  object.prepared = std::move(kept);
  return object;
}

void ArchiveForwarder::Settle(const std::vector<ArchiveObject>& objects,
                              const ArchiveDelivery& delivery, double seconds) {
  std::uint64_t bytes_delivered = 0;
  std::vector<QueuedInstancePtr> not_attempted;
  const auto retry_after = delivery.retry_after
                               ? std::chrono::duration_cast<Clock::duration>(*delivery.retry_after)
                               : Clock::duration::zero();
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const QueuedInstancePtr& item = objects[i].item;
    const ArchiveObjectOutcome outcome =
        i < delivery.objects.size()
            ? delivery.objects[i]
            : ArchiveObjectOutcome{ArchiveResult::kTransient, "no result for this instance"};
    switch (outcome.result) {
      case ArchiveResult::kDelivered:
        bytes_delivered += objects[i].bytes;
        destination_.Delivered(item);
        break;
      case ArchiveResult::kTransient:
        destination_.Failed(item, DeliveryOutcome::kTransient, outcome.reason, retry_after);
        break;
      case ArchiveResult::kPermanent:
        destination_.Failed(item, DeliveryOutcome::kPermanent, outcome.reason);
        break;
      case ArchiveResult::kNotAttempted:
        not_attempted.push_back(item);
        break;
    }
  }
  destination_.metrics().Transferred(seconds, bytes_delivered);
  if (!not_attempted.empty()) destination_.Return(std::move(not_attempted));
  if (delivery.destination_failure) {
    destination_.ConnectionFailed(*delivery.destination_failure);
  } else {
    destination_.ConnectionSucceeded();
  }
  if (delivery.retry_after) destination_.Throttle(retry_after);
}

}  // namespace conduit::forward
