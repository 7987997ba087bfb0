#include "router/forward/destination.h"

#include <random>

#include "router/log/log.h"

namespace conduit::forward {
namespace {

config::RetryPolicy PolicyOf(const config::DestinationConfig* config) {
  return config ? config->retry : config::RetryPolicy{};
}

// Where the destination is, for log lines: which peer failed, without `conduit queue show`.
std::string PeerOf(const config::DestinationConfig* config) {
  if (!config) return "not configured";
  switch (config->kind) {
    case config::DestinationKind::kDimse:
      return "calling=" + config->calling_ae + " called=" + config->called_ae +
             " peer=" + config->host + ":" + std::to_string(config->port);
    case config::DestinationKind::kStow:
      return "stow=" + config->stow.url;
    case config::DestinationKind::kS3:
      return "s3=" + config->s3.endpoint + "/" + config->s3.bucket;
    case config::DestinationKind::kFolder:
      return "folder=" + config->folder.string();
  }
  return "?";
}

std::function<double()> JitterSource() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  return [engine] { return std::uniform_real_distribution<double>(0.0, 1.0)(*engine); };
}

}  // namespace

Destination::Destination(std::string name, const config::DestinationConfig* config,
                         std::unique_ptr<DeliveryJournal> journal,
                         std::unique_ptr<metrics::DestinationMetrics> metrics,
                         std::function<void(const std::string& spool_id)> settled)
    : name_(std::move(name)),
      config_(config),
      journal_(std::move(journal)),
      metrics_(std::move(metrics)),
      settled_(std::move(settled)),
      queue_(PolicyOf(config), JitterSource()) {}

void Destination::Reconfigure(const config::DestinationConfig* config) {
  std::lock_guard lock(mutex_);
  config_ = config;
  queue_.SetPolicy(PolicyOf(config));
}

void Destination::SetWake(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  wake_ = std::move(wake);
}

void Destination::Wake() {
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    wake = wake_;
  }
  if (wake) wake();
}

void Destination::Add(QueuedInstancePtr item, Clock::time_point arrival) {
  bool late = false;
  {
    std::lock_guard lock(mutex_);
    late = queue_.Add(std::move(item), arrival);
  }
  if (late) metrics_->LateArrival();
  Wake();
}

void Destination::AddDeadLetter(QueuedInstancePtr item) {
  std::lock_guard lock(mutex_);
  queue_.AddDeadLetter(std::move(item));
}

std::vector<QueuedInstancePtr> Destination::Take(std::size_t max_items, std::string_view study,
                                                 std::uint64_t max_bytes) {
  std::lock_guard lock(mutex_);
  std::vector<QueuedInstancePtr> items = queue_.Take(Clock::now(), max_items, study, max_bytes);
  for (const QueuedInstancePtr& item : items) {
    journal_->Append(JournalMark::kAttempt, item->spool_id);
    if (item->maybe_delivered_before) {
      // Counted once per instance: the first send after the restart is the possible duplicate.
      item->maybe_delivered_before = false;
      metrics_->PossibleDuplicate();
      log::Info("destination ", name_, " [", PeerOf(config()),
                "]: sending sop=", item->sop_instance_uid,
                " again after a restart; the previous run may have "
                "delivered it");
    }
  }
  return items;
}

void Destination::Delivered(const QueuedInstancePtr& item) {
  {
    std::lock_guard lock(mutex_);
    queue_.Delivered(item);
    journal_->Append(JournalMark::kDelivered, item->spool_id);
  }
  metrics_->Delivered();
  settled_(item->spool_id);
}

void Destination::Failed(const QueuedInstancePtr& item, DeliveryOutcome outcome,
                         const std::string& reason, Clock::duration retry_after) {
  bool dead = false;
  {
    std::lock_guard lock(mutex_);
    dead = queue_.Failed(item, outcome, reason, Clock::now(), retry_after);
    if (dead)
      journal_->Append(JournalMark::kDeadLettered, item->spool_id, item->dead_letter_reason);
  }
  if (dead) {
    metrics_->DeadLettered();
    log::Warning("destination ", name_, " [", PeerOf(config()), "]: sop=", item->sop_instance_uid,
                 " study=", item->study_instance_uid, " dead-lettered: ", item->dead_letter_reason);
  } else {
    metrics_->Retried();
    // The first failure of an instance is worth a line; its retries would flood the log.
    if (item->failures == 1) {
      log::Warning("destination ", name_, " [", PeerOf(config()), "]: sop=", item->sop_instance_uid,
                   " study=", item->study_instance_uid, " failed, will be retried: ", reason);
    } else {
      log::Debug("destination ", name_, " [", PeerOf(config()), "]: sop=", item->sop_instance_uid,
                 " failed again (", item->failures, " times): ", reason);
    }
  }
}

void Destination::Return(std::vector<QueuedInstancePtr> items) {
  {
    std::lock_guard lock(mutex_);
    queue_.Return(std::move(items));
  }
}

void Destination::ConnectionFailed(const std::string& reason) {
  CircuitState before = CircuitState::kClosed;
  CircuitState after = CircuitState::kClosed;
  {
    std::lock_guard lock(mutex_);
    before = queue_.circuit();
    queue_.ConnectionFailed(reason, Clock::now());
    after = queue_.circuit();
  }
  metrics_->ConnectionFailed();
  if (before == CircuitState::kProbing) metrics_->Probed(false);
  if (after == CircuitState::kOpen && before == CircuitState::kClosed) {
    log::Warning("destination ", name_, " [", PeerOf(config()),
                 "]: circuit open after repeated failures (", reason,
                 "); probing until it answers");
  } else if (before == CircuitState::kClosed) {
    log::Warning("destination ", name_, " [", PeerOf(config()), "]: ", reason);
  }
}

void Destination::ConnectionSucceeded() {
  CircuitState before = CircuitState::kClosed;
  {
    std::lock_guard lock(mutex_);
    before = queue_.circuit();
    if (before == CircuitState::kClosed && queue_.connection_failures() == 0) return;
    queue_.ConnectionSucceeded();
  }
  if (before == CircuitState::kProbing) {
    metrics_->Probed(true);
    log::Info("destination ", name_, " [", PeerOf(config()), "]: answers again; circuit closed");
    Wake();
  }
}

void Destination::Throttle(Clock::duration delay) {
  {
    std::lock_guard lock(mutex_);
    queue_.Throttle(Clock::now() + delay);
  }
  log::Info("destination ", name_, ": asked to slow down; nothing sent for ",
            std::chrono::duration_cast<std::chrono::seconds>(delay).count(), " s");
}

bool Destination::BeginProbe() {
  std::lock_guard lock(mutex_);
  return queue_.BeginProbe(Clock::now());
}

void Destination::Tick(bool sweep_expired) {
  std::vector<QueuedInstancePtr> expired;
  QueueStatus status;
  bool has_work = false;
  const Clock::time_point now = Clock::now();
  {
    std::lock_guard lock(mutex_);
    expired = queue_.Tick(now, sweep_expired);
    for (const QueuedInstancePtr& item : expired) {
      journal_->Append(JournalMark::kDeadLettered, item->spool_id, item->dead_letter_reason);
    }
    status = queue_.Status();
    has_work = queue_.HasReadyWork(now) || (status.circuit == CircuitState::kOpen &&
                                            (!status.paused_until || *status.paused_until <= now));
  }
  for (const QueuedInstancePtr& item : expired) {
    metrics_->DeadLettered();
    log::Warning("destination ", name_, " [", PeerOf(config()), "]: sop=", item->sop_instance_uid,
                 " study=", item->study_instance_uid, " dead-lettered: ", item->dead_letter_reason);
  }
  const double oldest_age =
      status.oldest_received
          ? std::max(0.0, std::chrono::duration<double>(now - *status.oldest_received).count())
          : 0.0;
  metrics_->SetQueue(status.ready, status.retry_wait, status.held, status.in_flight,
                     status.dead_letter, oldest_age, static_cast<int>(status.circuit));
  if (has_work) Wake();
}

std::size_t Destination::RetryNow(const ItemSelection& selection) {
  std::size_t count = 0;
  {
    std::lock_guard lock(mutex_);
    const std::vector<QueuedInstancePtr> moved = queue_.RetryNow(selection);
    if (selection.dead_letter) {
      for (const QueuedInstancePtr& item : moved) {
        journal_->Append(JournalMark::kRetried, item->spool_id);
      }
    }
    count = moved.size();
  }
  Wake();
  return count;
}

std::size_t Destination::Purge(const ItemSelection& selection) {
  std::vector<QueuedInstancePtr> purged;
  {
    std::lock_guard lock(mutex_);
    purged = queue_.Purge(selection);
    for (const QueuedInstancePtr& item : purged) {
      journal_->Append(JournalMark::kPurged, item->spool_id);
    }
  }
  for (const QueuedInstancePtr& item : purged) settled_(item->spool_id);
  return purged.size();
}

QueueStatus Destination::Status() const {
  std::lock_guard lock(mutex_);
  return queue_.Status();
}

std::vector<QueuedInstancePtr> Destination::Pending(std::size_t limit) const {
  std::lock_guard lock(mutex_);
  return queue_.Pending(limit);
}

std::vector<QueuedInstancePtr> Destination::DeadLetters(std::size_t limit) const {
  std::lock_guard lock(mutex_);
  return queue_.DeadLetters(limit);
}

void Destination::SyncJournal() {
  if (const std::error_code error = journal_->Sync()) {
    log::Warning("destination ", name_, ": cannot sync ", journal_->path().string(), ": ",
                 error.message());
  }
}

}  // namespace conduit::forward
