// The delay before the next try: exponential backoff with jitter and a cap.
#pragma once

#include <chrono>
#include <cstdint>

#include "router/config/config.h"

namespace conduit::forward {

// `failures` counts the failures so far (1 after the first); `unit_random` is uniform in [0, 1)
// and spreads the delay by +/- policy.jitter, so that items (or routers) that failed together
// do not all come back at the same instant.
std::chrono::milliseconds RetryDelay(const config::RetryPolicy& policy, std::uint32_t failures,
                                     double unit_random);

}  // namespace conduit::forward
