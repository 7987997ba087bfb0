// Everything between the spool and the destinations: one Destination (queue, journal, metrics)
// and one Forwarder per configured destination; the reference count that releases a spooled
// file once every destination it was routed to has it; recovery of the queues at startup; the
// periodic tick (retries, quiet studies, expiry, gauges); and the operator's `queue` commands.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "router/admin/admin_server.h"
#include "router/config/config.h"
#include "router/forward/dataset_preparer.h"
#include "router/forward/destination.h"
#include "router/forward/dimse_forwarder.h"
#include "router/forward/forwarder.h"
#include "router/forward/transcode_pool.h"
#include "router/metrics/forward_metrics.h"
#include "router/metrics/transcode_metrics.h"
#include "router/spool/spool_record.h"

namespace conduit::spool {
class SpoolUsage;
}

namespace conduit::forward {

struct ForwardRecoverySummary {
  std::uint64_t queued = 0;           // (instance, destination) pairs still owed
  std::uint64_t dead_lettered = 0;    // pairs in dead-letter queues
  std::uint64_t maybe_delivered = 0;  // pairs whose attempt may have reached the destination
  std::uint64_t released = 0;         // files every destination had confirmed, removed now
  std::uint64_t unrouted = 0;         // files with no route, kept
  std::uint64_t unreadable = 0;       // files without a readable spool record, kept
};

class ForwardingService {
 public:
  ForwardingService(const config::Config& config, const std::filesystem::path& committed_directory,
                    spool::SpoolUsage& usage, boost::asio::io_context& io,
                    metrics::ForwardMetrics& metrics, metrics::TranscodeMetrics& transcode_metrics);
  ~ForwardingService();  // stops the housekeeping thread; call Stop() and stop the io_context first
  ForwardingService(const ForwardingService&) = delete;
  ForwardingService& operator=(const ForwardingService&) = delete;

  // Before the listener opens: rebuilds every queue from the spooled files' records and the
  // journals. Throws when a journal cannot be opened.
  ForwardRecoverySummary Recover();
  // Starts the forwarders, the tick and the housekeeping thread.
  void Start();
  // The forwarders stop taking work and cut their associations (SIGTERM).
  void Stop();
  bool Stopped() const;

  // A newly committed instance (from a commit worker thread).
  void Enqueue(const spool::SpoolRecord& record, std::uint64_t file_bytes);

  // `conduit queue ...`; thread-safe.
  admin::AdminReply HandleAdminCommand(const std::vector<std::string>& words);

 private:
  // The forwarder for the destination's kind: DIMSE lanes, or archive workers with the kind's
  // sender (STOW-RS, S3, folder).
  std::unique_ptr<Forwarder> MakeForwarder(Destination& destination,
                                           const config::DestinationConfig& config);

  struct SpooledFile {
    std::filesystem::path path;
    std::uint64_t bytes = 0;
    std::size_t destinations_owing = 0;
    std::vector<std::string> destinations;  // routed to (their transcoded copies go with it)
  };

  Destination& DestinationNamed(const std::string& name);  // creates an unconfigured one
  std::vector<QueuedInstancePtr> ItemsFor(const spool::SpoolRecord& record,
                                          const std::filesystem::path& file,
                                          std::uint64_t file_bytes) const;
  void Settled(const std::string& spool_id);
  void ScheduleTick();
  void RunHousekeeping();
  void RunHousekeepingOnce();
  admin::AdminReply ListQueues();
  admin::AdminReply ShowQueue(Destination& destination);

  const config::Config& config_;
  std::filesystem::path committed_directory_;
  std::filesystem::path journal_directory_;
  spool::SpoolUsage& usage_;
  boost::asio::io_context& io_;
  metrics::ForwardMetrics& metrics_;
  TranscodePool pool_;
  DatasetPreparer preparer_;
  PreparationServices preparation_;

  std::mutex destinations_mutex_;  // guards the map (unconfigured names can appear at recovery)
  std::map<std::string, std::unique_ptr<Destination>> destinations_;
  std::vector<std::unique_ptr<Forwarder>> forwarders_;

  std::mutex files_mutex_;
  std::unordered_map<std::string, SpooledFile> files_;  // by spool id: files still owed
  std::vector<SpooledFile> to_release_;
  bool journals_need_clearing_ = false;

  boost::asio::strand<boost::asio::io_context::executor_type> tick_strand_;
  boost::asio::steady_timer tick_timer_;
  std::uint64_t ticks_ = 0;
  bool stopping_ = false;

  std::mutex housekeeping_mutex_;
  std::condition_variable housekeeping_wake_;
  bool housekeeping_stop_ = false;
  std::thread housekeeping_;
};

}  // namespace conduit::forward
