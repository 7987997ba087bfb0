#include "router/forward/archive_forwarder.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "router/forward/dataset_preparer.h"
#include "router/forward/delivery_journal.h"
#include "router/forward/destination.h"
#include "router/forward/preparation.h"
#include "router/forward/transcode_pool.h"
#include "router/metrics/forward_metrics.h"
#include "router/metrics/transcode_metrics.h"
#include "router/spool/part10_header.h"
#include "rules/attribute_path_parser.h"

namespace conduit::forward {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kSopClass = "1.2.840.10008.5.1.4.1.1.7";
constexpr const char* kExplicitLittle = "1.2.840.10008.1.2.1";

std::string ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string ReadRange(const std::filesystem::path& path, std::uint64_t offset,
                      std::uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string bytes(length, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(length));
  bytes.resize(static_cast<std::size_t>(in.gcount()));
  return bytes;
}

// The bytes a request body stands for, read while the sender has it.
std::string Materialise(const http::Body& body) {
  std::string bytes;
  for (const http::BodyPiece& piece : body) {
    if (const auto* text = std::get_if<std::string>(&piece)) {
      bytes += *text;
    } else if (const auto* span = std::get_if<std::span<const std::uint8_t>>(&piece)) {
      bytes.append(reinterpret_cast<const char*>(span->data()), span->size());
    } else {
      const auto& slice = std::get<http::FileSlice>(piece);
      bytes += ReadRange(slice.file, slice.offset, slice.length);
    }
  }
  return bytes;
}

// Where the dataset starts in Part 10 bytes: after the preamble, "DICM" and the meta group.
std::size_t DatasetOffset(const std::string& part10) {
  constexpr std::size_t kGroupLengthValue = 128 + 4 + 8;
  std::uint32_t length = 0;
  for (int i = 3; i >= 0; --i) {
    length = (length << 8) | static_cast<std::uint8_t>(part10.at(kGroupLengthValue + i));
  }
  return kGroupLengthValue + 4 + length;
}

// Explicit VR Little Endian elements for a small dataset.
void PutU16(std::string& out, std::uint16_t value) {
  out.push_back(static_cast<char>(value & 0xff));
  out.push_back(static_cast<char>(value >> 8));
}
void PutShort(std::string& out, std::uint16_t group, std::uint16_t element, const char* vr,
              std::string value) {
  if (value.size() % 2) value.push_back(std::string_view(vr) == "UI" ? '\0' : ' ');
  PutU16(out, group);
  PutU16(out, element);
  out.append(vr, 2);
  PutU16(out, static_cast<std::uint16_t>(value.size()));
  out += value;
}
void PutOb(std::string& out, std::uint16_t group, std::uint16_t element, std::size_t length) {
  PutU16(out, group);
  PutU16(out, element);
  out += "OB";
  PutU16(out, 0);
  PutU16(out, static_cast<std::uint16_t>(length & 0xffff));
  PutU16(out, static_cast<std::uint16_t>(length >> 16));
  for (std::size_t i = 0; i < length; ++i) out.push_back(static_cast<char>(i * 13 % 256));
}

// ---------------------------------------------------------------------------------------------
// A fake archive: records what each Deliver is given and answers as scripted.

using Answer = std::function<ArchiveDelivery(const std::vector<ArchiveObject>&)>;

Answer AllAs(ArchiveResult result, std::string reason,
             std::optional<std::string> destination_failure = std::nullopt,
             std::optional<seconds> retry_after = std::nullopt) {
  return [=](const std::vector<ArchiveObject>& objects) {
    ArchiveDelivery delivery = ArchiveDelivery::AllSame(objects.size(), result, reason);
    delivery.destination_failure = destination_failure;
    delivery.retry_after = retry_after;
    return delivery;
  };
}

struct RecordedObject {
  std::string spool_id;
  std::string study;
  std::uint32_t failures = 0;  // as the item was when it was handed over
  std::string sop_instance_uid;
  std::string transfer_syntax_uid;
  std::uint64_t bytes = 0;
  std::uint64_t file_bytes = 0;
  std::string body;
};
using RecordedBatch = std::vector<RecordedObject>;

class FakeArchive {
 public:
  std::size_t max_objects = 1;
  std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max();

  void Script(Answer answer) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(answer));
  }
  void SetProbeOk(bool ok) { probe_ok_ = ok; }
  // Deliver waits until the forwarder raises its cancel flag, then answers kNotAttempted.
  void BlockUntilCancelled() { block_ = true; }

  std::vector<RecordedBatch> batches() const {
    std::lock_guard lock(mutex_);
    return batches_;
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mutex_);
    return events_;
  }
  std::size_t Count(const std::string& event) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count(events_.begin(), events_.end(), event));
  }
  bool delivering() const { return delivering_; }
  bool saw_cancel() const { return saw_cancel_; }

  ArchiveDelivery Deliver(const std::vector<ArchiveObject>& objects,
                          const std::atomic<bool>& cancel) {
    RecordedBatch batch;
    for (const ArchiveObject& object : objects) {
      batch.push_back({object.item->spool_id, object.item->study_instance_uid,
                       object.item->failures, object.sop_instance_uid, object.transfer_syntax_uid,
                       object.bytes, object.item->file_bytes, Materialise(object.part10)});
    }
    Answer answer;
    {
      std::lock_guard lock(mutex_);
      batches_.push_back(std::move(batch));
      events_.push_back("deliver");
      if (!script_.empty()) {
        answer = std::move(script_.front());
        script_.pop_front();
      }
    }
    if (block_) {
      delivering_ = true;
      while (!cancel) std::this_thread::sleep_for(milliseconds(1));
      saw_cancel_ = true;
      return ArchiveDelivery::AllSame(objects.size(), ArchiveResult::kNotAttempted, "cancelled");
    }
    if (answer) return answer(objects);
    return ArchiveDelivery::AllSame(objects.size(), ArchiveResult::kDelivered, "");
  }

  std::optional<std::string> Probe() {
    {
      std::lock_guard lock(mutex_);
      events_.push_back("probe");
    }
    if (probe_ok_) return std::nullopt;
    return std::string("still down");
  }

 private:
  mutable std::mutex mutex_;
  std::deque<Answer> script_;
  std::vector<RecordedBatch> batches_;
  std::vector<std::string> events_;
  std::atomic<bool> probe_ok_{true};
  std::atomic<bool> block_{false};
  std::atomic<bool> delivering_{false};
  std::atomic<bool> saw_cancel_{false};
};

class FakeSender final : public ArchiveSender {
 public:
  FakeSender(FakeArchive& archive, const std::atomic<bool>& cancel)
      : archive_(archive), cancel_(cancel) {}
  std::size_t max_objects() const override { return archive_.max_objects; }
  std::uint64_t max_bytes() const override { return archive_.max_bytes; }
  ArchiveDelivery Deliver(const std::vector<ArchiveObject>& objects) override {
    return archive_.Deliver(objects, cancel_);
  }
  std::optional<std::string> Probe() override { return archive_.Probe(); }

 private:
  FakeArchive& archive_;
  const std::atomic<bool>& cancel_;
};

std::vector<std::string> Ids(const RecordedBatch& batch) {
  std::vector<std::string> ids;
  for (const RecordedObject& object : batch) ids.push_back(object.spool_id);
  return ids;
}

// ---------------------------------------------------------------------------------------------

class ArchiveForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("conduit-archive-forwarder-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_ / "committed");
    std::filesystem::create_directories(directory_ / "queues");
    preparer_ = std::make_unique<DatasetPreparer>(directory_);
    services_ = std::make_unique<PreparationServices>(
        PreparationServices{profiles_, pool_, *preparer_, transcode_metrics_});

    config_.name = "archive";
    config_.kind = config::DestinationKind::kFolder;
    config_.calling_ae = "CONDUIT";
    // Long waits by default, so that nothing comes back by itself during a test.
    config_.retry.initial_delay = std::chrono::hours(1);
    config_.retry.max_delay = std::chrono::hours(1);
    config_.retry.multiplier = 1.0;
    config_.retry.jitter = 0.0;
    config_.retry.max_age = std::chrono::hours(24);
    config_.retry.breaker_failures = 3;

    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    forwarder_.reset();
    work_.reset();
    io_thread_.join();
    std::filesystem::remove_all(directory_);
  }

  // After config_ is final.
  void MakeDestination() {
    auto journal = DeliveryJournal::Open(directory_ / "queues" / "archive.journal");
    ASSERT_TRUE(journal.ok()) << journal.error();
    destination_ = std::make_unique<Destination>(
        "archive", &config_, std::move(journal.value()),
        forward_metrics_.ForDestination(&config_, "archive"), [this](const std::string& id) {
          std::lock_guard lock(settled_mutex_);
          settled_.push_back(id);
        });
  }

  void Start(unsigned workers = 1) {
    forwarder_ = std::make_unique<ArchiveForwarder>(
        io_, *destination_, config_, *services_,
        [this](const std::atomic<bool>& cancel) {
          return std::make_unique<FakeSender>(archive_, cancel);
        },
        workers);
    forwarder_->Start();
  }

  // A spooled Part 10 file (meta group with the spool record slot, then the dataset) and its
  // queue item.
  QueuedInstancePtr Spool(const std::string& id, const std::string& study,
                          std::size_t pixel_bytes = 64,
                          rules::RoutingLevel level = rules::RoutingLevel::kInstance) {
    auto item = std::make_shared<QueuedInstance>();
    item->spool_id = id;
    item->sop_class_uid = kSopClass;
    item->sop_instance_uid = study + ".1." + id;
    item->transfer_syntax_uid = kExplicitLittle;
    item->study_instance_uid = study;
    item->series_instance_uid = study + ".1";
    item->received_at = Clock::now();
    item->route.destination = "archive";
    item->route.level = level;
    std::string dataset;
    PutShort(dataset, 0x0008, 0x0016, "UI", item->sop_class_uid);
    PutShort(dataset, 0x0008, 0x0018, "UI", item->sop_instance_uid);
    PutShort(dataset, 0x0008, 0x0060, "CS", "OT");
    PutShort(dataset, 0x0010, 0x0010, "PN", "DOE^JOHN");
    PutShort(dataset, 0x0020, 0x000D, "UI", item->study_instance_uid);
    PutShort(dataset, 0x0020, 0x000E, "UI", item->series_instance_uid);
    PutOb(dataset, 0x7FE0, 0x0010, pixel_bytes);
    const spool::Part10Header header = spool::BuildPart10Header(
        {item->sop_class_uid, item->sop_instance_uid, kExplicitLittle, "MODALITY", "CONDUIT"});
    item->file = directory_ / "committed" / (id + ".dcm");
    std::ofstream out(item->file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header.bytes.data()),
              static_cast<std::streamsize>(header.bytes.size()));
    out << dataset;
    out.close();
    item->file_bytes = std::filesystem::file_size(item->file);
    return item;
  }

  QueuedInstancePtr Add(const std::string& id, const std::string& study,
                        std::size_t pixel_bytes = 64,
                        rules::RoutingLevel level = rules::RoutingLevel::kInstance) {
    QueuedInstancePtr item = Spool(id, study, pixel_bytes, level);
    destination_->Add(item, Clock::now());
    return item;
  }

  // Polls `done`, ticking the destination as the forwarding service does (retries come due,
  // groups are released, the forwarder is woken). False after a generous deadline.
  template <typename Predicate>
  bool WaitFor(Predicate done) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(20);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      destination_->Tick(false);
      std::this_thread::sleep_for(milliseconds(1));
    }
    return true;
  }

  bool AllSettled() { return destination_->Status().owed() == 0; }

  std::vector<std::string> Settled() {
    std::lock_guard lock(settled_mutex_);
    return settled_;
  }

  std::filesystem::path directory_;
  prometheus::Registry registry_;
  metrics::ForwardMetrics forward_metrics_{registry_};
  metrics::TranscodeMetrics transcode_metrics_{registry_};
  std::vector<config::TranscodeProfile> profiles_;
  TranscodePool pool_{1, transcode_metrics_};
  std::unique_ptr<DatasetPreparer> preparer_;
  std::unique_ptr<PreparationServices> services_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread io_thread_;
  config::DestinationConfig config_;
  std::mutex settled_mutex_;
  std::vector<std::string> settled_;
  std::unique_ptr<Destination> destination_;
  FakeArchive archive_;
  std::unique_ptr<ArchiveForwarder> forwarder_;
};

TEST_F(ArchiveForwarderTest, BatchesHoldOneStudyUpToMaxObjects) {
  MakeDestination();
  archive_.max_objects = 3;
  // Instance-level items of two studies, interleaved in runs.
  const std::vector<std::pair<std::string, std::string>> order = {
      {"a1", "1.1"}, {"a2", "1.1"}, {"b1", "2.2"}, {"a3", "1.1"}, {"a4", "1.1"},
      {"a5", "1.1"}, {"a6", "1.1"}, {"b2", "2.2"}, {"b3", "2.2"}};
  for (const auto& [id, study] : order) Add(id, study);
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  const std::vector<RecordedBatch> batches = archive_.batches();
  using IdList = std::vector<std::string>;
  ASSERT_EQ(batches.size(), 5U);
  EXPECT_EQ(Ids(batches[0]), (IdList{"a1", "a2"}));
  EXPECT_EQ(Ids(batches[1]), (IdList{"b1"}));
  EXPECT_EQ(Ids(batches[2]), (IdList{"a3", "a4", "a5"}));
  EXPECT_EQ(Ids(batches[3]), (IdList{"a6"}));
  EXPECT_EQ(Ids(batches[4]), (IdList{"b2", "b3"}));
  // Delivered items leave the queue and are settled with the spool.
  const QueueStatus status = destination_->Status();
  EXPECT_EQ(status.owed(), 0U);
  EXPECT_EQ(status.dead_letter, 0U);
  std::vector<std::string> settled = Settled();
  std::sort(settled.begin(), settled.end());
  EXPECT_EQ(settled, (IdList{"a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3"}));
}

TEST_F(ArchiveForwarderTest, ReleasedStudyIsSplitIntoRequestsOfMaxObjects) {
  MakeDestination();
  archive_.max_objects = 2;
  for (const char* id : {"s1", "s2", "s3", "s4", "s5"}) {
    Add(id, "3.3", 64, rules::RoutingLevel::kStudy);
  }
  destination_->Tick(false);  // quiet period 0: released
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  const std::vector<RecordedBatch> batches = archive_.batches();
  using IdList = std::vector<std::string>;
  ASSERT_EQ(batches.size(), 3U);
  EXPECT_EQ(Ids(batches[0]), (IdList{"s1", "s2"}));
  EXPECT_EQ(Ids(batches[1]), (IdList{"s3", "s4"}));
  EXPECT_EQ(Ids(batches[2]), (IdList{"s5"}));
  EXPECT_EQ(Settled().size(), 5U);
}

TEST_F(ArchiveForwarderTest, ParallelWorkersNeverMixStudiesAndDeliverEachItemOnce) {
  MakeDestination();
  archive_.max_objects = 4;
  std::set<std::string> expected;
  for (int i = 0; i < 36; ++i) {
    const std::string study = std::to_string(1 + (i / 2) % 3) + ".9";  // runs of two
    const std::string id = "i" + std::to_string(100 + i);
    Add(id, study);
    expected.insert(id);
  }
  Start(3);
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  std::multiset<std::string> delivered;
  for (const RecordedBatch& batch : archive_.batches()) {
    ASSERT_FALSE(batch.empty());
    EXPECT_LE(batch.size(), 4U);
    for (const RecordedObject& object : batch) {
      EXPECT_EQ(object.study, batch.front().study) << "a request mixes studies";
      delivered.insert(object.spool_id);
    }
  }
  EXPECT_EQ(delivered, std::multiset<std::string>(expected.begin(), expected.end()));
}

TEST_F(ArchiveForwarderTest, MaxBytesSplitsRequests) {
  MakeDestination();
  archive_.max_objects = 10;
  std::vector<QueuedInstancePtr> items;
  for (const char* id : {"p1", "p2", "p3", "p4", "p5"}) items.push_back(Add(id, "4.4", 1000));
  const std::uint64_t size = items[0]->file_bytes;
  archive_.max_bytes = size * 5 / 2;  // room for two
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  const std::vector<RecordedBatch> batches = archive_.batches();
  using IdList = std::vector<std::string>;
  ASSERT_EQ(batches.size(), 3U);
  EXPECT_EQ(Ids(batches[0]), (IdList{"p1", "p2"}));
  EXPECT_EQ(Ids(batches[1]), (IdList{"p3", "p4"}));
  EXPECT_EQ(Ids(batches[2]), (IdList{"p5"}));
  for (const RecordedBatch& batch : batches) {
    std::uint64_t bytes = 0;
    for (const RecordedObject& object : batch) bytes += object.file_bytes;
    EXPECT_LE(bytes, archive_.max_bytes);
  }
  EXPECT_EQ(destination_->Status().dead_letter, 0U);
}

TEST_F(ArchiveForwarderTest, AnInstanceLargerThanMaxBytesGoesAlone) {
  MakeDestination();
  archive_.max_objects = 10;
  archive_.max_bytes = 100;  // smaller than any file
  for (const char* id : {"p1", "p2", "p3"}) Add(id, "4.4", 1000);
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  const std::vector<RecordedBatch> batches = archive_.batches();
  ASSERT_EQ(batches.size(), 3U);
  for (const RecordedBatch& batch : batches) EXPECT_EQ(batch.size(), 1U);
}

TEST_F(ArchiveForwarderTest, Part10BodyHasAFreshMetaGroupAndTheSpooledDataset) {
  MakeDestination();
  const QueuedInstancePtr item = Add("m1", "5.5", 300);
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  const std::vector<RecordedBatch> batches = archive_.batches();
  ASSERT_EQ(batches.size(), 1U);
  ASSERT_EQ(batches[0].size(), 1U);
  const RecordedObject& sent = batches[0][0];
  EXPECT_EQ(sent.sop_instance_uid, item->sop_instance_uid);
  EXPECT_EQ(sent.transfer_syntax_uid, kExplicitLittle);
  EXPECT_EQ(sent.bytes, sent.body.size());

  // The dataset is the spooled one, byte for byte.
  const std::string spooled = ReadAll(item->file);
  const auto spooled_offset = spool::ReadDatasetOffset(item->file);
  ASSERT_TRUE(spooled_offset.ok());
  ASSERT_GT(sent.body.size(), 132U);
  EXPECT_EQ(sent.body.substr(128, 4), "DICM");
  EXPECT_EQ(sent.body.substr(DatasetOffset(sent.body)), spooled.substr(spooled_offset.value()));
  EXPECT_LT(DatasetOffset(sent.body), spooled_offset.value()) << "the spool record slot is gone";

  // The meta group is a valid one without the router's private spool record.
  const std::filesystem::path copy = directory_ / "sent.dcm";
  std::ofstream(copy, std::ios::binary) << sent.body;
  DcmFileFormat file;
  ASSERT_TRUE(file.loadFile(copy.c_str()).good());
  DcmMetaInfo& meta = *file.getMetaInfo();
  EXPECT_FALSE(meta.tagExists(DCM_PrivateInformation));
  EXPECT_FALSE(meta.tagExists(DCM_PrivateInformationCreatorUID));
  OFString value;
  meta.findAndGetOFString(DCM_MediaStorageSOPInstanceUID, value);
  EXPECT_EQ(value, item->sop_instance_uid.c_str());
  meta.findAndGetOFString(DCM_MediaStorageSOPClassUID, value);
  EXPECT_EQ(value, kSopClass);
  meta.findAndGetOFString(DCM_TransferSyntaxUID, value);
  EXPECT_EQ(value, kExplicitLittle);
  meta.findAndGetOFString(DCM_SourceApplicationEntityTitle, value);
  EXPECT_EQ(value, "CONDUIT");
  file.getDataset()->findAndGetOFString(DCM_PatientName, value);
  EXPECT_EQ(value, "DOE^JOHN");
}

TEST_F(ArchiveForwarderTest, EditedInstanceIsPreparedOnThePoolAndSentFromMemory) {
  MakeDestination();
  QueuedInstancePtr item = Spool("e1", "5.6", 32);
  rules::TagEdit edit;
  edit.kind = rules::TagEdit::Kind::kSet;
  const auto path = rules::ParseAttributePath("PatientName", "");
  ASSERT_TRUE(std::holds_alternative<rules::ParsedAttributePath>(path));
  edit.target = std::get<rules::ParsedAttributePath>(path).path;
  edit.target_text = "PatientName";
  edit.value = "ANON";
  item->route.edits.push_back(edit);
  destination_->Add(item, Clock::now());
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  const std::vector<RecordedBatch> batches = archive_.batches();
  ASSERT_EQ(batches.size(), 1U);
  const RecordedObject& sent = batches.at(0).at(0);
  EXPECT_EQ(sent.bytes, sent.body.size());
  const std::filesystem::path copy = directory_ / "sent.dcm";
  std::ofstream(copy, std::ios::binary) << sent.body;
  DcmFileFormat file;
  ASSERT_TRUE(file.loadFile(copy.c_str()).good());
  EXPECT_FALSE(file.getMetaInfo()->tagExists(DCM_PrivateInformation));
  OFString value;
  file.getDataset()->findAndGetOFString(DCM_PatientName, value);
  EXPECT_EQ(value, "ANON");
  file.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, value);
  EXPECT_EQ(value, item->sop_instance_uid.c_str());
}

TEST_F(ArchiveForwarderTest, TransientFailureWaitsForARetry) {
  MakeDestination();
  archive_.Script(AllAs(ArchiveResult::kTransient, "HTTP 503"));
  const QueuedInstancePtr item = Add("t1", "6.6");
  Start();
  ASSERT_TRUE(WaitFor([&] { return destination_->Status().retry_wait == 1; }));
  const QueueStatus status = destination_->Status();
  EXPECT_EQ(status.in_flight, 0U);
  EXPECT_EQ(status.ready, 0U);
  EXPECT_EQ(status.dead_letter, 0U);
  EXPECT_EQ(status.circuit, CircuitState::kClosed);
  EXPECT_EQ(item->failures, 1U);
  EXPECT_EQ(item->last_error, "HTTP 503");
  EXPECT_TRUE(Settled().empty());
}

TEST_F(ArchiveForwarderTest, PermanentFailureIsDeadLetteredWithTheReason) {
  MakeDestination();
  archive_.Script(AllAs(ArchiveResult::kPermanent, "HTTP 400: bad dataset"));
  Add("d1", "7.7");
  Start();
  ASSERT_TRUE(WaitFor([&] { return destination_->Status().dead_letter == 1; }));
  EXPECT_EQ(destination_->Status().owed(), 0U);
  const auto dead = destination_->DeadLetters(10);
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0]->spool_id, "d1");
  EXPECT_EQ(dead[0]->dead_letter_reason, "HTTP 400: bad dataset");
  EXPECT_TRUE(Settled().empty()) << "a dead letter is still owed to the operator";
}

TEST_F(ArchiveForwarderTest, MissingResultsAreRetriedNotDelivered) {
  MakeDestination();
  archive_.max_objects = 2;
  archive_.Script([](const std::vector<ArchiveObject>&) {
    ArchiveDelivery delivery;
    delivery.objects.push_back({ArchiveResult::kDelivered, {}});  // only the first answered
    return delivery;
  });
  Add("r1", "7.8");
  const QueuedInstancePtr second = Add("r2", "7.8");
  Start();
  ASSERT_TRUE(WaitFor([&] { return destination_->Status().retry_wait == 1; }));
  EXPECT_EQ(Settled(), std::vector<std::string>{"r1"});
  EXPECT_EQ(second->failures, 1U);
}

TEST_F(ArchiveForwarderTest, NotAttemptedGoesBackWithoutCountingAsAFailure) {
  MakeDestination();
  archive_.Script(AllAs(ArchiveResult::kNotAttempted, "shutting down"));
  const QueuedInstancePtr item = Add("n1", "8.8");
  Start();
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  const std::vector<RecordedBatch> batches = archive_.batches();
  ASSERT_EQ(batches.size(), 2U) << "taken again at once";
  EXPECT_EQ(Ids(batches[1]), std::vector<std::string>{"n1"});
  EXPECT_EQ(batches[1][0].failures, 0U);
  EXPECT_EQ(item->failures, 0U);
  EXPECT_EQ(destination_->Status().dead_letter, 0U);
}

TEST_F(ArchiveForwarderTest, DestinationFailurePausesWithTheItemsBackInLine) {
  MakeDestination();
  archive_.Script(AllAs(ArchiveResult::kNotAttempted, "connection refused", "connection refused"));
  const QueuedInstancePtr item = Add("n1", "8.8");
  Start();
  ASSERT_TRUE(WaitFor([&] { return destination_->Status().paused_until.has_value(); }));
  const QueueStatus status = destination_->Status();
  EXPECT_EQ(status.ready, 1U);
  EXPECT_EQ(status.in_flight, 0U);
  EXPECT_EQ(status.retry_wait, 0U);
  EXPECT_EQ(status.circuit, CircuitState::kClosed) << "one failure of " << 3;
  EXPECT_EQ(status.last_error, "connection refused");
  EXPECT_EQ(item->failures, 0U);
  EXPECT_EQ(archive_.Count("deliver"), 1U);
}

TEST_F(ArchiveForwarderTest, CircuitOpensAfterBreakerFailuresAndProbesUntilBack) {
  config_.retry.initial_delay = milliseconds(1);
  config_.retry.max_delay = seconds(1);
  MakeDestination();
  for (int i = 0; i < 3; ++i) {
    archive_.Script(AllAs(ArchiveResult::kNotAttempted, "refused", "connection refused"));
  }
  archive_.SetProbeOk(false);
  Add("c1", "9.9");
  Start();
  ASSERT_TRUE(WaitFor([&] { return archive_.Count("probe") >= 2; }));
  const std::vector<std::string> events = archive_.events();
  ASSERT_GE(events.size(), 4U);
  EXPECT_EQ(std::vector<std::string>(events.begin(), events.begin() + 4),
            (std::vector<std::string>{"deliver", "deliver", "deliver", "probe"}));
  EXPECT_EQ(archive_.Count("deliver"), 3U) << "nothing is sent while the circuit is open";
  EXPECT_NE(destination_->Status().circuit, CircuitState::kClosed);
  EXPECT_EQ(destination_->Status().ready, 1U);

  archive_.SetProbeOk(true);
  ASSERT_TRUE(WaitFor([&] { return AllSettled(); }));
  EXPECT_EQ(destination_->Status().circuit, CircuitState::kClosed);
  EXPECT_EQ(archive_.events().back(), "deliver");
  EXPECT_EQ(archive_.Count("deliver"), 4U);
}

TEST_F(ArchiveForwarderTest, RetryAfterThrottlesTheDestination) {
  config_.retry.initial_delay = milliseconds(1);  // the backoff alone would retry at once
  MakeDestination();
  archive_.Script(AllAs(ArchiveResult::kTransient, "HTTP 429", std::nullopt, seconds(3600)));
  const QueuedInstancePtr first = Add("h1", "10.1");
  Add("h2", "10.1");
  const Clock::time_point before = Clock::now();
  Start();
  ASSERT_TRUE(WaitFor([&] { return destination_->Status().paused_until.has_value(); }));
  const QueueStatus status = destination_->Status();
  EXPECT_GE(*status.paused_until, before + std::chrono::minutes(59));
  EXPECT_EQ(status.circuit, CircuitState::kClosed) << "a throttle is not a failure";
  EXPECT_EQ(status.retry_wait, 1U);
  EXPECT_EQ(status.ready, 1U);
  EXPECT_EQ(first->failures, 1U);
  // Ticking on neither brings the retry back (Retry-After outlasts the backoff) nor sends the
  // other instance.
  int ticks = 0;
  WaitFor([&] { return ++ticks > 20; });
  EXPECT_EQ(destination_->Status().retry_wait, 1U);
  EXPECT_EQ(archive_.Count("deliver"), 1U);
}

TEST_F(ArchiveForwarderTest, StopEndsIdleWorkers) {
  MakeDestination();
  Start(2);
  EXPECT_FALSE(forwarder_->Stopped());
  forwarder_->Stop();
  ASSERT_TRUE(WaitFor([&] { return forwarder_->Stopped(); }));
  forwarder_->Stop();  // twice is harmless
  EXPECT_TRUE(forwarder_->Stopped());
}

TEST_F(ArchiveForwarderTest, StopCutsOffADeliveryAndRequeuesItsItems) {
  MakeDestination();
  archive_.BlockUntilCancelled();
  const QueuedInstancePtr item = Add("s1", "11.1");
  Start();
  ASSERT_TRUE(WaitFor([&] { return archive_.delivering(); }));
  forwarder_->Stop();
  ASSERT_TRUE(WaitFor([&] { return forwarder_->Stopped(); }));
  EXPECT_TRUE(archive_.saw_cancel());
  const QueueStatus status = destination_->Status();
  EXPECT_EQ(status.ready, 1U);
  EXPECT_EQ(status.in_flight, 0U);
  EXPECT_EQ(item->failures, 0U);
  EXPECT_TRUE(Settled().empty());
}

TEST_F(ArchiveForwarderTest, UnknownTranscodeProfileIsDeadLetteredWithoutSending) {
  MakeDestination();
  QueuedInstancePtr item = Spool("u1", "12.1");
  item->route.transcode_profile = "missing-profile";
  destination_->Add(item, Clock::now());
  Start();
  ASSERT_TRUE(WaitFor([&] { return destination_->Status().dead_letter == 1; }));
  EXPECT_NE(item->dead_letter_reason.find("missing-profile"), std::string::npos)
      << item->dead_letter_reason;
  EXPECT_EQ(archive_.Count("deliver"), 0U);
}

TEST_F(ArchiveForwarderTest, SpoolFileThatIsNotPart10IsDeadLettered) {
  MakeDestination();
  QueuedInstancePtr item = Spool("x1", "13.1");
  std::ofstream(item->file, std::ios::binary | std::ios::trunc) << "not dicom";
  item->file_bytes = 9;
  destination_->Add(item, Clock::now());
  Add("x2", "13.1");
  Start();
  ASSERT_TRUE(WaitFor([&] { return destination_->Status().owed() == 0; }));
  EXPECT_EQ(destination_->Status().dead_letter, 1U);
  EXPECT_FALSE(item->dead_letter_reason.empty());
  EXPECT_EQ(Settled(), std::vector<std::string>{"x2"}) << "the next one is not held back";
}

}  // namespace
}  // namespace conduit::forward
