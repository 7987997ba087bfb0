// Delivers a destination's queue over C-STORE: up to max_associations lanes, each a coroutine
// on its own strand with one pooled association that it keeps open (warm) across instances and
// studies until it has been idle for idle_timeout or has carried max_instances_per_association.
// A lane whose association cannot be opened reports to the destination's circuit breaker;
// while the circuit is open, a lane probes with C-ECHO instead of sending. When instances are
// prepared on the transcode pool (a transcode, edits), a lane takes its next instance early and
// has it prepared while the current one is made durable and put on the wire, so that the pool
// is not idle while lanes wait for the disk and for C-STORE responses: a lane holds at most two
// instances and one pool job at a time.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "router/config/config.h"
#include "router/forward/dataset_preparer.h"
#include "router/forward/destination.h"
#include "router/forward/forwarder.h"
#include "router/forward/preparation.h"
#include "router/forward/transcode_pool.h"
#include "router/metrics/transcode_metrics.h"
#include "router/net/scu_association.h"

namespace conduit::forward {

class DimseForwarder final : public Forwarder {
 public:
  DimseForwarder(boost::asio::io_context& io, Destination& destination,
                 const config::DestinationConfig& config, PreparationServices& services);
  ~DimseForwarder() override;

  void Start() override;
  void Wake() override;
  void Stop() override;
  bool Stopped() const override;

 private:
  struct Lane {
    explicit Lane(boost::asio::io_context& io);
    boost::asio::strand<boost::asio::io_context::executor_type> strand;
    boost::asio::steady_timer wake_timer;
    std::unique_ptr<net::ScuAssociation> association;
    std::uint32_t sent_on_association = 0;
    std::chrono::steady_clock::time_point last_used;
  };
  // What decides the presentation contexts an instance needs: SOP class, stored transfer
  // syntax and transcode profile. Those sent recently are proposed on every new association so
  // that a warm one fits the next instances too.
  struct ContextKey {
    std::string sop_class_uid;
    std::string stored_transfer_syntax;
    std::string transcode_profile;
    friend bool operator==(const ContextKey&, const ContextKey&) = default;
  };

  // An instance's dataset, prepared while the instance before it was being sent: not yet
  // durable (PrepareOnPool), made so when its own turn comes.
  struct PreparedAhead {
    std::string target_uid;
    std::optional<PreparedDataset> dataset;  // nullopt: it could not be, and was dead-lettered
  };

  boost::asio::awaitable<void> RunLane(Lane& lane);
  boost::asio::awaitable<void> SendBatch(Lane& lane, std::vector<QueuedInstancePtr> batch);
  // false when the lane must open a new association before it sends anything else (the item
  // went back to the queue to be sent in another transfer syntax). `ahead`: the item's dataset
  // if it was prepared early.
  boost::asio::awaitable<bool> SendOne(Lane& lane, const QueuedInstancePtr& item,
                                       std::optional<PreparedAhead>& ahead);
  // Returns the instances of `pending` (never attempted) to the front of the queue, except one
  // whose early preparation failed (dead-lettered). `ahead` is pending.front()'s dataset, if it
  // was prepared early.
  boost::asio::awaitable<void> GiveBack(std::deque<QueuedInstancePtr>& pending,
                                        std::optional<PreparedAhead>& ahead);
  // Takes the destination's next instance into `pending` if the lane's open association can
  // carry it after the current one.
  void TakeAhead(Lane& lane, std::deque<QueuedInstancePtr>& pending);
  // The transfer syntax `item` is prepared in before it goes on `association`; nullopt when it
  // goes as stored, or cannot go on it.
  std::optional<std::string> PreparationTarget(const net::ScuAssociation& association,
                                               const QueuedInstance& item) const;
  static bool GoesAsStored(const QueuedInstance& item, const std::string& context_syntax);
  boost::asio::awaitable<bool> OpenFor(Lane& lane, const std::vector<QueuedInstancePtr>& batch);
  boost::asio::awaitable<void> Probe(Lane& lane);
  boost::asio::awaitable<void> CloseAssociation(Lane& lane);
  bool Covers(const net::ScuAssociation& association,
              const std::vector<QueuedInstancePtr>& batch) const;
  // Transfer syntaxes this instance can be sent in, in the destination's preference order (or
  // the one its route's transcode profile names).
  std::vector<std::string> Candidates(const ContextKey& key) const;
  bool NeedsDecode(const ContextKey& key) const;
  static ContextKey KeyOf(const QueuedInstance& item);
  // PrepareForDestination, PrepareOnPool and PersistPrepared through member coroutines:
  // awaiting the free functions straight from SendOne trips a false -Wmismatched-new-delete in
  // GCC 12.
  boost::asio::awaitable<std::optional<PreparedDataset>> Prepare(const QueuedInstancePtr& item,
                                                                 const std::string& target_uid);
  boost::asio::awaitable<std::optional<PreparedDataset>> PrepareAhead(
      const QueuedInstancePtr& item, const std::string& target_uid);
  boost::asio::awaitable<void> Persist(const QueuedInstancePtr& item, PreparedDataset& prepared);
  std::vector<net::ProposedContext> Proposals(const std::vector<QueuedInstancePtr>& batch);
  net::ScuPeer Peer() const;

  boost::asio::io_context& io_;
  Destination& destination_;
  const config::DestinationConfig& config_;
  PreparationServices& services_;
  std::vector<std::unique_ptr<Lane>> lanes_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> running_lanes_{0};
  mutable std::mutex recent_mutex_;
  std::deque<ContextKey> recent_contexts_;
  // Compressed instances whose stored syntax this destination refused: from then on they are
  // offered decoded (uncompressed) instead. Offering both at once does not work: some PACS
  // (Orthanc) accept one context per SOP class and prefer the uncompressed one, which would
  // decode instances that could have gone as they are.
  std::vector<ContextKey> decode_keys_;
};

}  // namespace conduit::forward
