// Preparing an instance for a destination, shared by every forwarder: the route's edits, a
// conversion or a transcode run on the transcode pool (never on a network thread), a transcoded
// result is made durable on the pool's disk threads before it is sent, and the transcode metrics
// count what happened.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "router/config/config.h"
#include "router/forward/dataset_preparer.h"
#include "router/forward/destination.h"
#include "router/forward/transcode_pool.h"
#include "router/metrics/transcode_metrics.h"

namespace conduit::forward {

// What every forwarder shares: the transcode profiles, the pool and the preparer.
struct PreparationServices {
  const std::vector<config::TranscodeProfile>& profiles;
  TranscodePool& pool;
  const DatasetPreparer& preparer;
  metrics::TranscodeMetrics& metrics;

  // The profile called `name`; null for an empty name or one the configuration lacks.
  const config::TranscodeProfile* Profile(const std::string& name) const;
};

// `item` for `destination` in `target_uid`, with the route's profile: PrepareOnPool, then
// PersistPrepared. The arguments are references (the caller awaits at once): by-value arguments
// would be temporaries in the co_await expression, which GCC 12 mishandles. nullopt when it
// cannot be prepared: the item has then been dead-lettered with the reason.
boost::asio::awaitable<std::optional<PreparedDataset>> PrepareForDestination(
    PreparationServices& services, Destination& destination, const QueuedInstancePtr& item,
    const std::string& target_uid);

// The pool's part alone: edits, conversion or transcode, and the transcode metrics. A transcoded
// result comes back in memory (needs_persisting): PersistPrepared it before it is sent.
boost::asio::awaitable<std::optional<PreparedDataset>> PrepareOnPool(PreparationServices& services,
                                                                     Destination& destination,
                                                                     const QueuedInstancePtr& item,
                                                                     const std::string& target_uid);

// The disk's part: makes a transcoded result durable on the pool's disk threads, so that a retry
// (even after a restart) reuses it. Nothing to do for one that needs no persisting. A failed
// write is logged, and `prepared` stays in memory, still sendable.
boost::asio::awaitable<void> PersistPrepared(PreparationServices& services,
                                             Destination& destination,
                                             const QueuedInstancePtr& item,
                                             PreparedDataset& prepared);

}  // namespace conduit::forward
