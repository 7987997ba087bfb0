#include "router/forward/retry_delay.h"

#include <algorithm>
#include <cmath>

namespace conduit::forward {

std::chrono::milliseconds RetryDelay(const config::RetryPolicy& policy, std::uint32_t failures,
                                     double unit_random) {
  const double initial = static_cast<double>(policy.initial_delay.count());
  const double cap = static_cast<double>(
      std::chrono::duration_cast<std::chrono::milliseconds>(policy.max_delay).count());
  // Capping the exponent first keeps pow() finite after thousands of failures.
  const double exponent = std::min<double>(std::max<std::uint32_t>(failures, 1) - 1, 64.0);
  const double backoff = std::min(cap, initial * std::pow(policy.multiplier, exponent));
  const double jittered = backoff * (1.0 + policy.jitter * (2.0 * unit_random - 1.0));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::clamp(jittered, 1.0, cap)));
}

}  // namespace conduit::forward
