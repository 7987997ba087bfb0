// Everything between the spool and the destinations: one Destination (queue, journal, metrics)
// and one Forwarder per configured destination; the reference count that releases a spooled
// file once every destination it was routed to has it; recovery of the queues at startup; the
// periodic tick (retries, quiet studies, expiry, gauges); the operator's `queue` commands; and
// the destinations of a reloaded configuration (SIGHUP).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

// What a reload did to the destinations, by name.
struct DestinationChanges {
  std::vector<std::string> added;    // a new queue and forwarder (or a kept queue configured again)
  std::vector<std::string> changed;  // forwarder restarted with the new settings, queue kept
  std::vector<std::string> removed;  // forwarder stopped, queue kept as not-configured
  std::size_t unchanged = 0;
};

// One destination as `conduit status` shows it.
struct DestinationSummary {
  std::string name;
  std::string kind;   // "dimse", "stow", "s3", "folder"; "-" when not configured
  std::string state;  // as `conduit queue list`: idle, sending, paused, open, probing, ...
  std::size_t owed = 0;
  std::size_t dead_lettered = 0;
  std::optional<std::chrono::system_clock::duration> oldest_age;  // of what is owed
};

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
  // The spool and transcoding settings of `config` hold for the service's life; its
  // destinations until Reconfigure.
  ForwardingService(std::shared_ptr<const config::Config> config,
                    const std::filesystem::path& committed_directory, spool::SpoolUsage& usage,
                    boost::asio::io_context& io, metrics::ForwardMetrics& metrics,
                    metrics::TranscodeMetrics& transcode_metrics);
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

  // The destinations of a reloaded configuration (SIGHUP; from one thread at a time). Added:
  // a queue and a forwarder, at once. Removed: the forwarder stops; the queue and its items stay
  // (not-configured, as when a destination is dropped across a restart). Changed: the forwarder
  // stops (what it was sending goes back to the queue, unconfirmed) and one with the new settings
  // starts once it has stopped, trying whatever waited for a retry at once. Unchanged
  // destinations are not touched. The spool and transcoding settings are not reloaded.
  DestinationChanges Reconfigure(std::shared_ptr<const config::Config> config);

  // For the service watchdog: when the tick last ran (nullopt once stopping, as it is not
  // expected to run any more) and when the housekeeping thread last finished a pass.
  std::optional<std::chrono::steady_clock::time_point> LastTick() const;
  std::chrono::steady_clock::time_point LastHousekeeping() const;

  // For `conduit status`.
  std::vector<DestinationSummary> Summaries();
  unsigned transcode_workers() const { return pool_.threads(); }

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

  // One name's queue and, while the configuration has the name, its forwarder. `config` is the
  // configuration that destination->config() and the forwarder point into: it lives as long.
  struct DestinationSlot {
    std::unique_ptr<Destination> destination;
    std::shared_ptr<const config::Config> config;
    std::unique_ptr<Forwarder> forwarder;  // null while not configured
    bool forwarder_started = false;        // false: waiting for its predecessor to stop
  };
  // A forwarder stopping (or stopped) after a reload changed or removed its destination.
  struct RetiredForwarder {
    std::string name;
    std::shared_ptr<const config::Config> config;  // declared first: outlives the forwarder
    std::unique_ptr<Forwarder> forwarder;
    std::optional<std::chrono::steady_clock::time_point> stopped_at;
  };

  // With destinations_mutex_ held: the slot for `name`, created with an unconfigured
  // destination if there is none (a name from the spool that the configuration lacks).
  DestinationSlot& SlotNamed(const std::string& name);
  Destination& DestinationNamed(const std::string& name);  // locks; see SlotNamed
  std::unique_ptr<Destination> MakeDestination(const std::string& name,
                                               const config::DestinationConfig* config);
  // With destinations_mutex_ held: `name` now has `config` (from `owner`).
  void Configure(DestinationSlot& slot, const std::string& name,
                 const config::DestinationConfig& config,
                 std::shared_ptr<const config::Config> owner);
  void Retire(DestinationSlot& slot, const std::string& name);
  bool Retiring(const std::string& name) const;  // a forwarder of `name` has not stopped yet
  // On the tick: starts the forwarders whose predecessors have stopped and hands back the
  // retired forwarders that have been stopped long enough to be destroyed.
  std::vector<RetiredForwarder> CompleteHandovers();
  std::vector<QueuedInstancePtr> ItemsFor(const spool::SpoolRecord& record,
                                          const std::filesystem::path& file,
                                          std::uint64_t file_bytes) const;
  void Settled(const std::string& spool_id);
  void ScheduleTick();
  void RunHousekeeping();
  void RunHousekeepingOnce();
  admin::AdminReply ListQueues();
  admin::AdminReply ShowQueue(Destination& destination, const config::DestinationConfig* config);

  std::shared_ptr<const config::Config> config_;  // the spool and transcoding settings
  std::filesystem::path committed_directory_;
  std::filesystem::path journal_directory_;
  spool::SpoolUsage& usage_;
  boost::asio::io_context& io_;
  metrics::ForwardMetrics& metrics_;
  TranscodePool pool_;
  DatasetPreparer preparer_;
  PreparationServices preparation_;

  // Guards the slots (unconfigured names can appear at recovery, reloads change them) and the
  // retired forwarders. A Destination, once created, lives as long as the service.
  mutable std::mutex destinations_mutex_;
  std::map<std::string, DestinationSlot> destinations_;
  std::vector<RetiredForwarder> retired_;
  bool started_ = false;              // Start() was called
  std::atomic<bool> stopped_{false};  // Stop() was called

  std::mutex files_mutex_;
  std::unordered_map<std::string, SpooledFile> files_;  // by spool id: files still owed
  std::vector<SpooledFile> to_release_;
  bool journals_need_clearing_ = false;

  boost::asio::strand<boost::asio::io_context::executor_type> tick_strand_;
  boost::asio::steady_timer tick_timer_;
  std::uint64_t ticks_ = 0;
  bool stopping_ = false;
  // Steady-clock nanoseconds of the last tick and of the last housekeeping pass (the watchdog).
  std::atomic<std::int64_t> last_tick_ns_{0};
  std::atomic<std::int64_t> last_housekeeping_ns_{0};

  std::mutex housekeeping_mutex_;
  std::condition_variable housekeeping_wake_;
  bool housekeeping_stop_ = false;
  std::thread housekeeping_;
};

}  // namespace conduit::forward
