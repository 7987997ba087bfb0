#include <gtest/gtest.h>

#include "router/http/stow_client.h"

namespace conduit::http {
namespace {

const std::vector<std::string> kRequested = {"1.2.3.1", "1.2.3.2", "1.2.3.3"};

// A DICOM JSON answer (PS3.18 F.2) listing `stored` in ReferencedSOPSequence and `failed` (UID,
// FailureReason) in FailedSOPSequence.
std::string JsonAnswer(const std::vector<std::string>& stored,
                       const std::vector<std::pair<std::string, int>>& failed) {
  std::string json = R"({"00081190": {"vr": "UR", "Value": ["http://pacs/studies/1.2.3"]})";
  const auto item = [](const std::string& uid) {
    return R"({"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.2"]},)"
           R"( "00081155": {"vr": "UI", "Value": [")" +
           uid + R"("]})";
  };
  if (!stored.empty()) {
    json += R"(, "00081199": {"vr": "SQ", "Value": [)";
    for (std::size_t i = 0; i < stored.size(); ++i) {
      json += (i == 0 ? "" : ", ") + item(stored[i]) + "}";
    }
    json += "]}";
  }
  if (!failed.empty()) {
    json += R"(, "00081198": {"vr": "SQ", "Value": [)";
    for (std::size_t i = 0; i < failed.size(); ++i) {
      json += (i == 0 ? "" : ", ") + item(failed[i].first) +
              R"(, "00081197": {"vr": "US", "Value": [)" + std::to_string(failed[i].second) + "]}}";
    }
    json += "]}";
  }
  return json + "}";
}

TEST(StowResponseTest, OkStoresEveryInstanceListedOrNot) {
  const auto results = ParseStowResponse(200, "application/dicom+json",
                                         JsonAnswer({"1.2.3.1", "1.2.3.2"}, {}), kRequested);
  ASSERT_EQ(results.size(), 3U);
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].sop_instance_uid, kRequested[i]);
    EXPECT_TRUE(results[i].stored) << kRequested[i];
    EXPECT_FALSE(results[i].failure_reason);
  }
}

TEST(StowResponseTest, AcceptedWithWarningsSeparatesStoredFromFailed) {
  const auto results =
      ParseStowResponse(202, "application/dicom+json; charset=utf-8",
                        JsonAnswer({"1.2.3.1", "1.2.3.3"}, {{"1.2.3.2", 0xA700}}), kRequested);
  ASSERT_EQ(results.size(), 3U);
  EXPECT_TRUE(results[0].stored);
  EXPECT_FALSE(results[1].stored);
  EXPECT_EQ(results[1].failure_reason, 0xA700);
  EXPECT_EQ(results[1].detail, "FailureReason 0xA700 (out of resources)");
  EXPECT_TRUE(results[2].stored);
}

TEST(StowResponseTest, AcceptedButUnlistedInstanceIsNotStored) {
  const auto results = ParseStowResponse(
      202, "application/dicom+json", JsonAnswer({"1.2.3.1"}, {{"1.2.3.2", 0xC122}}), kRequested);
  EXPECT_TRUE(results[0].stored);
  EXPECT_EQ(results[1].detail, "FailureReason 0xC122 (transfer syntax not supported)");
  EXPECT_FALSE(results[2].stored);
  EXPECT_FALSE(results[2].failure_reason);
  EXPECT_NE(results[2].detail.find("202"), std::string::npos) << results[2].detail;
}

TEST(StowResponseTest, ConflictFailsEveryInstanceWithItsReason) {
  const auto results = ParseStowResponse(
      409, "application/dicom+json",
      JsonAnswer({}, {{"1.2.3.1", 0xA900}, {"1.2.3.2", 0xA900}, {"1.2.3.3", 0x0122}}), kRequested);
  ASSERT_EQ(results.size(), 3U);
  for (const StowInstanceResult& result : results) {
    EXPECT_FALSE(result.stored);
  }
  EXPECT_EQ(results[0].failure_reason, 0xA900);
  EXPECT_EQ(results[0].detail, "FailureReason 0xA900 (data set does not match SOP class)");
  EXPECT_EQ(results[2].failure_reason, 0x0122);
}

// What Orthanc does when some instances of a POST to /studies/<uid> belong to another study.
TEST(StowResponseTest, ConflictStillStoresTheInstancesItLists) {
  const auto results = ParseStowResponse(
      409, "application/dicom+json",
      JsonAnswer({"1.2.3.1"}, {{"1.2.3.2", 0x0110}, {"1.2.3.3", 0x0110}}), kRequested);
  EXPECT_TRUE(results[0].stored);
  EXPECT_FALSE(results[1].stored);
  EXPECT_EQ(results[1].detail, "FailureReason 0x0110 (processing failure)");
  EXPECT_FALSE(results[2].stored);
}

TEST(StowResponseTest, OtherFailuresExplainUnlistedInstances) {
  const std::string body = R"({"0008119A": {"vr": "SQ", "Value": [)"
                           R"({"00081197": {"vr": "US", "Value": [272]}}]}})";
  const auto results = ParseStowResponse(409, "application/dicom+json", body, {"1.2.3.1"});
  ASSERT_EQ(results.size(), 1U);
  EXPECT_FALSE(results[0].stored);
  EXPECT_NE(results[0].detail.find("FailureReason 0x0110 (processing failure)"), std::string::npos)
      << results[0].detail;
}

TEST(StowResponseTest, ReadsTheNativeDicomModel) {
  const std::string body = R"(<?xml version="1.0" encoding="UTF-8"?>
<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">
  <DicomAttribute tag="00081199" vr="SQ" keyword="ReferencedSOPSequence">
    <Item number="1">
      <DicomAttribute tag="00081150" vr="UI"><Value number="1">1.2.840.10008.5.1.4.1.1.2</Value></DicomAttribute>
      <DicomAttribute tag="00081155" vr="UI"><Value number="1">1.2.3.1</Value></DicomAttribute>
    </Item>
  </DicomAttribute>
  <DicomAttribute tag="00081198" vr="SQ" keyword="FailedSOPSequence">
    <Item number="1">
      <DicomAttribute tag="00081155" vr="UI">
        <Value number="1"> 1.2.3.2 </Value>
      </DicomAttribute>
      <!-- <DicomAttribute tag="00081155" vr="UI"><Value number="1">1.2.3.3</Value> -->
      <DicomAttribute tag="00081197" vr="US"><Value number="1">49152</Value></DicomAttribute>
    </Item>
    <Value number="1" />
  </DicomAttribute>
</NativeDicomModel>)";
  // Orthanc 1.10 (DICOMweb plugin 1.7) sends its XML error answers without a Content-Type, and
  // an empty <Value/> after a sequence's items.
  for (const std::string content_type : {"application/dicom+xml", ""}) {
    const auto results = ParseStowResponse(409, content_type, body, kRequested);
    ASSERT_EQ(results.size(), 3U);
    EXPECT_TRUE(results[0].stored);
    EXPECT_FALSE(results[1].stored);
    EXPECT_EQ(results[1].failure_reason, 0xC000);
    EXPECT_EQ(results[1].detail, "FailureReason 0xC000 (cannot understand)");
    EXPECT_FALSE(results[2].stored);
    EXPECT_FALSE(results[2].failure_reason);
  }
}

TEST(StowResponseTest, GarbageBodyFallsBackOnTheStatus) {
  const std::string garbage = "{\"00081199\": [ not json \x01\xff";
  const auto ok = ParseStowResponse(200, "application/dicom+json", garbage, kRequested);
  for (const StowInstanceResult& result : ok) {
    EXPECT_TRUE(result.stored);
  }
  const auto failed =
      ParseStowResponse(500, "text/html", "<html>Internal error</html>", kRequested);
  for (const StowInstanceResult& result : failed) {
    EXPECT_FALSE(result.stored);
    EXPECT_NE(result.detail.find("500"), std::string::npos) << result.detail;
  }
}

TEST(StowResponseTest, WrongTypesInTheJsonAreIgnoredNotThrown) {
  const std::string body = R"({"00081198": {"vr": "SQ", "Value": [)"
                           R"({"00081155": {"Value": [42]}, "00081197": {"Value": ["x"]}},)"
                           R"( 7, {"00081155": {"Value": ["1.2.3.1"]}, "00081197": "A700"}]},)"
                           R"( "00081199": {"vr": "SQ", "Value": "1.2.3.2"}})";
  const auto results = ParseStowResponse(409, "application/dicom+json", body, kRequested);
  ASSERT_EQ(results.size(), 3U);
  EXPECT_FALSE(results[0].stored);
  EXPECT_FALSE(results[0].failure_reason);
  EXPECT_FALSE(results[1].stored);
}

TEST(StowResponseTest, EmptyBodyFallsBackOnTheStatus) {
  for (const std::string content_type : {"", "application/dicom+json", "application/dicom+xml"}) {
    EXPECT_TRUE(ParseStowResponse(200, content_type, "", kRequested)[1].stored) << content_type;
    EXPECT_FALSE(ParseStowResponse(503, content_type, "", kRequested)[1].stored) << content_type;
  }
  EXPECT_TRUE(ParseStowResponse(409, "", "", {}).empty());
}

}  // namespace
}  // namespace conduit::http
