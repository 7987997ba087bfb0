#include "router/forward/object_key.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "router/config/config.h"

namespace conduit::forward {
namespace {

constexpr rules::Tag kPatientName{0x0010, 0x0010};
constexpr rules::Tag kPatientId{0x0010, 0x0020};
constexpr rules::Tag kModality{0x0008, 0x0060};
constexpr rules::Tag kImageType{0x0008, 0x0008};
constexpr rules::Tag kSopInstanceUid{0x0008, 0x0018};
constexpr rules::Tag kStudyInstanceUid{0x0020, 0x000D};
constexpr rules::Tag kSeriesInstanceUid{0x0020, 0x000E};

// Attributes from a map, by the tag of a one-step path; counts the look-ups.
class FakeAttributes : public rules::AttributeSource {
 public:
  FakeAttributes& Set(rules::Tag tag, std::vector<std::string> values, std::string vr = "LO") {
    values_[tag] = rules::AttributeValues{std::move(vr), std::move(values)};
    return *this;
  }
  std::optional<rules::AttributeValues> Find(const rules::AttributePath& path) const override {
    ++lookups;
    if (path.steps.size() != 1) return std::nullopt;
    const auto found = values_.find(path.steps.front().tag);
    if (found == values_.end()) return std::nullopt;
    return found->second;
  }
  mutable int lookups = 0;

 private:
  std::map<rules::Tag, rules::AttributeValues> values_;
};

KeyTemplate MustParse(std::string_view text) {
  auto parsed = KeyTemplate::Parse(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << (parsed.ok() ? "" : parsed.error());
  if (!parsed.ok()) return KeyTemplate::Parse("x").value();
  return std::move(parsed.value());
}

// The parse error for `text`; a test failure if it parses.
std::string ParseError(std::string_view text) {
  auto parsed = KeyTemplate::Parse(text);
  if (parsed.ok()) {
    ADD_FAILURE() << "expected '" << text << "' to be refused";
    return {};
  }
  return parsed.error();
}

bool Contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

FakeAttributes StudyAttributes() {
  FakeAttributes attributes;
  attributes.Set(kStudyInstanceUid, {"1.2.3"}, "UI")
      .Set(kSeriesInstanceUid, {"1.2.3.4"}, "UI")
      .Set(kSopInstanceUid, {"1.2.3.4.5"}, "UI");
  return attributes;
}

TEST(KeyTemplateTest, DefaultTemplateExpandsToStudySeriesInstance) {
  const KeyTemplate key_template = MustParse(config::kDefaultKeyTemplate);
  EXPECT_EQ(key_template.Expand(StudyAttributes(), "1.2.3.4.5"), "1.2.3/1.2.3.4/1.2.3.4.5.dcm");
}

TEST(KeyTemplateTest, AcceptsTagFormsAndLiteralText) {
  FakeAttributes attributes = StudyAttributes();
  attributes.Set(kPatientId, {"PID-7"}).Set(kModality, {"CT"}, "CS");
  EXPECT_EQ(MustParse("{(0010,0020)}/{Modality}/{SOPInstanceUID}.dcm").Expand(attributes, "9.9"),
            "PID-7/CT/9.9.dcm");
  EXPECT_EQ(MustParse("archive/{0010,0020}_{(0008,0060)}").Expand(attributes, "9.9"),
            "archive/PID-7_CT");
  EXPECT_EQ(MustParse("no-placeholder.dcm").Expand(attributes, "9.9"), "no-placeholder.dcm");
}

TEST(KeyTemplateTest, RefusesUnknownKeywordsNamingThem) {
  const std::string error = ParseError("{PatientNme}/{SOPInstanceUID}.dcm");
  EXPECT_TRUE(Contains(error, "PatientNme")) << error;
  EXPECT_FALSE(ParseError("{}/{SOPInstanceUID}").empty());
}

TEST(KeyTemplateTest, RefusesBadBraces) {
  EXPECT_FALSE(ParseError("{StudyInstanceUID/{SOPInstanceUID}").empty());
  const std::string unclosed = ParseError("{StudyInstanceUID}/{SOPInstanceUID");
  EXPECT_TRUE(Contains(unclosed, "unclosed '{'")) << unclosed;
  const std::string stray = ParseError("{StudyInstanceUID}/x}/{SOPInstanceUID}");
  EXPECT_TRUE(Contains(stray, "unmatched '}'")) << stray;
  EXPECT_TRUE(Contains(ParseError("x}"), "unmatched '}'"));
  EXPECT_TRUE(Contains(ParseError("{SOPInstanceUID}}"), "unmatched '}'"));
}

TEST(KeyTemplateTest, RefusesPathsThatLeaveTheDestinationOrHaveEmptyLevels) {
  EXPECT_TRUE(Contains(ParseError("/{StudyInstanceUID}/{SOPInstanceUID}"), "start with '/'"));
  EXPECT_TRUE(Contains(ParseError("/x"), "start with '/'"));
  EXPECT_TRUE(Contains(ParseError("{StudyInstanceUID}//{SOPInstanceUID}"), "'//'"));
  EXPECT_TRUE(Contains(ParseError("a//b/{SOPInstanceUID}"), "'//'"));
  EXPECT_TRUE(Contains(ParseError("../{SOPInstanceUID}"), "'..'"));
  EXPECT_TRUE(Contains(ParseError("{StudyInstanceUID}/../{SOPInstanceUID}"), "'..'"));
  EXPECT_TRUE(Contains(ParseError("{StudyInstanceUID}/.."), "'..'"));
  EXPECT_TRUE(Contains(ParseError("a/../b"), "'..'"));
  EXPECT_TRUE(Contains(ParseError("{StudyInstanceUID}/"), "end with '/'"));
  EXPECT_TRUE(Contains(ParseError("a/b/"), "end with '/'"));
  EXPECT_TRUE(Contains(ParseError(""), "empty"));
  // Dots that are not a whole level are plain text.
  EXPECT_EQ(MustParse("a..b/{SOPInstanceUID}.dcm").Expand(StudyAttributes(), "1"), "a..b/1.dcm");
}

TEST(KeyTemplateTest, ValuesAreMadeSafeAndCannotAddLevels) {
  const KeyTemplate key_template = MustParse("{PatientName}/{PatientID}/{SOPInstanceUID}.dcm");
  FakeAttributes attributes = StudyAttributes();
  attributes.Set(kPatientName, {"DOE^JOHN"}, "PN").Set(kPatientId, {"a/b"});
  EXPECT_EQ(key_template.Expand(attributes, "1.2"), "DOE_JOHN/a_b/1.2.dcm");

  attributes.Set(kPatientName, {".."}, "PN").Set(kPatientId, {"../../etc/passwd"});
  const std::string climbing = key_template.Expand(attributes, "1.2");
  EXPECT_EQ(climbing, "__/.._.._etc_passwd/1.2.dcm");
  EXPECT_EQ(std::count(climbing.begin(), climbing.end(), '/'), 2);

  attributes.Set(kPatientName, {"."}, "PN").Set(kPatientId, {"Müller \\x"});
  EXPECT_EQ(key_template.Expand(attributes, "1.2"), "_/M__ller__x/1.2.dcm");
}

TEST(KeyTemplateTest, AbsentOrEmptyValuesBecomeUnknown) {
  const KeyTemplate key_template = MustParse("{PatientName}/{PatientID}/{Modality}");
  FakeAttributes attributes;
  attributes.Set(kPatientId, {}).Set(kModality, {"  "}, "CS");
  EXPECT_EQ(key_template.Expand(attributes, "1.2"), "unknown/unknown/unknown");
}

TEST(KeyTemplateTest, MultipleValuesStayTogether) {
  FakeAttributes attributes;
  attributes.Set(kImageType, {"ORIGINAL", "PRIMARY", "AXIAL"}, "CS");
  EXPECT_EQ(MustParse("{ImageType}").Expand(attributes, "1"), "ORIGINAL_PRIMARY_AXIAL");
}

TEST(KeyTemplateTest, TrailingPaddingIsDropped) {
  FakeAttributes attributes;
  attributes.Set(kPatientId, {"PID7 "}).Set(kStudyInstanceUid, {std::string("1.2.3\0", 6)}, "UI");
  EXPECT_EQ(MustParse("{PatientID}/{StudyInstanceUID}").Expand(attributes, "1"), "PID7/1.2.3");
  EXPECT_EQ(MustParse("{SOPInstanceUID}").Expand(attributes, std::string("4.5\0", 4)), "4.5");
}

TEST(KeyTemplateTest, SopInstanceUidComesFromTheCallerNotTheHeader) {
  const FakeAttributes attributes = StudyAttributes();  // header says 1.2.3.4.5
  EXPECT_EQ(MustParse("{SOPInstanceUID}.dcm").Expand(attributes, "2.25.99"), "2.25.99.dcm");
  EXPECT_EQ(MustParse("{(0008,0018)}.dcm").Expand(attributes, "2.25.99"), "2.25.99.dcm");
  EXPECT_EQ(attributes.lookups, 0) << "the SOP Instance UID is never looked up";
}

TEST(SafeKeyValueTest, KeepsOnlySafeCharacters) {
  EXPECT_EQ(SafeKeyValue("abc-XYZ_0.9"), "abc-XYZ_0.9");
  EXPECT_EQ(SafeKeyValue("a b/c\\d^e"), "a_b_c_d_e");
  EXPECT_EQ(SafeKeyValue("."), "_");
  EXPECT_EQ(SafeKeyValue(".."), "__");
  EXPECT_EQ(SafeKeyValue("..."), "...");
  EXPECT_EQ(SafeKeyValue(""), "unknown");
  EXPECT_EQ(SafeKeyValue(std::string(" \0 ", 3)), "unknown");
  EXPECT_EQ(SafeKeyValue(" x"), "_x") << "only trailing padding is dropped";
}

class ObjectKeyForTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("conduit-object-key-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  QueuedInstance Item(std::filesystem::path file) const {
    QueuedInstance item;
    item.spool_id = "0001";
    item.file = std::move(file);
    item.sop_class_uid = "1.2.840.10008.5.1.4.1.1.7";
    item.sop_instance_uid = "1.2.9.1";
    item.transfer_syntax_uid = "1.2.840.10008.1.2.1";
    item.study_instance_uid = "1.2.9";
    item.series_instance_uid = "1.2.9.0";
    return item;
  }

  // A Part 10 file whose header disagrees with the queue's UIDs, to show which one wins.
  std::filesystem::path WritePart10(const char* patient_name) const {
    DcmFileFormat file;
    DcmDataset& dataset = *file.getDataset();
    dataset.putAndInsertString(DCM_SOPClassUID, "1.2.840.10008.5.1.4.1.1.7");
    dataset.putAndInsertString(DCM_SOPInstanceUID, "7.7.7.1");
    dataset.putAndInsertString(DCM_StudyInstanceUID, "7.7.7");
    dataset.putAndInsertString(DCM_SeriesInstanceUID, "7.7.7.0");
    dataset.putAndInsertString(DCM_PatientName, patient_name);
    dataset.putAndInsertString(DCM_Modality, "OT");
    const std::filesystem::path path = directory_ / "instance.dcm";
    EXPECT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good());
    return path;
  }

  std::filesystem::path directory_;
};

TEST_F(ObjectKeyForTest, UidsComeFromTheQueueWithoutReadingTheFile) {
  const QueuedInstance item = Item(directory_ / "does-not-exist.dcm");
  EXPECT_EQ(ObjectKeyFor(MustParse(config::kDefaultKeyTemplate), item, item.sop_instance_uid),
            "1.2.9/1.2.9.0/1.2.9.1.dcm");
  EXPECT_EQ(ObjectKeyFor(MustParse("{SOPClassUID}/{SOPInstanceUID}"), item, "2.25.5"),
            "1.2.840.10008.5.1.4.1.1.7/2.25.5");
}

TEST_F(ObjectKeyForTest, OtherAttributesAreReadFromTheSpooledHeader) {
  const QueuedInstance item = Item(WritePart10("DOE^JON"));  // odd length: padded on disk
  EXPECT_EQ(ObjectKeyFor(MustParse("{PatientName}/{Modality}/{StudyInstanceUID}/"
                                   "{SOPInstanceUID}.dcm"),
                         item, item.sop_instance_uid),
            "DOE_JON/OT/1.2.9/1.2.9.1.dcm");
}

TEST_F(ObjectKeyForTest, AnUnreadableFileGivesUnknownValues) {
  const QueuedInstance item = Item(directory_ / "does-not-exist.dcm");
  EXPECT_EQ(ObjectKeyFor(MustParse("{PatientName}/{StudyInstanceUID}"), item, "1"),
            "unknown/1.2.9");
}

}  // namespace
}  // namespace conduit::forward
