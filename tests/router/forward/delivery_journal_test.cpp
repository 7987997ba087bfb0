#include "router/forward/delivery_journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace conduit::forward {
namespace {

class DeliveryJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("conduit_journal_test_" + std::to_string(::getpid()) + "_" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    path_ = directory_ / "pacs.journal";
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::unique_ptr<DeliveryJournal> Open() {
    auto journal = DeliveryJournal::Open(path_);
    EXPECT_TRUE(journal) << (journal ? "" : journal.error());
    return std::move(journal.value());
  }

  std::filesystem::path directory_;
  std::filesystem::path path_;
};

TEST_F(DeliveryJournalTest, ReplaysMarksInOrder) {
  {
    auto journal = Open();
    journal->Append(JournalMark::kAttempt, "a");
    journal->Append(JournalMark::kAttempt, "b");
    journal->Append(JournalMark::kDelivered, "b");
    journal->Append(JournalMark::kAttempt, "c");
    journal->Append(JournalMark::kDeadLettered, "c", "C-STORE status 0xA900:\nbad\tdata");
    journal->Append(JournalMark::kDeadLettered, "d", "refused");
    journal->Append(JournalMark::kRetried, "d");
    journal->Append(JournalMark::kPurged, "e");
    EXPECT_FALSE(journal->Sync());
  }
  auto journal = Open();
  const auto& states = journal->recovered();
  ASSERT_EQ(states.size(), 5U);
  EXPECT_TRUE(states.at("a").attempted);
  EXPECT_FALSE(states.at("a").delivered);
  EXPECT_TRUE(states.at("b").delivered);
  EXPECT_TRUE(states.at("c").dead_lettered);
  EXPECT_EQ(states.at("c").reason, "C-STORE status 0xA900: bad data");  // one line
  EXPECT_FALSE(states.at("d").dead_lettered);
  EXPECT_TRUE(states.at("e").purged);
}

TEST_F(DeliveryJournalTest, TornLastLineIsIgnored) {
  { std::ofstream(path_) << "D a\nS b\nF c reason\nX"; }
  auto journal = Open();
  EXPECT_EQ(journal->recovered().size(), 3U);
  EXPECT_TRUE(journal->recovered().at("a").delivered);
}

TEST_F(DeliveryJournalTest, CompactKeepsOnlyLiveInstancesAndAppendsAfter) {
  {
    auto journal = Open();
    journal->Append(JournalMark::kDelivered, "gone");
    journal->Append(JournalMark::kDelivered, "live");
    journal->Append(JournalMark::kDeadLettered, "dead", "why");
  }
  {
    auto journal = Open();
    EXPECT_FALSE(journal->Compact([](const std::string& id) { return id != "gone"; }));
    EXPECT_TRUE(journal->recovered().empty());
    journal->Append(JournalMark::kAttempt, "new");
  }
  auto journal = Open();
  const auto& states = journal->recovered();
  EXPECT_EQ(states.size(), 3U);
  EXPECT_FALSE(states.contains("gone"));
  EXPECT_TRUE(states.at("live").delivered);
  EXPECT_EQ(states.at("dead").reason, "why");
  EXPECT_TRUE(states.at("new").attempted);
}

TEST_F(DeliveryJournalTest, ClearEmptiesTheLog) {
  {
    auto journal = Open();
    journal->Append(JournalMark::kDelivered, "a");
    EXPECT_FALSE(journal->Clear());
    journal->Append(JournalMark::kAttempt, "b");
  }
  auto journal = Open();
  EXPECT_EQ(journal->recovered().size(), 1U);
  EXPECT_TRUE(journal->recovered().contains("b"));
}

}  // namespace
}  // namespace conduit::forward
