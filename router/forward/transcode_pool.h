// The CPU pool that prepares datasets (edits, conversions, transcoding) off the network threads:
// one worker per core by default. A lane awaits its job and resumes on its own strand; each lane
// has at most one job in the pool, so the queue is bounded by the number of lanes and a slow
// pool holds the lanes back (backpressure) instead of piling up memory.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <type_traits>
#include <utility>

#include "router/metrics/transcode_metrics.h"

namespace conduit::forward {

class TranscodePool {
 public:
  TranscodePool(unsigned threads, metrics::TranscodeMetrics& metrics);
  ~TranscodePool();  // waits for running jobs

  unsigned threads() const { return threads_; }
  // Waits for the jobs already running or queued; their results go to executors that may have
  // stopped (and are then dropped). For shutdown, before what the jobs use is destroyed.
  void Join() {
    pool_.join();
    disk_pool_.join();
  }

  // Runs `job` on a worker and returns its result to the awaiting coroutine, on that
  // coroutine's own executor.
  template <typename Job>
  boost::asio::awaitable<std::invoke_result_t<Job>> Run(Job job) {
    metrics_.Queued(+1);
    // A coroutine function, not a coroutine lambda: GCC 12 mishandles the captures of lambdas
    // that are coroutines (they were destroyed twice). The value is wrapped in optional because
    // co_spawn's completion needs a default-constructible one.
    auto result = co_await boost::asio::co_spawn(
        pool_.get_executor(), Execute(metrics_, std::move(job)), boost::asio::use_awaitable);
    co_return std::move(*result);
  }

  // The same for disk work (durable writes of transcoded results), on threads of its own so
  // that the CPU workers never wait for a flush.
  template <typename Job>
  boost::asio::awaitable<std::invoke_result_t<Job>> RunDiskWork(Job job) {
    auto result = co_await boost::asio::co_spawn(
        disk_pool_.get_executor(), ExecuteDiskWork(std::move(job)), boost::asio::use_awaitable);
    co_return std::move(*result);
  }

 private:
  template <typename Job>
  static boost::asio::awaitable<std::optional<std::invoke_result_t<Job>>> Execute(
      metrics::TranscodeMetrics& metrics, Job job) {
    metrics.Queued(-1);
    metrics.Busy(+1);
    std::optional<std::invoke_result_t<Job>> value(job());
    metrics.Busy(-1);
    co_return value;
  }

  template <typename Job>
  static boost::asio::awaitable<std::optional<std::invoke_result_t<Job>>> ExecuteDiskWork(Job job) {
    co_return std::optional<std::invoke_result_t<Job>>(job());
  }

  unsigned threads_;
  metrics::TranscodeMetrics& metrics_;
  boost::asio::thread_pool pool_;
  boost::asio::thread_pool disk_pool_;
};

}  // namespace conduit::forward
