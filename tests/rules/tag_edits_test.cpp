// ApplyEdits over a fake dataset: what each edit does to present, absent, empty and
// multi-valued attributes, with edits loaded from a rules file as the router gets them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rules/rule_set.h"
#include "tests/rules/fake_attributes.h"

namespace conduit::rules {
namespace {

using testing::FakeAttributes;
using testing::LoadOrFail;
using testing::PathOf;

// The edits of the first route of a one-rule file whose route edits are `edits_yaml` (a flow
// list).
std::vector<TagEdit> Edits(const std::string& edits_yaml) {
  const auto rules = LoadOrFail(
      "version: 1\nrules:\n  - name: r\n    route:\n"
      "      - destination: PACS\n        edits: " +
      edits_yaml + "\n");
  if (!rules) {
    return {};
  }
  const RoutingDecision decision = rules->Evaluate(FakeAttributes{}, {});
  return decision.routes.at(0).edits;
}

FakeAttributes Patient() {
  FakeAttributes attributes;
  attributes.Add("PatientID", "LO", {"000123 "})
      .Add("PatientName", "PN", {"Doe^John"})
      .Add("AccessionNumber", "SH", {"ACC1 "})
      .Add("OtherPatientIDs", "LO", {"A1", "", "B2 "})
      .Add("StudyID", "SH", {"S1"})
      .Add("InstitutionName", "LO", {})
      .Add("(0019,xx10)", "UN", {"SECRET"}, "GEMS_ACQU_01");
  return attributes;
}

TEST(TagEditsTest, SetCreatesOrReplaces) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{set: {attribute: InstitutionName, value: 'Site A'}}, "
                   "{set: {attribute: StationName, value: CT01}}, "
                   "{set: {attribute: StudyID, value: ''}}]"),
             attributes);
  EXPECT_EQ(attributes.Text("InstitutionName"), "Site A");
  EXPECT_EQ(attributes.Text("StationName"), "CT01");
  EXPECT_EQ(attributes.Text("StudyID"), "");  // set to empty: present, no value
}

TEST(TagEditsTest, SetWithBackslashSetsSeveralValues) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{set: {attribute: ImageType, value: 'DERIVED\\SECONDARY'}}]"), attributes);
  EXPECT_EQ(attributes.Find(PathOf("ImageType"))->values,
            (std::vector<std::string>{"DERIVED", "SECONDARY"}));
}

TEST(TagEditsTest, DeleteRemovesAndIgnoresAbsent) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{delete: {attribute: PatientName}}, {delete: {attribute: OperatorsName}}, "
                   "{delete: {attribute: '(0019,xx10)', creator: GEMS_ACQU_01}}]"),
             attributes);
  EXPECT_EQ(attributes.Text("PatientName"), "<absent>");
  EXPECT_EQ(attributes.Text("OperatorsName"), "<absent>");
  EXPECT_EQ(attributes.Text("(0019,xx10)", "GEMS_ACQU_01"), "<absent>");
}

TEST(TagEditsTest, PrefixAndSuffixEachValueWithoutPadding) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{prefix: {attribute: PatientID, value: 'SITEA-'}}, "
                   "{suffix: {attribute: AccessionNumber, value: '-A'}}, "
                   "{prefix: {attribute: OtherPatientIDs, value: 'X-'}}]"),
             attributes);
  EXPECT_EQ(attributes.Text("PatientID"), "SITEA-000123");
  EXPECT_EQ(attributes.Text("AccessionNumber"), "ACC1-A");        // the padding went, not before -A
  EXPECT_EQ(attributes.Text("OtherPatientIDs"), "X-A1\\\\X-B2");  // empty values stay empty
}

TEST(TagEditsTest, PrefixAndSuffixLeaveAbsentAndEmptyAlone) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{prefix: {attribute: InstitutionName, value: 'X-'}}, "
                   "{suffix: {attribute: OperatorsName, value: '-X'}}]"),
             attributes);
  EXPECT_EQ(attributes.Text("InstitutionName"), "");
  EXPECT_EQ(attributes.Text("OperatorsName"), "<absent>");
}

TEST(TagEditsTest, CopyFromAnotherAttribute) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{copy: {from: AccessionNumber, to: StudyID}}, "
                   "{copy: {from: OtherPatientIDs, to: IssuerOfPatientID}}, "
                   "{copy: {from: '(0019,xx10)', to: StationName, creator: GEMS_ACQU_01}}]"),
             attributes);
  EXPECT_EQ(attributes.Text("StudyID"), "ACC1");
  EXPECT_EQ(attributes.Text("IssuerOfPatientID"), "A1\\\\B2");
  EXPECT_EQ(attributes.Text("StationName"), "SECRET");
}

TEST(TagEditsTest, CopyFromAbsentDoesNothing) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{copy: {from: OperatorsName, to: StudyID}}]"), attributes);
  EXPECT_EQ(attributes.Text("StudyID"), "S1");
}

TEST(TagEditsTest, RegexReplaceEveryMatchInEachValue) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{replace: {attribute: PatientID, regex: '^0+', with: ''}}, "
                   "{replace: {attribute: PatientName, regex: '(\\w+)\\^(\\w+)', "
                   "with: '\\2 \\1'}}, "
                   "{replace: {attribute: OtherPatientIDs, regex: '[0-9]', with: '#'}}]"),
             attributes);
  EXPECT_EQ(attributes.Text("PatientID"), "123");
  EXPECT_EQ(attributes.Text("PatientName"), "John Doe");
  EXPECT_EQ(attributes.Text("OtherPatientIDs"), "A#\\\\B#");
}

TEST(TagEditsTest, RegexReplaceWithoutMatchLeavesTheValueUntouched) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{replace: {attribute: PatientID, regex: 'X', with: 'Y'}}, "
                   "{replace: {attribute: OperatorsName, regex: '.*', with: 'Y'}}]"),
             attributes);
  EXPECT_EQ(attributes.Text("PatientID"), "000123 ");  // not even the padding rewritten
  EXPECT_EQ(attributes.Text("OperatorsName"), "<absent>");
}

TEST(TagEditsTest, EditsApplyInOrder) {
  FakeAttributes attributes = Patient();
  ApplyEdits(Edits("[{copy: {from: PatientID, to: OtherPatientIDs}}, "
                   "{prefix: {attribute: PatientID, value: 'SITEA-'}}, "
                   "{replace: {attribute: PatientID, regex: '-0+', with: '-'}}]"),
             attributes);
  EXPECT_EQ(attributes.Text("OtherPatientIDs"), "000123");
  EXPECT_EQ(attributes.Text("PatientID"), "SITEA-123");
}

TEST(TagEditsTest, HandBuiltRegexEditsCompileOnTheSpot) {
  FakeAttributes attributes = Patient();
  TagEdit edit;
  edit.kind = TagEdit::Kind::kRegexReplace;
  edit.target = PathOf("PatientID");
  edit.pattern = "^0+";
  ApplyEdits({edit}, attributes);
  EXPECT_EQ(attributes.Text("PatientID"), "123");
  edit.pattern = "(";  // does not compile: the edit is skipped
  edit.target = PathOf("PatientName");
  ApplyEdits({edit}, attributes);
  EXPECT_EQ(attributes.Text("PatientName"), "Doe^John");
}

}  // namespace
}  // namespace conduit::rules
