#include "router/forward/transcode_pool.h"

namespace conduit::forward {
namespace {

// Concurrent flushes of transcoded copies: two keep the disk busy without one worker's flush
// waiting behind another's (the spool's own commits have sync_threads of their own).
constexpr unsigned kDiskThreads = 2;

}  // namespace

TranscodePool::TranscodePool(unsigned threads, metrics::TranscodeMetrics& metrics)
    : threads_(threads), metrics_(metrics), pool_(threads), disk_pool_(kDiskThreads) {
  metrics_.SetWorkers(threads);
}

TranscodePool::~TranscodePool() { Join(); }

}  // namespace conduit::forward
