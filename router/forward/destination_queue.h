// One destination's queue as pure state, with the time passed in: what is ready to send, what
// waits for a retry, what is held for a quiet study or series, what is in flight and what is
// dead-lettered; plus the circuit breaker. Not thread-safe: Destination wraps it with a mutex
// and the journal. Unit-tested on its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "router/config/config.h"
#include "router/forward/delivery_outcome.h"
#include "router/forward/queued_instance.h"

namespace conduit::forward {

enum class CircuitState {
  kClosed,   // sending
  kOpen,     // the destination failed breaker_failures times in a row: not sending, waiting
  kProbing,  // a C-ECHO is checking whether it is back
};
const char* CircuitStateName(CircuitState state);

struct QueueStatus {
  std::size_t ready = 0;
  std::size_t retry_wait = 0;
  std::size_t held = 0;  // waiting for their study or series to go quiet
  std::size_t in_flight = 0;
  std::size_t dead_letter = 0;
  std::optional<Clock::time_point> oldest_received;  // of the items still owed (not dead)
  CircuitState circuit = CircuitState::kClosed;
  std::string last_error;
  std::optional<Clock::time_point> last_error_at;
  std::optional<Clock::time_point> paused_until;  // after connection failures or Retry-After

  std::size_t owed() const { return ready + retry_wait + held + in_flight; }
};

// Which items an operator's retry or purge acts on.
struct ItemSelection {
  bool dead_letter = false;          // the dead-letter queue, instead of the pending items
  std::optional<std::string> study;  // only this StudyInstanceUID
};

class DestinationQueue {
 public:
  // `unit_random` returns uniform values in [0, 1) for the retry jitter.
  DestinationQueue(config::RetryPolicy policy, std::function<double()> unit_random);
  // A reloaded configuration's policy: it applies from the next failure, expiry sweep or breaker
  // decision on; retries already scheduled keep their time.
  void SetPolicy(const config::RetryPolicy& policy) { policy_ = policy; }

  // Queues an instance routed here at `now` (its arrival; a recovered one uses received_at).
  // Returns true when it belongs to a study or series that was already sent: a late arrival.
  bool Add(QueuedInstancePtr item, Clock::time_point now);
  // An instance that the journal says was dead-lettered before a restart.
  void AddDeadLetter(QueuedInstancePtr item);

  // What to send now: one instance, or a whole released study/series. Empty when nothing is
  // ready, while paused after a connection failure, or while the circuit is not closed.
  // At most `max_items` (a larger study or series is split, its first items first). To fill a
  // request: with `study`, only when the next item in line belongs to that study, and with
  // `max_bytes`, only when its spooled file is no larger.
  std::vector<QueuedInstancePtr> Take(
      Clock::time_point now, std::size_t max_items = std::numeric_limits<std::size_t>::max(),
      std::string_view study = {},
      std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max());
  void Delivered(const QueuedInstancePtr& item);
  // An attempt failed. A transient failure waits for a retry, unless the item is past the
  // maximum age; a permanent one is dead-lettered. Returns true when the item was dead-lettered.
  // `retry_after` (an HTTP server's Retry-After) delays the retry further than the backoff would.
  bool Failed(const QueuedInstancePtr& item, DeliveryOutcome outcome, const std::string& reason,
              Clock::time_point now, Clock::duration retry_after = Clock::duration::zero());
  // Taken but never attempted (no association could be opened): back to the front, unchanged.
  void Return(std::vector<QueuedInstancePtr> items);

  // The circuit breaker. Each connection failure pauses sending for the backoff delay; after
  // breaker_failures in a row the circuit opens and only probes (BeginProbe) may reach out.
  void ConnectionFailed(const std::string& reason, Clock::time_point now);
  void ConnectionSucceeded();
  // The destination asked us to slow down (HTTP 429/503 with Retry-After): nothing is taken
  // before `until`. Unlike a connection failure this does not count towards the breaker.
  void Throttle(Clock::time_point until);
  // True once, when the circuit is open and its pause is over: the caller probes with C-ECHO and
  // reports back with ConnectionSucceeded or ConnectionFailed.
  bool BeginProbe(Clock::time_point now);

  // Moves due retries to the ready queue, releases studies and series that have been quiet long
  // enough and, with `sweep_expired`, dead-letters the owed items past the maximum age (returned,
  // for the journal and metrics), in flight ones excepted.
  std::vector<QueuedInstancePtr> Tick(Clock::time_point now, bool sweep_expired);
  bool HasReadyWork(Clock::time_point now) const;

  // Operator actions. Retry: dead letters (selection.dead_letter) or items waiting for a retry
  // go back to the ready queue now, and a pause or open circuit is lifted. Purge: the selected
  // items (pending or dead; never those in flight) are dropped. Both return the items concerned.
  std::vector<QueuedInstancePtr> RetryNow(const ItemSelection& selection);
  std::vector<QueuedInstancePtr> Purge(const ItemSelection& selection);

  QueueStatus Status() const;
  CircuitState circuit() const { return circuit_; }
  std::uint32_t connection_failures() const { return connection_failures_; }
  // Up to `limit` items of each kind, for `conduit queue show`.
  std::vector<QueuedInstancePtr> Pending(std::size_t limit) const;
  std::vector<QueuedInstancePtr> DeadLetters(std::size_t limit) const;

 private:
  using Batch = std::vector<QueuedInstancePtr>;
  struct Group {
    Batch items;
    Clock::time_point last_arrival;
    std::chrono::seconds quiet_period{0};
  };

  void PushReady(Batch batch, bool at_front);
  // Removes the owed items (ready, waiting for a retry, held; never in flight) that match.
  std::vector<QueuedInstancePtr> RemoveOwed(
      const std::function<bool(const QueuedInstancePtr&)>& matches);
  void DeadLetter(const QueuedInstancePtr& item, std::string reason);
  bool Expired(const QueuedInstance& item, Clock::time_point now) const;
  std::string ExpiryReason(const QueuedInstance& item) const;
  void RememberReleasedGroup(const std::string& key);

  config::RetryPolicy policy_;
  std::function<double()> unit_random_;
  // Higher priority first; each entry is one instance or one released study/series.
  std::map<int, std::deque<Batch>, std::greater<>> ready_;
  std::size_t ready_count_ = 0;
  std::multimap<Clock::time_point, QueuedInstancePtr> retry_wait_;
  std::map<std::string, Group> held_;
  std::size_t held_count_ = 0;
  std::unordered_map<std::string, QueuedInstancePtr> in_flight_;
  std::map<std::string, QueuedInstancePtr> dead_letters_;  // by spool id: arrival order
  // Studies/series already released, to recognise late arrivals; bounded, oldest forgotten.
  std::deque<std::string> released_order_;
  std::unordered_set<std::string> released_;

  CircuitState circuit_ = CircuitState::kClosed;
  std::uint32_t connection_failures_ = 0;  // in a row
  Clock::time_point paused_until_{};
  Clock::time_point throttled_until_{};  // by the destination itself (Retry-After)
  std::string last_error_;
  std::optional<Clock::time_point> last_error_at_;
};

}  // namespace conduit::forward
