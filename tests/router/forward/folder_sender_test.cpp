#include "router/forward/folder_sender.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "router/config/config.h"

namespace conduit::forward {
namespace {

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FolderSenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("conduit-folder-sender-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    archive_ = directory_ / "archive";
    std::filesystem::create_directories(archive_);
    source_ = directory_ / "source.bin";
    std::string source_bytes;
    for (int i = 0; i < 3000; ++i) source_bytes.push_back(static_cast<char>(i * 7 % 251));
    std::ofstream(source_, std::ios::binary) << source_bytes;
    source_bytes_ = source_bytes;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  static KeyTemplate DefaultTemplate() {
    return KeyTemplate::Parse(config::kDefaultKeyTemplate).value();
  }

  static QueuedInstancePtr Item(const std::string& id) {
    auto item = std::make_shared<QueuedInstance>();
    item->spool_id = id;
    item->sop_class_uid = "1.2.840.10008.5.1.4.1.1.7";
    item->sop_instance_uid = "1.2.3.4." + id;
    item->transfer_syntax_uid = "1.2.840.10008.1.2.1";
    item->study_instance_uid = "1.2.3";
    item->series_instance_uid = "1.2.3.4";
    return item;
  }

  // An object whose Part 10 body has all three kinds of piece: text, a file range, memory.
  ArchiveObject Object(const std::string& id, const std::string& head) {
    ArchiveObject object;
    object.item = Item(id);
    object.sop_instance_uid = object.item->sop_instance_uid;
    object.transfer_syntax_uid = object.item->transfer_syntax_uid;
    object.part10.emplace_back(head);
    object.part10.emplace_back(http::FileSlice{source_, 100, 2500});
    object.part10.emplace_back(std::span<const std::uint8_t>(tail_));
    object.bytes = http::BodyLength(object.part10);
    return object;
  }

  std::string Expected(const std::string& head) const {
    return head + source_bytes_.substr(100, 2500) + std::string(tail_.begin(), tail_.end());
  }

  // Files left behind by a write that did not finish: ".<name>.tmp-<n>".
  std::vector<std::filesystem::path> Temporaries() const {
    std::vector<std::filesystem::path> found;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(directory_)) {
      const std::string name = entry.path().filename().string();
      if (name.starts_with('.') && name.find(".tmp-") != std::string::npos) {
        found.push_back(entry.path());
      }
    }
    return found;
  }

  std::filesystem::path directory_;
  std::filesystem::path archive_;
  std::filesystem::path source_;
  std::string source_bytes_;
  std::vector<std::uint8_t> tail_{'e', 'n', 'd', 0, 1, 2};
};

TEST_F(FolderSenderTest, WritesEachObjectByteForByteAtItsKey) {
  FolderSender sender(archive_, DefaultTemplate());
  const std::vector<ArchiveObject> objects = {Object("a", "head-a"), Object("b", "head-b!")};
  const ArchiveDelivery delivery = sender.Deliver(objects);
  ASSERT_EQ(delivery.objects.size(), 2U);
  for (const ArchiveObjectOutcome& outcome : delivery.objects) {
    EXPECT_EQ(outcome.result, ArchiveResult::kDelivered) << outcome.reason;
  }
  EXPECT_FALSE(delivery.destination_failure.has_value());
  EXPECT_FALSE(delivery.retry_after.has_value());
  const std::filesystem::path series = archive_ / "1.2.3" / "1.2.3.4";
  EXPECT_EQ(ReadAll(series / "1.2.3.4.a.dcm"), Expected("head-a"));
  EXPECT_EQ(ReadAll(series / "1.2.3.4.b.dcm"), Expected("head-b!"));
  EXPECT_EQ(std::filesystem::file_size(series / "1.2.3.4.a.dcm"), objects[0].bytes);
  EXPECT_TRUE(Temporaries().empty());
}

TEST_F(FolderSenderTest, KeyUsesTheObjectsSopInstanceUid) {
  FolderSender sender(archive_, KeyTemplate::Parse("flat/{SOPInstanceUID}.dcm").value());
  ArchiveObject object = Object("a", "head");
  object.sop_instance_uid = "2.25.42";  // as after a lossy transcode
  const ArchiveDelivery delivery = sender.Deliver({object});
  ASSERT_EQ(delivery.objects.size(), 1U);
  EXPECT_EQ(delivery.objects[0].result, ArchiveResult::kDelivered);
  EXPECT_EQ(ReadAll(archive_ / "flat" / "2.25.42.dcm"), Expected("head"));
}

TEST_F(FolderSenderTest, RetryReplacesTheExistingFile) {
  FolderSender sender(archive_, DefaultTemplate());
  ASSERT_EQ(sender.Deliver({Object("a", "a first, longer head")}).objects.at(0).result,
            ArchiveResult::kDelivered);
  ASSERT_EQ(sender.Deliver({Object("a", "second")}).objects.at(0).result,
            ArchiveResult::kDelivered);
  EXPECT_EQ(ReadAll(archive_ / "1.2.3" / "1.2.3.4" / "1.2.3.4.a.dcm"), Expected("second"));
  EXPECT_TRUE(Temporaries().empty());
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(archive_)) {
    files += entry.is_regular_file() ? 1 : 0;
  }
  EXPECT_EQ(files, 1U);
}

TEST_F(FolderSenderTest, MissingFolderIsTheDestinationFailingNotTheObjects) {
  const std::filesystem::path unmounted = directory_ / "unmounted";
  FolderSender sender(unmounted, DefaultTemplate());
  const ArchiveDelivery delivery = sender.Deliver({Object("a", "x"), Object("b", "y")});
  ASSERT_EQ(delivery.objects.size(), 2U);
  for (const ArchiveObjectOutcome& outcome : delivery.objects) {
    EXPECT_EQ(outcome.result, ArchiveResult::kNotAttempted);
  }
  ASSERT_TRUE(delivery.destination_failure.has_value());
  EXPECT_NE(delivery.destination_failure->find(unmounted.string()), std::string::npos)
      << *delivery.destination_failure;
  EXPECT_FALSE(std::filesystem::exists(unmounted)) << "the folder is not created";
}

TEST_F(FolderSenderTest, ProbeSaysWhetherTheFolderIsUsable) {
  FolderSender present(archive_, DefaultTemplate());
  EXPECT_FALSE(present.Probe().has_value());
  const std::filesystem::path missing = directory_ / "missing";
  FolderSender absent(missing, DefaultTemplate());
  const std::optional<std::string> problem = absent.Probe();
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find(missing.string()), std::string::npos) << *problem;
  // It comes back when the folder does.
  std::filesystem::create_directories(missing);
  EXPECT_FALSE(absent.Probe().has_value());
}

TEST_F(FolderSenderTest, UnreadableSourceFailsThatObjectAndLeavesNoTemporary) {
  FolderSender sender(archive_, DefaultTemplate());
  ArchiveObject broken = Object("a", "head");
  const std::filesystem::path gone = directory_ / "gone.dcm";
  broken.part10[1] = http::FileSlice{gone, 0, 10};
  const ArchiveDelivery delivery = sender.Deliver({broken, Object("b", "fine")});
  ASSERT_EQ(delivery.objects.size(), 2U);
  EXPECT_NE(delivery.objects[0].result, ArchiveResult::kDelivered);
  EXPECT_NE(delivery.objects[0].result, ArchiveResult::kNotAttempted);
  EXPECT_NE(delivery.objects[0].reason.find(gone.string()), std::string::npos)
      << delivery.objects[0].reason;
  EXPECT_EQ(delivery.objects[1].result, ArchiveResult::kDelivered) << "the others still go";
  EXPECT_FALSE(delivery.destination_failure.has_value());
  const std::filesystem::path series = archive_ / "1.2.3" / "1.2.3.4";
  EXPECT_FALSE(std::filesystem::exists(series / "1.2.3.4.a.dcm"));
  EXPECT_TRUE(std::filesystem::exists(series / "1.2.3.4.b.dcm"));
  EXPECT_TRUE(Temporaries().empty());
}

TEST_F(FolderSenderTest, TruncatedSourceFailsWithoutAPartialFile) {
  FolderSender sender(archive_, DefaultTemplate());
  ArchiveObject truncated = Object("a", "head");
  truncated.part10[1] = http::FileSlice{source_, 100, source_bytes_.size()};  // runs past the end
  const ArchiveDelivery delivery = sender.Deliver({truncated});
  ASSERT_EQ(delivery.objects.size(), 1U);
  EXPECT_NE(delivery.objects[0].result, ArchiveResult::kDelivered);
  EXPECT_NE(delivery.objects[0].reason.find("shorter than expected"), std::string::npos)
      << delivery.objects[0].reason;
  EXPECT_FALSE(std::filesystem::exists(archive_ / "1.2.3" / "1.2.3.4" / "1.2.3.4.a.dcm"));
  EXPECT_TRUE(Temporaries().empty());
}

TEST_F(FolderSenderTest, EmptyBodyPiecesAreFine) {
  FolderSender sender(archive_, KeyTemplate::Parse("{SOPInstanceUID}").value());
  ArchiveObject object;
  object.item = Item("e");
  object.sop_instance_uid = "9.9";
  object.part10.emplace_back(std::string());
  object.part10.emplace_back(http::FileSlice{source_, 0, 0});
  object.part10.emplace_back(std::string("only this"));
  EXPECT_EQ(sender.Deliver({object}).objects.at(0).result, ArchiveResult::kDelivered);
  EXPECT_EQ(ReadAll(archive_ / "9.9"), "only this");
}

}  // namespace
}  // namespace conduit::forward
