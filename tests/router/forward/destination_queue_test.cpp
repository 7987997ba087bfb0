#include "router/forward/destination_queue.h"

#include <gtest/gtest.h>

#include "router/forward/delivery_outcome.h"
#include "router/forward/retry_delay.h"

namespace conduit::forward {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

config::RetryPolicy TestPolicy() {
  config::RetryPolicy policy;
  policy.initial_delay = milliseconds(1000);
  policy.max_delay = seconds(8);
  policy.multiplier = 2.0;
  policy.jitter = 0.0;
  policy.max_age = std::chrono::hours(1);
  policy.breaker_failures = 3;
  return policy;
}

const Clock::time_point kStart = Clock::time_point{} + std::chrono::hours(24 * 365 * 50);

QueuedInstancePtr Item(std::string id, std::string study = "1.2.3",
                       rules::RoutingLevel level = rules::RoutingLevel::kInstance,
                       seconds quiet = seconds(0), int priority = 0) {
  auto item = std::make_shared<QueuedInstance>();
  item->spool_id = std::move(id);
  item->sop_instance_uid = "1.9." + item->spool_id;
  item->study_instance_uid = std::move(study);
  item->series_instance_uid = item->study_instance_uid + ".1";
  item->received_at = kStart;
  item->route.destination = "pacs";
  item->route.level = level;
  item->route.quiet_period = quiet;
  item->route.priority = priority;
  return item;
}

class DestinationQueueTest : public ::testing::Test {
 protected:
  DestinationQueue queue_{TestPolicy(), [] { return 0.5; }};
};

TEST_F(DestinationQueueTest, InstancesLeaveOneAtATimeInArrivalOrder) {
  queue_.Add(Item("a"), kStart);
  queue_.Add(Item("b"), kStart);
  auto first = queue_.Take(kStart);
  ASSERT_EQ(first.size(), 1U);
  EXPECT_EQ(first[0]->spool_id, "a");
  auto second = queue_.Take(kStart);
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(second[0]->spool_id, "b");
  EXPECT_TRUE(queue_.Take(kStart).empty());
  EXPECT_EQ(queue_.Status().in_flight, 2U);
  queue_.Delivered(first[0]);
  queue_.Delivered(second[0]);
  EXPECT_EQ(queue_.Status().owed(), 0U);
}

TEST_F(DestinationQueueTest, HigherPriorityGoesFirst) {
  queue_.Add(Item("low", "1", rules::RoutingLevel::kInstance, seconds(0), 0), kStart);
  queue_.Add(Item("high", "1", rules::RoutingLevel::kInstance, seconds(0), 5), kStart);
  EXPECT_EQ(queue_.Take(kStart)[0]->spool_id, "high");
  EXPECT_EQ(queue_.Take(kStart)[0]->spool_id, "low");
}

TEST_F(DestinationQueueTest, TransientFailureWaitsForTheBackoffThenRetries) {
  queue_.Add(Item("a"), kStart);
  auto taken = queue_.Take(kStart);
  EXPECT_FALSE(queue_.Failed(taken[0], DeliveryOutcome::kTransient, "0xA700", kStart));
  EXPECT_EQ(queue_.Status().retry_wait, 1U);
  queue_.Tick(kStart + milliseconds(999), false);
  EXPECT_TRUE(queue_.Take(kStart + milliseconds(999)).empty());
  queue_.Tick(kStart + milliseconds(1000), false);
  auto again = queue_.Take(kStart + milliseconds(1000));
  ASSERT_EQ(again.size(), 1U);
  EXPECT_EQ(again[0]->failures, 1U);
  // The second failure doubles the delay.
  queue_.Failed(again[0], DeliveryOutcome::kTransient, "0xA700", kStart + seconds(1));
  queue_.Tick(kStart + seconds(2) + milliseconds(999), false);
  EXPECT_TRUE(queue_.Take(kStart + seconds(3) - milliseconds(1)).empty());
  queue_.Tick(kStart + seconds(3), false);
  EXPECT_EQ(queue_.Take(kStart + seconds(3)).size(), 1U);
}

TEST_F(DestinationQueueTest, PermanentFailureGoesToDeadLetterAtOnce) {
  queue_.Add(Item("a"), kStart);
  auto taken = queue_.Take(kStart);
  EXPECT_TRUE(queue_.Failed(taken[0], DeliveryOutcome::kPermanent, "status 0xA900", kStart));
  const QueueStatus status = queue_.Status();
  EXPECT_EQ(status.dead_letter, 1U);
  EXPECT_EQ(status.owed(), 0U);
  ASSERT_EQ(queue_.DeadLetters(10).size(), 1U);
  EXPECT_EQ(queue_.DeadLetters(10)[0]->dead_letter_reason, "status 0xA900");
}

TEST_F(DestinationQueueTest, ItemsPastTheMaximumAgeAreDeadLettered) {
  queue_.Add(Item("a"), kStart);
  auto taken = queue_.Take(kStart);
  const auto late = kStart + std::chrono::hours(1) + seconds(1);
  EXPECT_TRUE(queue_.Failed(taken[0], DeliveryOutcome::kTransient, "connection refused", late));
  EXPECT_NE(taken[0]->dead_letter_reason.find("not delivered within 1 h"), std::string::npos);
  EXPECT_NE(taken[0]->dead_letter_reason.find("connection refused"), std::string::npos);
  // Waiting ones expire at a sweep, without a send.
  queue_.Add(Item("b"), kStart);
  EXPECT_TRUE(queue_.Tick(late, false).empty());
  const auto expired = queue_.Tick(late, true);
  ASSERT_EQ(expired.size(), 1U);
  EXPECT_EQ(expired[0]->spool_id, "b");
  EXPECT_EQ(queue_.Status().dead_letter, 2U);
  EXPECT_EQ(queue_.Status().owed(), 0U);
}

TEST_F(DestinationQueueTest, StudyIsHeldUntilQuietThenLeavesTogether) {
  const auto study = rules::RoutingLevel::kStudy;
  queue_.Add(Item("a", "7.7", study, seconds(10)), kStart);
  queue_.Add(Item("b", "7.7", study, seconds(10)), kStart + seconds(5));
  queue_.Add(Item("other", "8.8", study, seconds(10)), kStart + seconds(5));
  EXPECT_EQ(queue_.Status().held, 3U);
  queue_.Tick(kStart + seconds(14), false);  // 9 s after the last arrival: not quiet yet
  EXPECT_TRUE(queue_.Take(kStart + seconds(14)).empty());
  queue_.Tick(kStart + seconds(15), false);
  auto first = queue_.Take(kStart + seconds(15));
  auto second = queue_.Take(kStart + seconds(15));
  ASSERT_EQ(first.size() + second.size(), 3U);
  const auto& seven = first.size() == 2 ? first : second;
  EXPECT_EQ(seven[0]->spool_id, "a");
  EXPECT_EQ(seven[1]->spool_id, "b");
  // A late arrival is reported and held again for its own quiet period.
  EXPECT_TRUE(queue_.Add(Item("late", "7.7", study, seconds(10)), kStart + seconds(20)));
  EXPECT_FALSE(queue_.Add(Item("new", "9.9", study, seconds(10)), kStart + seconds(20)));
  EXPECT_EQ(queue_.Status().held, 2U);
}

TEST_F(DestinationQueueTest, ConnectionFailuresPauseThenOpenTheCircuitUntilAProbeSucceeds) {
  queue_.Add(Item("a"), kStart);
  auto taken = queue_.Take(kStart);
  queue_.Return(taken);
  queue_.ConnectionFailed("refused", kStart);
  EXPECT_EQ(queue_.Status().in_flight, 0U);
  EXPECT_EQ(queue_.Status().ready, 1U);
  EXPECT_TRUE(queue_.Take(kStart + milliseconds(500)).empty());  // paused for 1 s
  taken = queue_.Take(kStart + seconds(1));
  EXPECT_EQ(taken.size(), 1U);
  queue_.Return(taken);
  queue_.ConnectionFailed("refused", kStart + seconds(1));
  queue_.ConnectionFailed("refused", kStart + seconds(3));
  EXPECT_EQ(queue_.Status().circuit, CircuitState::kOpen);
  EXPECT_FALSE(queue_.BeginProbe(kStart + seconds(4)));  // 4 s backoff from the third failure
  EXPECT_TRUE(queue_.BeginProbe(kStart + seconds(7)));
  EXPECT_FALSE(queue_.BeginProbe(kStart + seconds(7)));  // one probe at a time
  EXPECT_TRUE(queue_.Take(kStart + seconds(7)).empty());
  queue_.ConnectionSucceeded();
  EXPECT_EQ(queue_.Status().circuit, CircuitState::kClosed);
  EXPECT_EQ(queue_.Take(kStart + seconds(7)).size(), 1U);
}

TEST_F(DestinationQueueTest, RetryNowBringsBackDeadLettersOfOneStudy) {
  for (const char* id : {"a", "b", "c"}) {
    queue_.Add(Item(id, id == std::string("c") ? "2.2" : "1.1"), kStart);
    queue_.Failed(queue_.Take(kStart)[0], DeliveryOutcome::kPermanent, "refused", kStart);
  }
  const auto moved = queue_.RetryNow({true, std::string("1.1")});
  EXPECT_EQ(moved.size(), 2U);
  EXPECT_EQ(queue_.Status().dead_letter, 1U);
  EXPECT_EQ(queue_.Status().ready, 2U);
  EXPECT_EQ(moved[0]->failures, 0U);
}

TEST_F(DestinationQueueTest, PurgeNeverTouchesItemsInFlight) {
  queue_.Add(Item("sending"), kStart);
  queue_.Add(Item("waiting"), kStart);
  auto taken = queue_.Take(kStart);
  const auto purged = queue_.Purge({false, std::nullopt});
  ASSERT_EQ(purged.size(), 1U);
  EXPECT_EQ(purged[0]->spool_id, "waiting");
  EXPECT_EQ(queue_.Status().in_flight, 1U);
}

std::vector<std::string> Ids(const std::vector<QueuedInstancePtr>& items) {
  std::vector<std::string> ids;
  for (const QueuedInstancePtr& item : items) ids.push_back(item->spool_id);
  return ids;
}

using IdList = std::vector<std::string>;

TEST_F(DestinationQueueTest, TakeWithMaxItemsSplitsAReleasedStudyFirstItemsFirst) {
  for (const char* id : {"a", "b", "c", "d", "e"}) {
    queue_.Add(Item(id, "7.7", rules::RoutingLevel::kStudy), kStart);
  }
  queue_.Tick(kStart, false);
  queue_.Add(Item("later", "8.8"), kStart);  // queued behind the released study
  EXPECT_EQ(Ids(queue_.Take(kStart, 2)), (IdList{"a", "b"}));
  EXPECT_EQ(queue_.Status().ready, 4U);
  EXPECT_EQ(queue_.Status().in_flight, 2U);
  // The rest of the study stays first in line, ahead of what came after it.
  EXPECT_EQ(Ids(queue_.Take(kStart, 2)), (IdList{"c", "d"}));
  EXPECT_EQ(Ids(queue_.Take(kStart, 2)), (IdList{"e"}));
  EXPECT_EQ(Ids(queue_.Take(kStart, 2)), (IdList{"later"}));
  EXPECT_TRUE(queue_.Take(kStart, 2).empty());
  EXPECT_EQ(queue_.Status().ready, 0U);
  EXPECT_EQ(queue_.Status().in_flight, 6U);
}

TEST_F(DestinationQueueTest, ReleasedStudyWithinMaxItemsLeavesWhole) {
  for (const char* id : {"a", "b", "c"}) {
    queue_.Add(Item(id, "7.7", rules::RoutingLevel::kStudy), kStart);
  }
  queue_.Tick(kStart, false);
  EXPECT_EQ(Ids(queue_.Take(kStart, 3)), (IdList{"a", "b", "c"}));
  EXPECT_TRUE(queue_.Take(kStart, 0).empty());
}

TEST_F(DestinationQueueTest, TakeForAStudyNeverSkipsTheNextItemInLine) {
  queue_.Add(Item("a1", "1.1"), kStart);
  queue_.Add(Item("b1", "2.2"), kStart);
  queue_.Add(Item("a2", "1.1"), kStart);
  EXPECT_EQ(Ids(queue_.Take(kStart, 10, "1.1")), (IdList{"a1"}));
  // b1 is next: nothing for study 1.1, and b1 keeps its place.
  EXPECT_TRUE(queue_.Take(kStart, 10, "1.1").empty());
  EXPECT_EQ(queue_.Status().ready, 2U);
  EXPECT_EQ(Ids(queue_.Take(kStart, 10, "2.2")), (IdList{"b1"}));
  EXPECT_EQ(Ids(queue_.Take(kStart, 10, "1.1")), (IdList{"a2"}));
  EXPECT_TRUE(queue_.Take(kStart, 10, "1.1").empty());
}

TEST_F(DestinationQueueTest, TakeForAStudyChecksTheNextReleasedGroup) {
  for (const char* id : {"b1", "b2"}) {
    queue_.Add(Item(id, "2.2", rules::RoutingLevel::kStudy), kStart);
  }
  queue_.Tick(kStart, false);
  EXPECT_TRUE(queue_.Take(kStart, 10, "1.1").empty());
  EXPECT_EQ(queue_.Status().ready, 2U);
  EXPECT_EQ(Ids(queue_.Take(kStart, 1, "2.2")), (IdList{"b1"}));
  EXPECT_EQ(Ids(queue_.Take(kStart, 10, "2.2")), (IdList{"b2"}));
}

TEST_F(DestinationQueueTest, ThrottleHoldsTakeBackUntilItsTime) {
  queue_.Add(Item("a"), kStart);
  queue_.Throttle(kStart + seconds(30));
  EXPECT_TRUE(queue_.Take(kStart + seconds(29)).empty());
  EXPECT_FALSE(queue_.HasReadyWork(kStart + seconds(29)));
  QueueStatus status = queue_.Status();
  ASSERT_TRUE(status.paused_until.has_value());
  EXPECT_EQ(*status.paused_until, kStart + seconds(30));
  EXPECT_EQ(status.ready, 1U);
  // Not a connection failure: the breaker does not count it.
  EXPECT_EQ(queue_.connection_failures(), 0U);
  EXPECT_EQ(status.circuit, CircuitState::kClosed);
  // A shorter throttle does not cut a longer one short.
  queue_.Throttle(kStart + seconds(10));
  EXPECT_EQ(*queue_.Status().paused_until, kStart + seconds(30));
  EXPECT_TRUE(queue_.HasReadyWork(kStart + seconds(30)));
  EXPECT_EQ(Ids(queue_.Take(kStart + seconds(30))), (IdList{"a"}));
}

TEST_F(DestinationQueueTest, ThrottleOutlastsAShorterConnectionPause) {
  queue_.Add(Item("a"), kStart);
  queue_.Throttle(kStart + seconds(30));
  queue_.ConnectionFailed("refused", kStart);  // paused 1 s
  EXPECT_EQ(*queue_.Status().paused_until, kStart + seconds(30));
  queue_.ConnectionSucceeded();
  EXPECT_TRUE(queue_.Take(kStart + seconds(5)).empty()) << "success does not lift a throttle";
  EXPECT_EQ(queue_.Take(kStart + seconds(30)).size(), 1U);
}

TEST_F(DestinationQueueTest, RetryNowLiftsAThrottle) {
  queue_.Add(Item("a"), kStart);
  queue_.Throttle(kStart + seconds(30));
  queue_.RetryNow({false, std::nullopt});
  EXPECT_FALSE(queue_.Status().paused_until.has_value());
  EXPECT_EQ(queue_.Take(kStart).size(), 1U);
}

TEST_F(DestinationQueueTest, RetryAfterLongerThanTheBackoffDelaysTheRetry) {
  queue_.Add(Item("a"), kStart);
  auto taken = queue_.Take(kStart);
  EXPECT_FALSE(queue_.Failed(taken[0], DeliveryOutcome::kTransient, "429", kStart, seconds(20)));
  queue_.Tick(kStart + seconds(1), false);  // the backoff alone would be due now
  EXPECT_TRUE(queue_.Take(kStart + seconds(1)).empty());
  queue_.Tick(kStart + seconds(20) - milliseconds(1), false);
  EXPECT_EQ(queue_.Status().retry_wait, 1U);
  queue_.Tick(kStart + seconds(20), false);
  EXPECT_EQ(Ids(queue_.Take(kStart + seconds(20))), (IdList{"a"}));
}

TEST_F(DestinationQueueTest, RetryAfterShorterThanTheBackoffKeepsTheBackoff) {
  queue_.Add(Item("a"), kStart);
  auto taken = queue_.Take(kStart);
  queue_.Failed(taken[0], DeliveryOutcome::kTransient, "503", kStart, milliseconds(100));
  queue_.Tick(kStart + milliseconds(999), false);
  EXPECT_EQ(queue_.Status().retry_wait, 1U);
  queue_.Tick(kStart + seconds(1), false);
  EXPECT_EQ(queue_.Take(kStart + seconds(1)).size(), 1U);
}

TEST_F(DestinationQueueTest, ReturnedInstancesKeepTheirOrder) {
  queue_.Add(Item("a"), kStart);
  queue_.Add(Item("b"), kStart);
  queue_.Add(Item("c"), kStart);
  std::vector<QueuedInstancePtr> taken = queue_.Take(kStart);
  const auto second = queue_.Take(kStart);
  taken.insert(taken.end(), second.begin(), second.end());
  ASSERT_EQ(Ids(taken), (IdList{"a", "b"}));
  // As after a request that never reached the destination: "back to the front, unchanged"
  // (destination_queue.h), so they leave again in the order they were taken.
  queue_.Return(taken);
  EXPECT_EQ(queue_.Status().in_flight, 0U);
  EXPECT_EQ(Ids(queue_.Take(kStart, 10)), (IdList{"a"}));
  EXPECT_EQ(Ids(queue_.Take(kStart, 10)), (IdList{"b"}));
  EXPECT_EQ(Ids(queue_.Take(kStart, 10)), (IdList{"c"}));
}

TEST(RetryDelayTest, ExponentialCappedAndJittered) {
  config::RetryPolicy policy = TestPolicy();
  EXPECT_EQ(RetryDelay(policy, 1, 0.5), milliseconds(1000));
  EXPECT_EQ(RetryDelay(policy, 2, 0.5), milliseconds(2000));
  EXPECT_EQ(RetryDelay(policy, 4, 0.5), milliseconds(8000));
  EXPECT_EQ(RetryDelay(policy, 5000, 0.5), milliseconds(8000));
  policy.jitter = 0.2;
  EXPECT_EQ(RetryDelay(policy, 1, 0.0), milliseconds(800));
  EXPECT_EQ(RetryDelay(policy, 1, 0.999999), milliseconds(1199));
  EXPECT_EQ(RetryDelay(policy, 10, 0.999999), milliseconds(8000));  // never past the cap
}

TEST(ClassifyStoreStatusTest, FollowsPs34AndTheWarningSetting) {
  EXPECT_EQ(ClassifyStoreStatus(0x0000, true), DeliveryOutcome::kDelivered);
  EXPECT_EQ(ClassifyStoreStatus(0xB000, true), DeliveryOutcome::kDelivered);
  EXPECT_EQ(ClassifyStoreStatus(0xB007, false), DeliveryOutcome::kPermanent);
  EXPECT_EQ(ClassifyStoreStatus(0x0001, true), DeliveryOutcome::kDelivered);
  EXPECT_EQ(ClassifyStoreStatus(0xA700, true), DeliveryOutcome::kTransient);
  EXPECT_EQ(ClassifyStoreStatus(0xA7FF, true), DeliveryOutcome::kTransient);
  EXPECT_EQ(ClassifyStoreStatus(0xA900, true), DeliveryOutcome::kPermanent);
  EXPECT_EQ(ClassifyStoreStatus(0xC000, true), DeliveryOutcome::kPermanent);
  EXPECT_EQ(ClassifyStoreStatus(0xC123, true), DeliveryOutcome::kPermanent);
  EXPECT_EQ(ClassifyStoreStatus(0x0122, true), DeliveryOutcome::kPermanent);
  EXPECT_EQ(ClassifyStoreStatus(0x0110, true), DeliveryOutcome::kTransient);
  EXPECT_EQ(ClassifyStoreStatus(0xFE00, true), DeliveryOutcome::kTransient);
}

}  // namespace
}  // namespace conduit::forward
