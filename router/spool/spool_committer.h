// Makes received instances durable off the network threads: reads the header (up to Pixel
// Data), writes the spool record into the file, fdatasyncs it, renames it into the committed
// directory and group-commits that directory. Several workers run at once, so concurrent
// associations share the filesystem journal commits instead of queueing behind each other.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "router/routing/rules_runtime.h"
#include "router/spool/dir_syncer.h"
#include "router/spool/incoming_instance.h"
#include "router/spool/spool_record.h"

namespace prometheus {
class Histogram;
}
namespace conduit::metrics {
class RoutingMetrics;
}

namespace conduit::spool {

class SpoolUsage;

struct CommitOutcome {
  std::uint16_t status = 0;   // the DIMSE status to answer the C-STORE with
  std::string error_comment;  // why, when not success
  SpoolRecord record;         // what was committed (or discarded), on success
  std::string discarded_by;   // the discard rule that matched: acknowledged, not kept
};

// Told of every instance that became durable in the committed directory, on the worker thread
// that committed it, before the sender's answer is posted: the forwarders' queues.
using CommittedHook = std::function<void(const SpoolRecord& record, std::uint64_t file_bytes)>;

struct SpoolStats {
  prometheus::Histogram& commit_seconds;  // from the last PDV to durable
  metrics::RoutingMetrics& routing;
};

class SpoolCommitter {
 public:
  SpoolCommitter(unsigned worker_count, const std::filesystem::path& committed_directory,
                 SpoolUsage& usage, SpoolStats& stats, boost::asio::any_io_executor fallback,
                 CommittedHook committed = {});
  ~SpoolCommitter();  // finishes queued commits, then joins the workers
  SpoolCommitter(const SpoolCommitter&) = delete;
  SpoolCommitter& operator=(const SpoolCommitter&) = delete;

  // When the longest-running commit began; nullopt while every worker is idle. A commit that
  // never ends (a hung disk) shows here, and the service watchdog stops vouching for the daemon.
  std::optional<std::chrono::steady_clock::time_point> OldestCommitStartedAt() const;

  // Routes the instance with `rules` (the snapshot taken when its C-STORE began), makes it
  // durable with its routes, and completes with the outcome on the handler's executor (the
  // association's strand).
  template <typename CompletionToken>
  auto AsyncCommit(std::unique_ptr<IncomingInstance> instance, routing::RulesSnapshot rules,
                   CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(CommitOutcome)>(
        [this](auto handler, std::unique_ptr<IncomingInstance> pending,
               routing::RulesSnapshot snapshot) {
          using Handler = decltype(handler);
          Enqueue(Job{std::move(pending), std::move(snapshot),
                      std::make_unique<Completion<Handler>>(std::move(handler), fallback_)});
        },
        token, std::move(instance), std::move(rules));
  }

 private:
  // The waiting handler, type-erased; Complete() posts it to its own executor (the session's
  // strand), since the worker thread calling it is not one of the io_context's.
  struct CompletionBase {
    virtual ~CompletionBase() = default;
    virtual void Complete(CommitOutcome outcome) = 0;
  };
  template <typename Handler>
  struct Completion final : CompletionBase {
    Completion(Handler h, const boost::asio::any_io_executor& fallback)
        : handler(std::move(h)),
          executor(boost::asio::get_associated_executor(handler, fallback)) {}
    void Complete(CommitOutcome outcome) override {
      boost::asio::post(executor, [h = std::move(handler), o = std::move(outcome)]() mutable {
        std::move(h)(std::move(o));
      });
    }
    Handler handler;
    boost::asio::associated_executor_t<Handler, boost::asio::any_io_executor> executor;
  };

  struct Job {
    std::unique_ptr<IncomingInstance> instance;
    routing::RulesSnapshot rules;
    std::unique_ptr<CompletionBase> completion;
  };

  void Enqueue(Job job);
  void RunWorker(std::atomic<std::int64_t>& busy_since);
  CommitOutcome Commit(IncomingInstance& instance, const routing::RulesSnapshot& rules);

  DirSyncer committed_directory_;
  SpoolUsage& usage_;
  SpoolStats& stats_;
  boost::asio::any_io_executor fallback_;
  CommittedHook committed_;
  std::mutex mutex_;
  std::condition_variable work_available_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  // Per worker: when its current commit began (steady clock, ns), 0 while idle.
  std::unique_ptr<std::atomic<std::int64_t>[]> busy_since_;
  unsigned worker_count_;
  std::vector<std::thread> workers_;
};

}  // namespace conduit::spool
