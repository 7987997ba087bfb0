#include "router/forward/transcode_pool.h"

namespace conduit::forward {

TranscodePool::TranscodePool(unsigned threads, metrics::TranscodeMetrics& metrics)
    : threads_(threads), metrics_(metrics), pool_(threads) {
  metrics_.SetWorkers(threads);
}

TranscodePool::~TranscodePool() { pool_.join(); }

}  // namespace conduit::forward
