// Conditions, one operator and one VR edge case at a time, through the whole loader and
// evaluator: a one-rule file whose `when:` is the condition under test.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <string>
#include <string_view>

#include "rules/rule_set.h"
#include "tests/rules/fake_attributes.h"

namespace conduit::rules {
namespace {

using testing::FakeAttributes;
using testing::LoadOrFail;

bool Matches(std::string_view condition, const FakeAttributes& attributes,
             const AssociationFacts& facts = {}) {
  const std::string yaml = "version: 1\nrules:\n  - name: r\n    when: " + std::string(condition) +
                           "\n    route: [PACS]\n";
  const auto rules = LoadOrFail(yaml);
  if (!rules) {
    return false;
  }
  return !rules->Evaluate(attributes, facts).routes.empty();
}

// A point in local time (the zone the test runs in), as the router would stamp it.
std::chrono::system_clock::time_point LocalTime(int year, int month, int day, int hour, int minute,
                                                int second = 0) {
  std::tm local{};
  local.tm_year = year - 1900;
  local.tm_mon = month - 1;
  local.tm_mday = day;
  local.tm_hour = hour;
  local.tm_min = minute;
  local.tm_sec = second;
  local.tm_isdst = -1;
  return std::chrono::system_clock::from_time_t(std::mktime(&local));
}

AssociationFacts At(std::chrono::system_clock::time_point when) {
  AssociationFacts facts;
  facts.received_at = when;
  return facts;
}

FakeAttributes Ct() {
  FakeAttributes attributes;
  attributes.Add("Modality", "CS", {"CT"})
      .Add("ImageType", "CS", {"ORIGINAL", "PRIMARY", "AXIAL"})
      .Add("BodyPartExamined", "CS", {"HEAD "})
      .Add("PatientID", "LO", {"007"})
      .Add("PatientName", "PN", {"Doe^John"})
      .Add("SliceThickness", "DS", {"5.0 "})
      .Add("SeriesNumber", "IS", {" 3"})
      .Add("Rows", "US", {"512"})
      .Add("StudyDate", "DA", {"20240615"})
      .Add("StudyTime", "TM", {"231500.25"})
      .Add("AcquisitionDateTime", "DT", {"20240615231500+0200"})
      .Add("SOPClassUID", "UI", {std::string("1.2.840.10008.5.1.4.1.1.2\0", 26)})
      .Add("ImageComments", "LT", {"  indented note "})
      .Add("AccessionNumber", "SH", {})
      .Add("StudyDescription", "LO", {"   "});
  return attributes;
}

TEST(RuleMatchingTest, EqualsIsExactAndIgnoresPadding) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(Matches("{attribute: Modality, equals: CT}", ct));
  EXPECT_FALSE(Matches("{attribute: Modality, equals: MR}", ct));
  EXPECT_FALSE(Matches("{attribute: Modality, equals: ct}", ct));
  EXPECT_FALSE(Matches("{attribute: Modality, equals: C}", ct));
  EXPECT_TRUE(Matches("{attribute: BodyPartExamined, equals: HEAD}", ct));  // trailing space
  EXPECT_TRUE(Matches("{attribute: BodyPartExamined, equals: 'HEAD  '}", ct));
  EXPECT_TRUE(Matches("{attribute: SOPClassUID, equals: 1.2.840.10008.5.1.4.1.1.2}", ct));  // NUL
}

TEST(RuleMatchingTest, LeadingSpacesDependOnTheVr) {
  FakeAttributes attributes;
  attributes.Add("Modality", "CS", {"  CT"})
      .Add("ImageComments", "LT", {"  note"})
      .Add("(0009,0010)", "LO", {" GEMS"});
  EXPECT_TRUE(Matches("{attribute: Modality, equals: CT}", attributes));  // CS: not significant
  EXPECT_FALSE(Matches("{attribute: ImageComments, equals: note}", attributes));  // LT: significant
  EXPECT_TRUE(Matches("{attribute: ImageComments, equals: '  note'}", attributes));
  // Tags in a flow mapping are quoted: YAML would split (0009,0010) at the comma.
  EXPECT_TRUE(Matches("{attribute: '(0009,0010)', equals: GEMS}", attributes));  // source: LO
}

TEST(RuleMatchingTest, IgnoreCase) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(Matches("{attribute: Modality, equals: ct, ignore_case: true}", ct));
  EXPECT_TRUE(Matches("{attribute: Modality, in: [mr, ct], ignore_case: true}", ct));
  EXPECT_TRUE(Matches("{attribute: BodyPartExamined, wildcard: 'he*', ignore_case: true}", ct));
  EXPECT_TRUE(Matches("{attribute: PatientName, regex: 'doe\\^.*', ignore_case: true}", ct));
  EXPECT_FALSE(Matches("{attribute: PatientName, regex: 'doe\\^.*'}", ct));
  EXPECT_FALSE(Matches("{attribute: Modality, equals: ct, ignore_case: false}", ct));
}

TEST(RuleMatchingTest, MultiValuedMatchesWhenAnyValueDoes) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(Matches("{attribute: ImageType, equals: AXIAL}", ct));
  EXPECT_TRUE(Matches("{attribute: ImageType, equals: ORIGINAL}", ct));
  EXPECT_FALSE(Matches("{attribute: ImageType, equals: DERIVED}", ct));
  EXPECT_TRUE(Matches("{attribute: ImageType, in: [DERIVED, PRIMARY]}", ct));
  EXPECT_TRUE(Matches("{attribute: ImageType, regex: 'AX.*'}", ct));
  EXPECT_FALSE(Matches("{not: {attribute: ImageType, equals: AXIAL}}", ct));
}

TEST(RuleMatchingTest, AbsentAttributeMatchesOnlyAbsent) {
  const FakeAttributes ct = Ct();
  EXPECT_FALSE(Matches("{attribute: OperatorsName, equals: X}", ct));
  EXPECT_FALSE(Matches("{attribute: OperatorsName, regex: '.*'}", ct));
  EXPECT_FALSE(Matches("{attribute: OperatorsName, wildcard: '*'}", ct));
  EXPECT_FALSE(Matches("{attribute: CTDIvol, range: {min: 0}}", ct));
  EXPECT_FALSE(Matches("{attribute: OperatorsName, present: true}", ct));
  EXPECT_FALSE(Matches("{attribute: OperatorsName, empty: true}", ct));
  EXPECT_TRUE(Matches("{attribute: OperatorsName, absent: true}", ct));
  EXPECT_TRUE(Matches("{attribute: OperatorsName, present: false}", ct));
  EXPECT_FALSE(Matches("{attribute: Modality, absent: true}", ct));
  EXPECT_TRUE(Matches("{attribute: Modality, absent: false}", ct));
}

TEST(RuleMatchingTest, EmptyAttributeMatchesOnlyEmptyAndIsNotPresent) {
  const FakeAttributes ct = Ct();
  // AccessionNumber has no value; StudyDescription only padding: both are empty.
  for (const char* attribute : {"AccessionNumber", "StudyDescription"}) {
    const std::string a = std::string("{attribute: ") + attribute;
    EXPECT_TRUE(Matches(a + ", empty: true}", ct)) << attribute;
    EXPECT_FALSE(Matches(a + ", present: true}", ct)) << attribute;
    EXPECT_FALSE(Matches(a + ", absent: true}", ct)) << attribute;
    EXPECT_FALSE(Matches(a + ", regex: '.*'}", ct)) << attribute;
    EXPECT_FALSE(Matches(a + ", wildcard: '*'}", ct)) << attribute;
    EXPECT_TRUE(Matches(a + ", present: false}", ct)) << attribute;
  }
  EXPECT_TRUE(Matches("{attribute: Modality, present: true}", ct));
  EXPECT_FALSE(Matches("{attribute: Modality, empty: true}", ct));
  EXPECT_TRUE(Matches("{attribute: Modality, empty: false}", ct));
  // "exists, empty or not" is the negation of absent.
  EXPECT_TRUE(Matches("{not: {attribute: AccessionNumber, absent: true}}", ct));
}

TEST(RuleMatchingTest, NumbersCompareByValue) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(Matches("{attribute: SliceThickness, equals: 5}", ct));
  EXPECT_TRUE(Matches("{attribute: SliceThickness, equals: '5.00'}", ct));
  EXPECT_TRUE(Matches("{attribute: SliceThickness, in: [1, 2.5, 5e0]}", ct));
  EXPECT_FALSE(Matches("{attribute: SliceThickness, equals: 5.1}", ct));
  EXPECT_TRUE(Matches("{attribute: SeriesNumber, equals: 3}", ct));  // " 3"
  EXPECT_TRUE(Matches("{attribute: SeriesNumber, equals: '+003'}", ct));
  EXPECT_TRUE(Matches("{attribute: Rows, equals: 512}", ct));  // binary, rendered as text
  // Text VRs compare as text even when the value looks like a number.
  EXPECT_TRUE(Matches("{attribute: PatientID, equals: '007'}", ct));
  EXPECT_FALSE(Matches("{attribute: PatientID, equals: 7}", ct));
}

TEST(RuleMatchingTest, NumericRanges) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(Matches("{attribute: SliceThickness, range: {min: 1, max: 5}}", ct));  // inclusive
  EXPECT_TRUE(Matches("{attribute: SliceThickness, range: {min: 5}}", ct));
  EXPECT_TRUE(Matches("{attribute: SliceThickness, range: {max: 5.0}}", ct));
  EXPECT_FALSE(Matches("{attribute: SliceThickness, range: {min: 5.01}}", ct));
  EXPECT_FALSE(Matches("{attribute: SliceThickness, range: {max: 4.99}}", ct));
  EXPECT_TRUE(Matches("{attribute: Rows, range: {min: 256, max: 1024}}", ct));
  EXPECT_TRUE(Matches("{attribute: SeriesNumber, range: {min: -1, max: 3}}", ct));

  FakeAttributes multi;
  multi.Add("ImagePositionPatient", "DS", {"-125.5", "-90", "1200"});
  EXPECT_TRUE(Matches("{attribute: ImagePositionPatient, range: {min: 1000}}", multi));
  EXPECT_FALSE(Matches("{attribute: ImagePositionPatient, range: {min: 0, max: 10}}", multi));

  FakeAttributes garbage;
  garbage.Add("SliceThickness", "DS", {"thick"});
  EXPECT_FALSE(Matches("{attribute: SliceThickness, range: {min: 0}}", garbage));
  EXPECT_FALSE(Matches("{attribute: SliceThickness, equals: 0}", garbage));
}

TEST(RuleMatchingTest, DateRanges) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(Matches("{attribute: StudyDate, range: {from: '20240101', to: '20241231'}}", ct));
  EXPECT_TRUE(Matches("{attribute: StudyDate, range: {from: '20240615', to: '20240615'}}", ct));
  EXPECT_TRUE(Matches("{attribute: StudyDate, range: {from: '2024-06-01'}}", ct));
  EXPECT_FALSE(Matches("{attribute: StudyDate, range: {from: '20240616'}}", ct));
  EXPECT_FALSE(Matches("{attribute: StudyDate, range: {to: '20240614'}}", ct));
  FakeAttributes acr_nema;
  acr_nema.Add("StudyDate", "DA", {"2024.06.15"});
  EXPECT_TRUE(Matches("{attribute: StudyDate, range: {from: '20240615'}}", acr_nema));
  FakeAttributes bad;
  bad.Add("StudyDate", "DA", {"June"});
  EXPECT_FALSE(Matches("{attribute: StudyDate, range: {from: '19000101'}}", bad));
}

TEST(RuleMatchingTest, TimeRangesIncludeTheirLastMinuteAndMayWrapMidnight) {
  const FakeAttributes ct = Ct();  // StudyTime 23:15:00.25
  EXPECT_TRUE(Matches("{attribute: StudyTime, range: {from: '2300', to: '2315'}}", ct));
  EXPECT_FALSE(Matches("{attribute: StudyTime, range: {from: '2300', to: '2314'}}", ct));
  EXPECT_TRUE(Matches("{attribute: StudyTime, range: {from: '23:00'}}", ct));
  EXPECT_TRUE(Matches("{attribute: StudyTime, range: {from: '2200', to: '0600'}}", ct));
  EXPECT_FALSE(Matches("{attribute: StudyTime, range: {from: '0600', to: '2200'}}", ct));
  FakeAttributes early;
  early.Add("StudyTime", "TM", {"0415"});
  EXPECT_TRUE(Matches("{attribute: StudyTime, range: {from: '2200', to: '0600'}}", early));
  EXPECT_FALSE(Matches("{attribute: StudyTime, range: {from: '2200', to: '0400'}}", early));
}

TEST(RuleMatchingTest, DateTimeRanges) {
  const FakeAttributes ct = Ct();  // 2024-06-15 23:15:00, offset ignored
  EXPECT_TRUE(Matches("{attribute: AcquisitionDateTime, range: {from: '2024', to: '2024'}}", ct));
  EXPECT_TRUE(Matches("{attribute: AcquisitionDateTime, range: {from: '20240615230000'}}", ct));
  EXPECT_FALSE(Matches("{attribute: AcquisitionDateTime, range: {to: '202406152314'}}", ct));
}

TEST(RuleMatchingTest, Wildcards) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(Matches("{attribute: BodyPartExamined, wildcard: 'HE*'}", ct));
  EXPECT_TRUE(Matches("{attribute: BodyPartExamined, wildcard: 'H??D'}", ct));
  EXPECT_TRUE(Matches("{attribute: BodyPartExamined, wildcard: '*'}", ct));
  EXPECT_FALSE(Matches("{attribute: BodyPartExamined, wildcard: 'H?D'}", ct));
  EXPECT_FALSE(Matches("{attribute: BodyPartExamined, wildcard: 'he*'}", ct));
  EXPECT_TRUE(Matches("{attribute: PatientName, wildcard: 'Doe^*'}", ct));
}

TEST(RuleMatchingTest, RegexMustMatchTheWholeValue) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(Matches("{attribute: Modality, regex: 'CT|MR'}", ct));
  EXPECT_FALSE(Matches("{attribute: Modality, regex: 'C'}", ct));
  EXPECT_TRUE(Matches("{attribute: Modality, regex: 'C.*'}", ct));
  EXPECT_TRUE(Matches("{attribute: PatientID, regex: '0+7'}", ct));
  EXPECT_TRUE(Matches("{attribute: BodyPartExamined, regex: 'HEAD'}", ct));  // padding removed
}

TEST(RuleMatchingTest, PrivateAttributesByCreator) {
  FakeAttributes attributes;
  attributes.Add("(0019,xx10)", "UN", {"FAST "}, "GEMS_ACQU_01");
  EXPECT_TRUE(
      Matches("{attribute: '(0019,xx10)', creator: GEMS_ACQU_01, equals: FAST}", attributes));
  EXPECT_TRUE(Matches("{attribute: '0019,xx10', creator: GEMS_ACQU_01, equals: FAST}", attributes));
  EXPECT_FALSE(Matches("{attribute: '(0019,xx10)', creator: OTHER, equals: FAST}", attributes));
  FakeAttributes numeric;
  numeric.Add("(0019,xx20)", "UN", {"2.50"}, "GEMS_ACQU_01");
  EXPECT_TRUE(Matches("{attribute: '(0019,xx20)', creator: GEMS_ACQU_01, range: {min: 2, max: 3}}",
                      numeric));
  // Without a VR (implicit VR private data) equals compares text; with one it follows the VR.
  EXPECT_FALSE(Matches("{attribute: '(0019,xx20)', creator: GEMS_ACQU_01, equals: 2.5}", numeric));
  EXPECT_TRUE(
      Matches("{attribute: '(0019,xx20)', creator: GEMS_ACQU_01, equals: '2.50'}", numeric));
  FakeAttributes explicit_vr;
  explicit_vr.Add("(0019,xx20)", "DS", {"2.50"}, "GEMS_ACQU_01");
  EXPECT_TRUE(
      Matches("{attribute: '(0019,xx20)', creator: GEMS_ACQU_01, equals: 2.5}", explicit_vr));
}

TEST(RuleMatchingTest, SequencePaths) {
  FakeAttributes attributes;
  attributes.Add("RequestAttributesSequence/ScheduledProcedureStepID", "SH", {"SPS1", "SPS2"})
      .Add("ReferencedStudySequence[0].ReferencedSOPInstanceUID", "UI", {"1.2.3"});
  EXPECT_TRUE(
      Matches("{attribute: RequestAttributesSequence/ScheduledProcedureStepID, "
              "equals: SPS2}",
              attributes));
  EXPECT_TRUE(Matches("{attribute: '(0040,0275)/(0040,0009)', equals: SPS1}", attributes));
  EXPECT_TRUE(
      Matches("{attribute: 'ReferencedStudySequence[0]/ReferencedSOPInstanceUID', "
              "equals: 1.2.3}",
              attributes));
  EXPECT_FALSE(
      Matches("{attribute: 'ReferencedStudySequence[1]/ReferencedSOPInstanceUID', "
              "present: true}",
              attributes));
}

TEST(RuleMatchingTest, CallingAndCalledAe) {
  AssociationFacts facts;
  facts.calling_ae = "CT1";
  facts.called_ae = "CONDUIT";
  const FakeAttributes none;
  EXPECT_TRUE(Matches("{calling_ae: CT1}", none, facts));
  EXPECT_FALSE(Matches("{calling_ae: CT2}", none, facts));
  EXPECT_FALSE(Matches("{calling_ae: ct1}", none, facts));
  EXPECT_TRUE(Matches("{calling_ae: {equals: ct1, ignore_case: true}}", none, facts));
  EXPECT_TRUE(Matches("{calling_ae: {in: [CT1, CT2]}}", none, facts));
  EXPECT_TRUE(Matches("{calling_ae: {wildcard: 'CT*'}}", none, facts));
  EXPECT_TRUE(Matches("{calling_ae: {regex: 'CT[0-9]+'}}", none, facts));
  EXPECT_FALSE(Matches("{calling_ae: {regex: 'CT'}}", none, facts));
  EXPECT_TRUE(Matches("{called_ae: CONDUIT}", none, facts));
  EXPECT_FALSE(Matches("{called_ae: CT1}", none, facts));
  facts.calling_ae = "  CT1";  // PS3.5: leading spaces of an AE are not significant
  EXPECT_TRUE(Matches("{calling_ae: CT1}", none, facts));
  facts.calling_ae = "";
  EXPECT_FALSE(Matches("{calling_ae: {wildcard: '*'}}", none, facts));
}

TEST(RuleMatchingTest, SourceNetworks) {
  AssociationFacts facts;
  const FakeAttributes none;
  facts.peer_address = "10.1.2.3";
  EXPECT_TRUE(Matches("{source: [10.0.0.0/8]}", none, facts));
  EXPECT_TRUE(Matches("{source: [192.168.0.0/16, 10.1.2.3]}", none, facts));
  EXPECT_TRUE(Matches("{source: 10.0.0.0/8}", none, facts));  // one network without a list
  EXPECT_FALSE(Matches("{source: [192.168.0.0/16]}", none, facts));
  facts.peer_address = "::ffff:10.1.2.3";  // a dual-stack socket's IPv4 peer
  EXPECT_TRUE(Matches("{source: [10.0.0.0/8]}", none, facts));
  facts.peer_address = "fd00::17";
  EXPECT_TRUE(Matches("{source: ['fd00::/8']}", none, facts));
  EXPECT_FALSE(Matches("{source: [10.0.0.0/8]}", none, facts));
  facts.peer_address = "";
  EXPECT_FALSE(Matches("{source: ['0.0.0.0/0']}", none, facts));
}

TEST(RuleMatchingTest, TimeOfDayFromIsInclusiveToIsExclusive) {
  const FakeAttributes none;
  const std::string day = "{time_of_day: {from: '08:00', to: '18:00'}}";
  EXPECT_TRUE(Matches(day, none, At(LocalTime(2024, 6, 3, 8, 0))));
  EXPECT_TRUE(Matches(day, none, At(LocalTime(2024, 6, 3, 17, 59, 59))));
  EXPECT_FALSE(Matches(day, none, At(LocalTime(2024, 6, 3, 18, 0))));
  EXPECT_FALSE(Matches(day, none, At(LocalTime(2024, 6, 3, 7, 59, 59))));
}

TEST(RuleMatchingTest, TimeOfDayWrapsMidnight) {
  const FakeAttributes none;
  const std::string night = "{time_of_day: {from: '18:00', to: '07:00'}}";
  EXPECT_TRUE(Matches(night, none, At(LocalTime(2024, 6, 3, 18, 0))));
  EXPECT_TRUE(Matches(night, none, At(LocalTime(2024, 6, 3, 23, 59))));
  EXPECT_TRUE(Matches(night, none, At(LocalTime(2024, 6, 4, 0, 0))));
  EXPECT_TRUE(Matches(night, none, At(LocalTime(2024, 6, 4, 6, 59, 59))));
  EXPECT_FALSE(Matches(night, none, At(LocalTime(2024, 6, 4, 7, 0))));
  EXPECT_FALSE(Matches(night, none, At(LocalTime(2024, 6, 4, 12, 0))));
}

TEST(RuleMatchingTest, DayOfWeek) {
  const FakeAttributes none;
  const auto saturday = At(LocalTime(2024, 6, 1, 12, 0));
  const auto sunday = At(LocalTime(2024, 6, 2, 12, 0));
  const auto monday = At(LocalTime(2024, 6, 3, 12, 0));
  EXPECT_TRUE(Matches("{day_of_week: [sat, sun]}", none, saturday));
  EXPECT_TRUE(Matches("{day_of_week: [sat, sun]}", none, sunday));
  EXPECT_FALSE(Matches("{day_of_week: [sat, sun]}", none, monday));
  EXPECT_TRUE(Matches("{day_of_week: [Monday]}", none, monday));
  EXPECT_TRUE(Matches("{day_of_week: MON}", none, monday));
}

TEST(RuleMatchingTest, OffHoursIsAnyOfNightOrWeekend) {
  const FakeAttributes none;
  const std::string off_hours =
      "{any: [{time_of_day: {from: '18:00', to: '07:00'}}, {day_of_week: [sat, sun]}]}";
  EXPECT_TRUE(Matches(off_hours, none, At(LocalTime(2024, 6, 1, 12, 0))));   // Saturday noon
  EXPECT_TRUE(Matches(off_hours, none, At(LocalTime(2024, 6, 3, 19, 0))));   // Monday evening
  EXPECT_FALSE(Matches(off_hours, none, At(LocalTime(2024, 6, 3, 12, 0))));  // Monday noon
}

TEST(RuleMatchingTest, Nesting) {
  const FakeAttributes ct = Ct();
  EXPECT_TRUE(
      Matches("{all: [{attribute: Modality, equals: CT}, "
              "{attribute: BodyPartExamined, equals: HEAD}]}",
              ct));
  EXPECT_FALSE(
      Matches("{all: [{attribute: Modality, equals: CT}, "
              "{attribute: BodyPartExamined, equals: CHEST}]}",
              ct));
  EXPECT_TRUE(
      Matches("{any: [{attribute: Modality, equals: MR}, "
              "{attribute: BodyPartExamined, equals: HEAD}]}",
              ct));
  EXPECT_FALSE(
      Matches("{any: [{attribute: Modality, equals: MR}, "
              "{attribute: BodyPartExamined, equals: CHEST}]}",
              ct));
  EXPECT_TRUE(Matches("{not: {attribute: Modality, equals: MR}}", ct));
  EXPECT_FALSE(Matches("{not: [{attribute: Modality, equals: CT}, {attribute: Rows, equals: 512}]}",
                       ct));  // not of a list: not (all of)
  EXPECT_TRUE(
      Matches("{all: [{any: [{not: {attribute: Modality, equals: MR}}, "
              "{attribute: Rows, equals: 1}]}, {attribute: Modality, in: [CT]}]}",
              ct));
  // A list under when: means all of it.
  EXPECT_TRUE(Matches("[{attribute: Modality, equals: CT}, {attribute: Rows, equals: 512}]", ct));
  EXPECT_FALSE(Matches("[{attribute: Modality, equals: CT}, {attribute: Rows, equals: 256}]", ct));
}

TEST(RuleMatchingTest, EachAttributeIsFetchedOncePerEvaluation) {
  const auto rules = LoadOrFail(R"(version: 1
rules:
  - name: a
    when: {attribute: Modality, equals: MR}
    route: [PACS]
  - name: b
    when: {attribute: '(0008,0060)', in: [PR, KO]}
    route: [PACS]
  - name: c
    when: [{attribute: Modality, regex: 'X.*'}, {attribute: Rows, equals: 1}]
    route: [PACS]
  - name: d
    when: {any: [{attribute: Rows, equals: 2}, {attribute: Modality, wildcard: 'M*'}]}
    route: [PACS]
)");
  ASSERT_TRUE(rules);
  const FakeAttributes ct = Ct();
  rules->Evaluate(ct, {});
  EXPECT_EQ(ct.finds(), 2);  // Modality and Rows
}

}  // namespace
}  // namespace conduit::rules
