#include "router/spool/spool.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fstream>
#include <iterator>
#include <thread>

#include "router/dimse/status.h"
#include "router/metrics/ingest_metrics.h"
#include "router/metrics/routing_metrics.h"
#include "router/spool/dir_syncer.h"
#include "router/spool/spool_committer.h"
#include "router/spool/spool_record.h"
#include "rules/rule_set.h"

namespace conduit::spool {
namespace {

constexpr const char* kCorpus = "/usr/lib/python3/dist-packages/pydicom/data/test_files";

std::vector<std::uint8_t> ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The dataset bytes of a Part 10 file: everything after the meta group.
std::vector<std::uint8_t> DatasetOf(const std::vector<std::uint8_t>& file) {
  const std::size_t group_length_offset = 128 + 4 + 8;
  const std::uint32_t group_length =
      file[group_length_offset] | (file[group_length_offset + 1] << 8) |
      (file[group_length_offset + 2] << 16) |
      (static_cast<std::uint32_t>(file[group_length_offset + 3]) << 24);
  return {file.begin() + static_cast<std::ptrdiff_t>(group_length_offset + 4 + group_length),
          file.end()};
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("conduit-spool-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    config_.directory = directory_;
    config_.min_free_bytes = 0;
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  rules::AssociationFacts Facts() const {
    rules::AssociationFacts facts;
    facts.calling_ae = "CT1";
    facts.called_ae = "CONDUIT";
    facts.peer_address = "127.0.0.1";
    facts.peer_port = 4242;
    facts.received_at = std::chrono::system_clock::now();
    return facts;
  }

  // Spools CT_small.dcm's dataset as if it had arrived in PDVs, commits it and returns the
  // outcome.
  CommitOutcome SpoolCorpusFile(Spool& spool, const std::string& sop_instance_override = {}) {
    const auto source = ReadFile(std::filesystem::path(kCorpus) / "CT_small.dcm");
    Part10Identity identity{"1.2.840.10008.5.1.4.1.1.2",
                            sop_instance_override.empty()
                                ? "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
                                : sop_instance_override,
                            "1.2.840.10008.1.2.1", "CT1", "CONDUIT"};
    auto instance = spool.Begin(identity, Facts(), 7);
    EXPECT_TRUE(instance.ok());
    const auto dataset = DatasetOf(source);
    // Arrive in uneven fragments, as PDVs do.
    for (std::size_t offset = 0; offset < dataset.size(); offset += 1000) {
      const std::size_t length = std::min<std::size_t>(1000, dataset.size() - offset);
      EXPECT_FALSE(instance.value()->Append(std::span(dataset.data() + offset, length)));
    }
    boost::asio::io_context io_context;
    prometheus::Registry registry;
    config::Config config;
    metrics::IngestMetrics metrics(registry, config);
    metrics::RoutingMetrics routing(registry);
    SpoolStats stats{metrics.commit_seconds(), routing};
    SpoolCommitter committer(2, spool.committed_directory(), spool.usage(), stats,
                             io_context.get_executor());
    auto future = committer.AsyncCommit(std::move(instance.value()), {}, boost::asio::use_future);
    io_context.run_for(std::chrono::seconds(10));
    return future.get();
  }

  std::filesystem::path directory_;
  config::SpoolConfig config_;
};

TEST_F(SpoolTest, CommittedFileIsValidPart10WithTheSendersBytes) {
  Spool spool(config_);
  spool.Recover();
  const CommitOutcome outcome = SpoolCorpusFile(spool);
  ASSERT_EQ(outcome.status, dimse::status::kSuccess) << outcome.error_comment;
  EXPECT_EQ(outcome.record.modality, "CT");
  EXPECT_EQ(outcome.record.facts.calling_ae, "CT1");

  const auto committed = spool.committed_directory() / (outcome.record.spool_id + ".dcm");
  ASSERT_TRUE(std::filesystem::exists(committed));
  EXPECT_TRUE(std::filesystem::is_empty(spool.incoming_directory()));
  const auto source = ReadFile(std::filesystem::path(kCorpus) / "CT_small.dcm");
  EXPECT_EQ(DatasetOf(ReadFile(committed)), DatasetOf(source)) << "dataset was re-encoded";

  // DCMTK reads it back, meta header included, and finds the record in PrivateInformation.
  DcmFileFormat file;
  ASSERT_TRUE(file.loadFile(committed.c_str()).good());
  OFString value;
  file.getMetaInfo()->findAndGetOFString(DCM_SendingApplicationEntityTitle, value);
  EXPECT_EQ(value, "CT1");
  file.getMetaInfo()->findAndGetOFString(DCM_ReceivingApplicationEntityTitle, value);
  EXPECT_EQ(value, "CONDUIT");
  file.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, value);
  EXPECT_EQ(value, "1.2.840.10008.1.2.1");
  const Uint8* private_information = nullptr;
  unsigned long length = 0;
  ASSERT_TRUE(file.getMetaInfo()
                  ->findAndGetUint8Array(DCM_PrivateInformation, private_information, &length)
                  .good());
  auto record = ParseSpoolRecord(
      std::string_view(reinterpret_cast<const char*>(private_information), length));
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->spool_id, outcome.record.spool_id);
  EXPECT_EQ(record->association_id, 7U);
  EXPECT_EQ(record->dataset_bytes, DatasetOf(source).size());
  EXPECT_EQ(record->series_instance_uid, outcome.record.series_instance_uid);
}

TEST_F(SpoolTest, MismatchedInstanceUidIsRefusedAndLeavesNothing) {
  Spool spool(config_);
  spool.Recover();
  const CommitOutcome outcome = SpoolCorpusFile(spool, "1.2.3.4");
  EXPECT_EQ(outcome.status, dimse::status::kDataSetDoesNotMatchSopClass);
  EXPECT_TRUE(std::filesystem::is_empty(spool.committed_directory()));
  EXPECT_TRUE(std::filesystem::is_empty(spool.incoming_directory()));
  EXPECT_EQ(spool.usage().bytes(), 0U);
}

TEST_F(SpoolTest, UnparseableDatasetIsCannotUnderstand) {
  Spool spool(config_);
  spool.Recover();
  Part10Identity identity{"1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2.1", "A", "B"};
  auto instance = spool.Begin(identity, Facts(), 1);
  ASSERT_TRUE(instance.ok());
  // An element header claiming 0xFFFFFFF0 bytes of a string VR: not a dataset.
  const std::vector<std::uint8_t> garbage = {0x08, 0x00, 0x18, 0x00, 'U', 'I', 0xF0, 0xFF};
  ASSERT_FALSE(instance.value()->Append(garbage));
  boost::asio::io_context io_context;
  prometheus::Registry registry;
  metrics::IngestMetrics metrics(registry, config::Config{});
  metrics::RoutingMetrics routing(registry);
  SpoolStats stats{metrics.commit_seconds(), routing};
  SpoolCommitter committer(1, spool.committed_directory(), spool.usage(), stats,
                           io_context.get_executor());
  auto future = committer.AsyncCommit(std::move(instance.value()), {}, boost::asio::use_future);
  io_context.run_for(std::chrono::seconds(10));
  const CommitOutcome outcome = future.get();
  EXPECT_NE(outcome.status, dimse::status::kSuccess);
  EXPECT_TRUE(std::filesystem::is_empty(spool.committed_directory()));
}

TEST_F(SpoolTest, AbandonedInstanceIsRemoved) {
  Spool spool(config_);
  spool.Recover();
  {
    Part10Identity identity{"1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2", "A", "B"};
    auto instance = spool.Begin(identity, Facts(), 1);
    ASSERT_TRUE(instance.ok());
    ASSERT_FALSE(instance.value()->Append(std::vector<std::uint8_t>(5000, 1)));
    EXPECT_FALSE(std::filesystem::is_empty(spool.incoming_directory()));
    EXPECT_GT(spool.usage().bytes(), 5000U);
  }
  EXPECT_TRUE(std::filesystem::is_empty(spool.incoming_directory()));
  EXPECT_EQ(spool.usage().bytes(), 0U);
}

TEST_F(SpoolTest, RecoveryDropsPartialsAndCountsCommitted) {
  {
    Spool spool(config_);
    spool.Recover();
    ASSERT_EQ(SpoolCorpusFile(spool).status, dimse::status::kSuccess);
  }
  // What a crash mid-reception leaves behind.
  std::ofstream(directory_ / "incoming" / "0000-dead.part") << "half an instance";
  Spool reopened(config_);
  const RecoverySummary summary = reopened.Recover();
  EXPECT_EQ(summary.committed_instances, 1U);
  EXPECT_EQ(summary.removed_partial_files, 1U);
  EXPECT_GT(summary.committed_bytes, 0U);
  EXPECT_EQ(reopened.usage().instances(), 1U);
  EXPECT_TRUE(std::filesystem::is_empty(reopened.incoming_directory()));
}

TEST_F(SpoolTest, BudgetRefusesOnceMaxBytesIsReached) {
  config_.max_bytes = 4096;
  Spool spool(config_);
  spool.Recover();
  EXPECT_TRUE(spool.usage().HasRoom());
  Part10Identity identity{"1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.840.10008.1.2", "A", "B"};
  auto instance = spool.Begin(identity, Facts(), 1);
  ASSERT_TRUE(instance.ok());
  ASSERT_FALSE(instance.value()->Append(std::vector<std::uint8_t>(4096, 0)));
  EXPECT_FALSE(spool.usage().HasRoom());
  instance.value().reset();
  EXPECT_TRUE(spool.usage().HasRoom());
}

TEST(SpoolUsageTest, InstanceLimitRefusesUntilATenthHasLeft) {
  SpoolUsage usage(std::filesystem::temp_directory_path(), 1ULL << 40, 0, 20);
  for (int i = 0; i < 19; ++i) usage.AddCommitted(1, 100);
  EXPECT_TRUE(usage.HasRoom());
  usage.AddCommitted(1, 100);
  EXPECT_FALSE(usage.HasRoom());
  usage.MarkFull();
  usage.RemoveCommitted(0);  // 19 left: under the limit, but the latch holds
  EXPECT_FALSE(usage.HasRoom());
  usage.RemoveCommitted(0);  // 18: a tenth of max_instances has left
  EXPECT_TRUE(usage.HasRoom());
}

TEST_F(SpoolTest, DiskLowWaterMarkRefuses) {
  config_.min_free_bytes = std::numeric_limits<std::uint64_t>::max();
  Spool spool(config_);
  spool.Recover();
  EXPECT_FALSE(spool.usage().HasRoom());
}

TEST(DirSyncerTest, ConcurrentCallersAllReturnSynced) {
  const auto directory =
      std::filesystem::temp_directory_path() / ("conduit-dirsync-" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  {
    DirSyncer syncer(directory);
    std::vector<std::thread> threads;
    std::atomic<int> errors{0};
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&] {
        for (int round = 0; round < 20; ++round) {
          if (syncer.Sync()) ++errors;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(errors, 0);
  }
  std::filesystem::remove_all(directory);
}

TEST(SpoolRecordTest, RoundTripsAndNeutralisesControlCharacters) {
  SpoolRecord record;
  record.spool_id = "0123-abcd";
  record.association_id = 99;
  record.facts.calling_ae = "CT1";
  record.facts.peer_address = "::1";
  record.facts.peer_port = 104;
  record.facts.received_at = std::chrono::system_clock::time_point(std::chrono::microseconds(5));
  record.modality = "CT\nspool_id=forged";
  record.dataset_bytes = 1234;
  std::string text = SerializeSpoolRecord(record);
  text.resize(kSpoolRecordCapacity, '\0');  // as stored in its slot
  auto parsed = ParseSpoolRecord(text);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->spool_id, "0123-abcd");
  EXPECT_EQ(parsed->modality, "CT?spool_id=forged");
  EXPECT_EQ(parsed->facts.peer_port, 104);
  EXPECT_EQ(parsed->facts.received_at, record.facts.received_at);
  EXPECT_EQ(parsed->dataset_bytes, 1234U);
  EXPECT_FALSE(ParseSpoolRecord(std::string(100, '\0')).has_value());
  EXPECT_FALSE(ParseSpoolRecord("conduit_spool_record=1\npeer_port=notanumber\n").has_value());
}

}  // namespace
}  // namespace conduit::spool

namespace conduit::spool {
namespace {

TEST(SpoolRecordTest, RoutesAndEditsRoundTripWhateverTheirCharacters) {
  SpoolRecord record;
  record.spool_id = "id";
  record.rules_generation = 4;
  rules::Route pacs;
  pacs.destination = "PACS";
  pacs.priority = -3;
  pacs.level = rules::RoutingLevel::kStudy;
  pacs.quiet_period = std::chrono::seconds(90);
  pacs.rule = "ct|mr %rule";
  rules::TagEdit replace;
  replace.kind = rules::TagEdit::Kind::kRegexReplace;
  replace.target_text = "PatientID";
  replace.pattern = "^(a|b)\n%";
  replace.replacement = "\\1=x";
  pacs.edits.push_back(replace);
  rules::TagEdit copy;
  copy.kind = rules::TagEdit::Kind::kCopy;
  copy.target_text = "StudyID";
  copy.source_text = "AccessionNumber";
  pacs.edits.push_back(copy);
  rules::Route research;
  research.destination = "RESEARCH";
  research.transcode_profile = "htj2k";
  record.routes = {pacs, research};

  auto parsed = ParseSpoolRecord(SerializeSpoolRecord(record));
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->rules_generation, 4U);
  ASSERT_EQ(parsed->routes.size(), 2U);
  const rules::Route& first = parsed->routes[0];
  EXPECT_EQ(first.destination, "PACS");
  EXPECT_EQ(first.priority, -3);
  EXPECT_EQ(first.level, rules::RoutingLevel::kStudy);
  EXPECT_EQ(first.quiet_period, std::chrono::seconds(90));
  EXPECT_EQ(first.rule, "ct|mr %rule");
  ASSERT_EQ(first.edits.size(), 2U);
  EXPECT_EQ(first.edits[0].kind, rules::TagEdit::Kind::kRegexReplace);
  EXPECT_EQ(first.edits[0].pattern, "^(a|b)\n%");
  EXPECT_EQ(first.edits[0].replacement, "\\1=x");
  EXPECT_EQ(first.edits[1].kind, rules::TagEdit::Kind::kCopy);
  EXPECT_EQ(first.edits[1].source_text, "AccessionNumber");
  EXPECT_EQ(parsed->routes[1].transcode_profile, "htj2k");
  EXPECT_TRUE(parsed->routes[1].edits.empty());
}

TEST(SpoolRecordTest, MalformedRouteLinesAreRefused) {
  const std::string base = "conduit_spool_record=1\n";
  EXPECT_FALSE(ParseSpoolRecord(base + "route=PACS|1|\n").has_value()) << "too few fields";
  EXPECT_FALSE(ParseSpoolRecord(base + "route=PACS|x|||0|r\n").has_value()) << "bad priority";
  EXPECT_FALSE(ParseSpoolRecord(base + "route=PACS|1||planet|0|r\n").has_value()) << "bad level";
  EXPECT_FALSE(ParseSpoolRecord(base + "edit=0|set|A|B|||\n").has_value()) << "edit before route";
  EXPECT_FALSE(ParseSpoolRecord(base + "route=P%4|1||instance|0|r\n").has_value())
      << "truncated escape";
  EXPECT_TRUE(ParseSpoolRecord(base + "route=P%7C|1||instance|0|r\n").has_value());
}

}  // namespace
}  // namespace conduit::spool
