#include "router/spool/spool_committer.h"

#include <fcntl.h>
#include <prometheus/histogram.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "router/dimse/status.h"
#include "router/metrics/routing_metrics.h"
#include "router/spool/header_reader.h"
#include "router/spool/part10_header.h"
#include "router/spool/spool_usage.h"

namespace conduit::spool {
namespace {

CommitOutcome Failure(std::uint16_t status, std::string comment) {
  return CommitOutcome{status, std::move(comment), {}, {}};
}

std::string ErrnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

SpoolCommitter::SpoolCommitter(unsigned worker_count,
                               const std::filesystem::path& committed_directory, SpoolUsage& usage,
                               SpoolStats& stats, boost::asio::any_io_executor fallback,
                               CommittedHook committed)
    : committed_directory_(committed_directory),
      usage_(usage),
      stats_(stats),
      fallback_(std::move(fallback)),
      committed_(std::move(committed)),
      busy_since_(std::make_unique<std::atomic<std::int64_t>[]>(worker_count)),
      worker_count_(worker_count) {
  for (unsigned i = 0; i < worker_count; ++i) {
    workers_.emplace_back([this, &busy_since = busy_since_[i]] { RunWorker(busy_since); });
  }
}

std::optional<std::chrono::steady_clock::time_point> SpoolCommitter::OldestCommitStartedAt() const {
  std::optional<std::chrono::steady_clock::time_point> oldest;
  for (unsigned i = 0; i < worker_count_; ++i) {
    const std::int64_t since = busy_since_[i].load(std::memory_order_relaxed);
    if (since == 0) continue;
    const std::chrono::steady_clock::time_point started{
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::nanoseconds(since))};
    if (!oldest || started < *oldest) oldest = started;
  }
  return oldest;
}

SpoolCommitter::~SpoolCommitter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_available_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void SpoolCommitter::Enqueue(Job job) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  work_available_.notify_one();
}

void SpoolCommitter::RunWorker(std::atomic<std::int64_t>& busy_since) {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mutex_);
      work_available_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has been committed
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const auto started = std::chrono::steady_clock::now();
    busy_since.store(
        std::chrono::duration_cast<std::chrono::nanoseconds>(started.time_since_epoch()).count(),
        std::memory_order_relaxed);
    CommitOutcome outcome = Commit(*job.instance, job.rules);
    job.instance.reset();  // closes the file (and removes it if the commit failed)
    busy_since.store(0, std::memory_order_relaxed);
    stats_.commit_seconds.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    job.completion->Complete(std::move(outcome));
  }
}

CommitOutcome SpoolCommitter::Commit(IncomingInstance& instance,
                                     const routing::RulesSnapshot& rules) {
  SpoolRecord& record = instance.record();
  auto read = InstanceHeader::Read(instance.paths().part);
  if (!read) return Failure(dimse::status::kCannotUnderstand, read.error());
  const InstanceHeader& header = *read.value();
  // PS3.4 B.2.3: the dataset must be the instance the command announced.
  if (header.sop_class_uid() != record.sop_class_uid) {
    return Failure(dimse::status::kDataSetDoesNotMatchSopClass,
                   "SOPClassUID in the dataset differs from AffectedSOPClassUID");
  }
  if (header.sop_instance_uid() != record.sop_instance_uid) {
    return Failure(dimse::status::kDataSetDoesNotMatchSopClass,
                   "SOPInstanceUID in the dataset differs from AffectedSOPInstanceUID");
  }
  record.study_instance_uid = header.study_instance_uid();
  record.series_instance_uid = header.series_instance_uid();
  record.modality = header.modality();

  if (rules.rules) {
    const auto started = std::chrono::steady_clock::now();
    rules::RoutingDecision decision = rules.rules->Evaluate(header.attributes(), record.facts);
    stats_.routing.Decided(
        decision,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    if (decision.discarded) {
      // Acknowledged and dropped, as the rule says: nothing to make durable.
      return CommitOutcome{dimse::status::kSuccess, "", record, decision.discarded_by};
    }
    record.rules_generation = rules.generation;
    record.routes = std::move(decision.routes);
  }

  const std::string serialized = SerializeSpoolRecord(record);
  if (serialized.size() > kSpoolRecordCapacity) {
    // Only a rule with an absurd number of routes and edits gets here; refuse rather than
    // keep an instance whose routing was not recorded.
    return Failure(dimse::status::kOutOfResources,
                   "routing record exceeds " + std::to_string(kSpoolRecordCapacity) + " bytes");
  }
  if (::pwrite(instance.fd(), serialized.data(), serialized.size(),
               static_cast<off_t>(instance.record_offset())) !=
      static_cast<ssize_t>(serialized.size())) {
    return Failure(dimse::status::kOutOfResources, ErrnoText("write spool record"));
  }
  // Data and record first, then the name: a file in the committed directory is always whole.
  if (::fdatasync(instance.fd()) != 0) {
    return Failure(dimse::status::kOutOfResources, ErrnoText("fdatasync"));
  }
  if (::rename(instance.paths().part.c_str(), instance.paths().committed.c_str()) != 0) {
    return Failure(dimse::status::kOutOfResources, ErrnoText("rename into spool"));
  }
  instance.MarkCommitted();
  usage_.AddCommitted(1, instance.file_bytes());
  // Queued for forwarding even if the directory sync below fails: the file is whole and in
  // place, and recovery would queue it at the next start anyway.
  if (committed_) committed_(record, instance.file_bytes());
  if (const std::error_code error = committed_directory_.Sync()) {
    // The file is whole and in place; only the directory entry's durability is in doubt, so
    // the sender must retry. Recovery keeps the file either way.
    return Failure(dimse::status::kOutOfResources, "fsync spool directory: " + error.message());
  }
  return CommitOutcome{dimse::status::kSuccess, {}, record, {}};
}

}  // namespace conduit::spool
