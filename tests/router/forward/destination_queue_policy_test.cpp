// A reload hands a destination's queue a new retry policy (DestinationQueue::SetPolicy).
#include <gtest/gtest.h>

#include <chrono>

#include "router/forward/destination_queue.h"

namespace conduit::forward {
namespace {

TEST(DestinationQueuePolicy, ANewBreakerThresholdAppliesToTheNextFailure) {
  config::RetryPolicy lenient;
  lenient.breaker_failures = 5;
  DestinationQueue queue(lenient, [] { return 0.5; });
  const Clock::time_point now = Clock::now();
  queue.ConnectionFailed("refused", now);
  queue.ConnectionFailed("refused", now);
  EXPECT_EQ(queue.circuit(), CircuitState::kClosed);

  config::RetryPolicy strict = lenient;
  strict.breaker_failures = 2;
  queue.SetPolicy(strict);
  queue.ConnectionFailed("refused", now);
  EXPECT_EQ(queue.circuit(), CircuitState::kOpen) << "three failures in a row, two allowed";
}

}  // namespace
}  // namespace conduit::forward
