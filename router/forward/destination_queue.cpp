#include "router/forward/destination_queue.h"

#include <algorithm>

#include "router/forward/retry_delay.h"

namespace conduit::forward {
namespace {

// Enough to recognise late arrivals of any study sent in the last hours of a busy site.
constexpr std::size_t kRememberedReleasedGroups = 10000;

std::optional<std::string> GroupKey(const QueuedInstance& item) {
  switch (item.route.level) {
    case rules::RoutingLevel::kStudy:
      if (item.study_instance_uid.empty()) return std::nullopt;
      return "study " + item.study_instance_uid;
    case rules::RoutingLevel::kSeries:
      if (item.series_instance_uid.empty()) return std::nullopt;
      return "series " + item.series_instance_uid;
    case rules::RoutingLevel::kInstance:
      break;
  }
  return std::nullopt;
}

bool Selected(const QueuedInstance& item, const ItemSelection& selection) {
  return !selection.study || item.study_instance_uid == *selection.study;
}

}  // namespace

const char* CircuitStateName(CircuitState state) {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kProbing:
      return "probing";
  }
  return "unknown";
}

DestinationQueue::DestinationQueue(config::RetryPolicy policy, std::function<double()> unit_random)
    : policy_(policy), unit_random_(std::move(unit_random)) {}

bool DestinationQueue::Add(QueuedInstancePtr item, Clock::time_point now) {
  const std::optional<std::string> key = GroupKey(*item);
  if (!key) {
    PushReady({std::move(item)}, false);
    return false;
  }
  const bool late = released_.contains(*key);
  Group& group = held_[*key];
  group.last_arrival = std::max(group.last_arrival, now);
  group.quiet_period = std::max(group.quiet_period, item->route.quiet_period);
  group.items.push_back(std::move(item));
  ++held_count_;
  return late;
}

void DestinationQueue::AddDeadLetter(QueuedInstancePtr item) {
  dead_letters_.emplace(item->spool_id, std::move(item));
}

std::vector<QueuedInstancePtr> DestinationQueue::Take(Clock::time_point now, std::size_t max_items,
                                                      std::string_view study,
                                                      std::uint64_t max_bytes) {
  if (circuit_ != CircuitState::kClosed || now < paused_until_ || now < throttled_until_) return {};
  if (max_items == 0) return {};
  for (auto& [priority, batches] : ready_) {
    if (batches.empty()) continue;
    Batch& front = batches.front();
    const bool group = front.size() > 1 && GroupKey(*front.front());
    // Only the next item in line may join: a filter must not let items overtake each other.
    const QueuedInstance& next = *front.front();
    if (!study.empty() && next.study_instance_uid != study) return {};
    if (next.file_bytes > max_bytes) return {};
    Batch taken;
    if (group && front.size() <= max_items) {
      taken = std::move(front);  // a released study or series leaves together
      batches.pop_front();
    } else if (group) {
      // Larger than the caller can carry: its first items go now, the rest stay first in line.
      const auto end = front.begin() + static_cast<std::ptrdiff_t>(max_items);
      taken.assign(std::make_move_iterator(front.begin()), std::make_move_iterator(end));
      front.erase(front.begin(), end);
    } else {
      // Instances given back together (Return) leave one at a time, in their order.
      taken.push_back(std::move(front.front()));
      front.erase(front.begin());
      if (front.empty()) batches.pop_front();
    }
    ready_count_ -= taken.size();
    for (const QueuedInstancePtr& item : taken) in_flight_.emplace(item->spool_id, item);
    return taken;
  }
  return {};
}

void DestinationQueue::Delivered(const QueuedInstancePtr& item) {
  in_flight_.erase(item->spool_id);
}

bool DestinationQueue::Failed(const QueuedInstancePtr& item, DeliveryOutcome outcome,
                              const std::string& reason, Clock::time_point now,
                              Clock::duration retry_after) {
  in_flight_.erase(item->spool_id);
  ++item->failures;
  item->last_error = reason;
  last_error_ = reason;
  last_error_at_ = now;
  if (outcome == DeliveryOutcome::kPermanent) {
    DeadLetter(item, reason);
    return true;
  }
  if (Expired(*item, now)) {
    DeadLetter(item, ExpiryReason(*item));
    return true;
  }
  const auto backoff = RetryDelay(policy_, item->failures, unit_random_());
  retry_wait_.emplace(now + std::max<Clock::duration>(backoff, retry_after), item);
  return false;
}

void DestinationQueue::Return(std::vector<QueuedInstancePtr> items) {
  if (items.empty()) return;
  for (const QueuedInstancePtr& item : items) in_flight_.erase(item->spool_id);
  PushReady(std::move(items), true);
}

void DestinationQueue::ConnectionFailed(const std::string& reason, Clock::time_point now) {
  ++connection_failures_;
  last_error_ = reason;
  last_error_at_ = now;
  paused_until_ = now + RetryDelay(policy_, connection_failures_, unit_random_());
  if (connection_failures_ >= policy_.breaker_failures) circuit_ = CircuitState::kOpen;
}

void DestinationQueue::ConnectionSucceeded() {
  connection_failures_ = 0;
  paused_until_ = {};
  circuit_ = CircuitState::kClosed;
}

void DestinationQueue::Throttle(Clock::time_point until) {
  throttled_until_ = std::max(throttled_until_, until);
}

bool DestinationQueue::BeginProbe(Clock::time_point now) {
  if (circuit_ != CircuitState::kOpen || now < paused_until_) return false;
  circuit_ = CircuitState::kProbing;
  return true;
}

std::vector<QueuedInstancePtr> DestinationQueue::Tick(Clock::time_point now, bool sweep_expired) {
  while (!retry_wait_.empty() && retry_wait_.begin()->first <= now) {
    QueuedInstancePtr item = std::move(retry_wait_.begin()->second);
    retry_wait_.erase(retry_wait_.begin());
    PushReady({std::move(item)}, false);
  }
  for (auto group = held_.begin(); group != held_.end();) {
    if (now - group->second.last_arrival < group->second.quiet_period) {
      ++group;
      continue;
    }
    held_count_ -= group->second.items.size();
    RememberReleasedGroup(group->first);
    PushReady(std::move(group->second.items), false);
    group = held_.erase(group);
  }
  if (!sweep_expired) return {};
  std::vector<QueuedInstancePtr> expired =
      RemoveOwed([&](const QueuedInstancePtr& item) { return Expired(*item, now); });
  for (const QueuedInstancePtr& item : expired) DeadLetter(item, ExpiryReason(*item));
  return expired;
}

std::vector<QueuedInstancePtr> DestinationQueue::RemoveOwed(
    const std::function<bool(const QueuedInstancePtr&)>& matches) {
  std::vector<QueuedInstancePtr> removed;
  const auto take = [&](const QueuedInstancePtr& item) {
    if (!matches(item)) return false;
    removed.push_back(item);
    return true;
  };
  std::erase_if(retry_wait_, [&](const auto& entry) { return take(entry.second); });
  for (auto& [priority, batches] : ready_) {
    for (Batch& batch : batches) {
      const std::size_t before = batch.size();
      std::erase_if(batch, take);
      ready_count_ -= before - batch.size();
    }
    std::erase_if(batches, [](const Batch& batch) { return batch.empty(); });
  }
  for (auto& [key, group] : held_) {
    const std::size_t before = group.items.size();
    std::erase_if(group.items, take);
    held_count_ -= before - group.items.size();
  }
  std::erase_if(held_, [](const auto& entry) { return entry.second.items.empty(); });
  return removed;
}

bool DestinationQueue::HasReadyWork(Clock::time_point now) const {
  return ready_count_ > 0 && circuit_ == CircuitState::kClosed && now >= paused_until_ &&
         now >= throttled_until_;
}

std::vector<QueuedInstancePtr> DestinationQueue::RetryNow(const ItemSelection& selection) {
  std::vector<QueuedInstancePtr> moved;
  if (selection.dead_letter) {
    for (auto entry = dead_letters_.begin(); entry != dead_letters_.end();) {
      if (!Selected(*entry->second, selection)) {
        ++entry;
        continue;
      }
      QueuedInstancePtr item = std::move(entry->second);
      entry = dead_letters_.erase(entry);
      item->failures = 0;
      item->dead_letter_reason.clear();
      moved.push_back(item);
      PushReady({std::move(item)}, false);
    }
  } else {
    for (auto entry = retry_wait_.begin(); entry != retry_wait_.end();) {
      if (!Selected(*entry->second, selection)) {
        ++entry;
        continue;
      }
      moved.push_back(entry->second);
      PushReady({std::move(entry->second)}, false);
      entry = retry_wait_.erase(entry);
    }
  }
  // The operator says the destination is fixed: try it now rather than after the backoff.
  paused_until_ = {};
  throttled_until_ = {};
  return moved;
}

std::vector<QueuedInstancePtr> DestinationQueue::Purge(const ItemSelection& selection) {
  const auto selected = [&](const QueuedInstancePtr& item) { return Selected(*item, selection); };
  std::vector<QueuedInstancePtr> purged;
  std::erase_if(dead_letters_, [&](const auto& entry) {
    if (!selected(entry.second)) return false;
    purged.push_back(entry.second);
    return true;
  });
  if (!selection.dead_letter) {
    std::vector<QueuedInstancePtr> owed = RemoveOwed(selected);
    purged.insert(purged.end(), owed.begin(), owed.end());
  }
  return purged;
}

QueueStatus DestinationQueue::Status() const {
  QueueStatus status;
  status.ready = ready_count_;
  status.retry_wait = retry_wait_.size();
  status.held = held_count_;
  status.in_flight = in_flight_.size();
  status.dead_letter = dead_letters_.size();
  status.circuit = circuit_;
  status.last_error = last_error_;
  status.last_error_at = last_error_at_;
  const Clock::time_point paused_until = std::max(paused_until_, throttled_until_);
  if (paused_until != Clock::time_point{}) status.paused_until = paused_until;
  const auto consider = [&](const QueuedInstancePtr& item) {
    if (!status.oldest_received || item->received_at < *status.oldest_received) {
      status.oldest_received = item->received_at;
    }
  };
  for (const auto& [priority, batches] : ready_) {
    for (const Batch& batch : batches) std::for_each(batch.begin(), batch.end(), consider);
  }
  for (const auto& [when, item] : retry_wait_) consider(item);
  for (const auto& [key, group] : held_) {
    std::for_each(group.items.begin(), group.items.end(), consider);
  }
  for (const auto& [id, item] : in_flight_) consider(item);
  return status;
}

std::vector<QueuedInstancePtr> DestinationQueue::Pending(std::size_t limit) const {
  std::vector<QueuedInstancePtr> items;
  const auto add = [&](const QueuedInstancePtr& item) {
    if (items.size() < limit) items.push_back(item);
  };
  for (const auto& [id, item] : in_flight_) add(item);
  for (const auto& [priority, batches] : ready_) {
    for (const Batch& batch : batches) std::for_each(batch.begin(), batch.end(), add);
  }
  for (const auto& [when, item] : retry_wait_) add(item);
  for (const auto& [key, group] : held_) std::for_each(group.items.begin(), group.items.end(), add);
  return items;
}

std::vector<QueuedInstancePtr> DestinationQueue::DeadLetters(std::size_t limit) const {
  std::vector<QueuedInstancePtr> items;
  for (const auto& [id, item] : dead_letters_) {
    if (items.size() >= limit) break;
    items.push_back(item);
  }
  return items;
}

void DestinationQueue::PushReady(Batch batch, bool at_front) {
  if (batch.empty()) return;
  ready_count_ += batch.size();
  std::deque<Batch>& batches = ready_[batch.front()->route.priority];
  if (at_front) {
    batches.push_front(std::move(batch));
  } else {
    batches.push_back(std::move(batch));
  }
}

void DestinationQueue::DeadLetter(const QueuedInstancePtr& item, std::string reason) {
  item->dead_letter_reason = std::move(reason);
  dead_letters_.emplace(item->spool_id, item);
}

bool DestinationQueue::Expired(const QueuedInstance& item, Clock::time_point now) const {
  return now - item.received_at > policy_.max_age;
}

std::string DestinationQueue::ExpiryReason(const QueuedInstance& item) const {
  std::string reason =
      "not delivered within " +
      std::to_string(std::chrono::duration_cast<std::chrono::hours>(policy_.max_age).count()) +
      " h";
  if (!item.last_error.empty()) {
    reason +=
        " (" + std::to_string(item.failures) + " failed attempts; last: " + item.last_error + ")";
  } else if (!last_error_.empty()) {
    reason += " (destination: " + last_error_ + ")";
  }
  return reason;
}

void DestinationQueue::RememberReleasedGroup(const std::string& key) {
  if (!released_.insert(key).second) return;
  released_order_.push_back(key);
  if (released_order_.size() > kRememberedReleasedGroups) {
    released_.erase(released_order_.front());
    released_order_.pop_front();
  }
}

}  // namespace conduit::forward
