// One destination's queue as the rest of the router uses it: DestinationQueue behind a mutex,
// with every state change written to the delivery journal and counted in the metrics. The
// forwarder takes and settles items; the forwarding service adds them, ticks and administers.
#pragma once

#include <atomic>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "router/config/config.h"
#include "router/forward/delivery_journal.h"
#include "router/forward/destination_queue.h"
#include "router/metrics/forward_metrics.h"

namespace conduit::forward {

class Destination {
 public:
  // `config` is null for a name found in the spool that the configuration no longer has: its
  // items are kept (and listed) but nothing sends them. `settled` is called, outside the lock,
  // when this destination no longer owes an instance (delivered or purged).
  Destination(std::string name, const config::DestinationConfig* config,
              std::unique_ptr<DeliveryJournal> journal,
              std::unique_ptr<metrics::DestinationMetrics> metrics,
              std::function<void(const std::string& spool_id)> settled);

  const std::string& name() const { return name_; }
  // Points into a configuration the forwarding service keeps alive while it is in force here.
  const config::DestinationConfig* config() const { return config_.load(); }
  // A reload changed, added (`config` non-null) or removed (null) the destination: the queue
  // takes the new retry policy; queued, in-flight and dead-lettered items stay.
  void Reconfigure(const config::DestinationConfig* config);
  metrics::DestinationMetrics& metrics() { return *metrics_; }
  DeliveryJournal& journal() { return *journal_; }
  // How the forwarder wants to hear that there may be work; called outside the lock.
  void SetWake(std::function<void()> wake);

  void Add(QueuedInstancePtr item, Clock::time_point arrival);
  void AddDeadLetter(QueuedInstancePtr item);

  // For the forwarder. Take writes the attempt marks before anything is sent.
  std::vector<QueuedInstancePtr> Take(  // see DestinationQueue::Take
      std::size_t max_items = std::numeric_limits<std::size_t>::max(), std::string_view study = {},
      std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max());
  void Delivered(const QueuedInstancePtr& item);
  void Failed(const QueuedInstancePtr& item, DeliveryOutcome outcome, const std::string& reason,
              Clock::duration retry_after = Clock::duration::zero());
  void Return(std::vector<QueuedInstancePtr> items);
  void ConnectionFailed(const std::string& reason);
  void ConnectionSucceeded();
  void Throttle(Clock::duration delay);  // the destination said Retry-After
  bool BeginProbe();

  // For the service: retries and quiet groups come due, expired items are dead-lettered, the
  // gauges are refreshed and the forwarder is woken if there is work.
  void Tick(bool sweep_expired);
  std::size_t RetryNow(const ItemSelection& selection);
  std::size_t Purge(const ItemSelection& selection);
  QueueStatus Status() const;
  std::vector<QueuedInstancePtr> Pending(std::size_t limit) const;
  std::vector<QueuedInstancePtr> DeadLetters(std::size_t limit) const;
  void SyncJournal();

 private:
  void Wake();

  std::string name_;
  std::atomic<const config::DestinationConfig*> config_;
  std::unique_ptr<DeliveryJournal> journal_;
  std::unique_ptr<metrics::DestinationMetrics> metrics_;
  std::function<void(const std::string&)> settled_;
  std::function<void()> wake_;
  mutable std::mutex mutex_;
  DestinationQueue queue_;
};

}  // namespace conduit::forward
