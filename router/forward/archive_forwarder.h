// Delivers a destination's queue to an archive (DICOMweb STOW-RS, S3, a folder): worker threads
// of its own, each with its own sender (and so its own HTTP connection, kept alive). A worker
// takes the next ready instances (of one study, up to what its sender carries per request),
// prepares those that need it on the transcode pool, delivers them and settles each with the
// destination's queue: the same queue, retry, breaker and dead-letter machinery as DIMSE.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "router/config/config.h"
#include "router/forward/archive_sender.h"
#include "router/forward/destination.h"
#include "router/forward/forwarder.h"
#include "router/forward/preparation.h"

namespace conduit::forward {

class ArchiveForwarder final : public Forwarder {
 public:
  // `workers` threads deliver in parallel (an HTTP destination's parallel_requests).
  ArchiveForwarder(boost::asio::io_context& io, Destination& destination,
                   const config::DestinationConfig& config, PreparationServices& services,
                   ArchiveSenderFactory make_sender, unsigned workers);
  ~ArchiveForwarder() override;

  void Start() override;
  void Wake() override;
  void Stop() override;
  bool Stopped() const override;

 private:
  void RunWorker();
  std::vector<QueuedInstancePtr> TakeBatch(const ArchiveSender& sender);
  // The batch as Part 10 objects; an item that cannot be prepared is dead-lettered and left out.
  std::vector<ArchiveObject> MakeObjects(const std::vector<QueuedInstancePtr>& batch);
  std::optional<ArchiveObject> MakeObject(const QueuedInstancePtr& item);
  void Settle(const std::vector<ArchiveObject>& objects, const ArchiveDelivery& delivery,
              double seconds);
  void WaitForWork();

  boost::asio::io_context& io_;
  Destination& destination_;
  const config::DestinationConfig& config_;
  PreparationServices& services_;
  ArchiveSenderFactory make_sender_;
  unsigned worker_count_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> running_workers_{0};
  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::uint64_t wake_generation_ = 0;  // counts Wake() calls
};

}  // namespace conduit::forward
