#include "rules/attribute_path_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <variant>

namespace conduit::rules {
namespace {

ParsedAttributePath Parse(std::string_view text, std::string_view creator = "") {
  std::variant<ParsedAttributePath, std::string> parsed = ParseAttributePath(text, creator);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    ADD_FAILURE() << text << ": " << *error;
    return {};
  }
  return std::get<ParsedAttributePath>(parsed);
}

std::string Error(std::string_view text, std::string_view creator = "") {
  std::variant<ParsedAttributePath, std::string> parsed = ParseAttributePath(text, creator);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    return *error;
  }
  ADD_FAILURE() << text << " parsed";
  return "";
}

TEST(AttributePathParserTest, KeywordGivesTagAndVr) {
  const ParsedAttributePath parsed = Parse("Modality");
  ASSERT_EQ(parsed.path.steps.size(), 1U);
  EXPECT_EQ(parsed.path.steps[0].tag, (Tag{0x0008, 0x0060}));
  EXPECT_EQ(parsed.vr, "CS");
  EXPECT_EQ(Parse("PatientName").vr, "PN");
  EXPECT_EQ(Parse("SliceThickness").vr, "DS");
  EXPECT_EQ(Parse("StudyDate").vr, "DA");
  EXPECT_EQ(Parse("SmallestImagePixelValue").vr, "US");  // US or SS: compares the same
  // Retired attributes by their PS3.6 keyword (DCMTK prefixes them with RETIRED_).
  EXPECT_EQ(Parse("OtherPatientIDs").path.steps[0].tag, (Tag{0x0010, 0x1000}));
}

TEST(AttributePathParserTest, TagsInBothSpellings) {
  EXPECT_EQ(Parse("(0008,0060)").path, Parse("Modality").path);
  EXPECT_EQ(Parse("0008,0060").path, Parse("Modality").path);
  EXPECT_EQ(Parse("(0020,000d)").path, Parse("StudyInstanceUID").path);
  EXPECT_EQ(Parse("(0008,0060)").vr, "CS");
  EXPECT_EQ(Parse("(0009,0010)").vr, "");  // a private creator slot, no dictionary VR
}

TEST(AttributePathParserTest, SequencesWithAndWithoutItems) {
  const ParsedAttributePath any = Parse("RequestAttributesSequence/ScheduledProcedureStepID");
  ASSERT_EQ(any.path.steps.size(), 2U);
  EXPECT_EQ(any.path.steps[0].tag, (Tag{0x0040, 0x0275}));
  EXPECT_FALSE(any.path.steps[0].item);
  EXPECT_EQ(any.path.steps[1].tag, (Tag{0x0040, 0x0009}));
  EXPECT_EQ(any.vr, "SH");

  const ParsedAttributePath first = Parse("ReferencedStudySequence[0].ReferencedSOPInstanceUID");
  ASSERT_EQ(first.path.steps.size(), 2U);
  EXPECT_EQ(first.path.steps[0].item, 0U);
  EXPECT_EQ(first.vr, "UI");
  EXPECT_EQ(Parse("(0008,1110)[2]/(0008,1155)").path.steps[0].item, 2U);
}

TEST(AttributePathParserTest, PrivateTagsTakeTheCreator) {
  const ParsedAttributePath parsed = Parse("(0019,xx10)", "GEMS_ACQU_01");
  ASSERT_EQ(parsed.path.steps.size(), 1U);
  EXPECT_EQ(parsed.path.steps[0].tag, (Tag{0x0019, 0x0010}));
  EXPECT_EQ(parsed.path.steps[0].private_creator, "GEMS_ACQU_01");
  EXPECT_EQ(Parse("0019,XX10", "GEMS_ACQU_01").path, parsed.path);
  EXPECT_EQ(parsed.vr, "");
  // A private element inside a standard sequence.
  const ParsedAttributePath nested = Parse("RequestAttributesSequence/(0019,xx10)", "GEMS");
  EXPECT_EQ(nested.path.steps[0].private_creator, "");
  EXPECT_EQ(nested.path.steps[1].private_creator, "GEMS");
}

TEST(AttributePathParserTest, FormatsAsTags) {
  EXPECT_EQ(FormatAttributePath(Parse("Modality").path), "(0008,0060)");
  EXPECT_EQ(FormatAttributePath(Parse("ReferencedStudySequence[0]/ReferencedSOPInstanceUID").path),
            "(0008,1110)[0]/(0008,1155)");
  EXPECT_EQ(FormatAttributePath(Parse("(0019,xx1a)", "X").path), "(0019,xx1A)");
  EXPECT_EQ(KeywordOfTag(Tag{0x0010, 0x0010}), "PatientName");
  EXPECT_EQ(KeywordOfTag(Tag{0x0019, 0x1010}), "");
}

TEST(AttributePathParserTest, UnknownKeywordSuggestsTheClosest) {
  EXPECT_EQ(Error("Modalty"), "unknown attribute keyword 'Modalty' (did you mean 'Modality'?)");
  EXPECT_EQ(Error("patientname"),
            "unknown attribute keyword 'patientname' (did you mean 'PatientName'?)");
  EXPECT_EQ(Error("Xyzzy"), "unknown attribute keyword 'Xyzzy'");
}

TEST(AttributePathParserTest, BadTags) {
  EXPECT_EQ(Error("(0008,006G)"),
            "bad tag '(0008,006G)': the element must be four hexadecimal digits (or xxEE in a "
            "private group)");
  EXPECT_EQ(Error("(008,0060)"), "bad tag '(008,0060)': the group must be four hexadecimal digits");
  EXPECT_EQ(Error("(0008,0060"), "bad tag '(0008,0060': missing ')'");
  EXPECT_EQ(Error("(FFFE,E000)"),
            "bad tag '(FFFE,E000)': group FFFE holds items and delimiters, not attributes");
  EXPECT_EQ(Error("Modality!"),
            "bad attribute 'Modality!': expected a keyword such as Modality or a tag such as "
            "(0008,0060)");
  EXPECT_EQ(Error(""), "empty attribute path");
  EXPECT_EQ(Error("Modality/"), "empty step in the attribute path");
}

TEST(AttributePathParserTest, PrivateTagMistakes) {
  EXPECT_EQ(Error("(0019,xx10)"),
            "private tag '(0019,xx10)' needs its private creator: add creator: \"NAME\" next to "
            "it");
  EXPECT_EQ(Error("(0019,1010)"),
            "private tag '(0019,1010)': write it as (0019,xx10) with creator: \"NAME\"; the "
            "block number depends on the dataset");
  EXPECT_EQ(Error("(0008,xx10)", "X"),
            "bad tag '(0008,xx10)': 'xx' stands for a private block, but the group is not "
            "private (private groups are odd)");
  EXPECT_EQ(Error("Modality", "GEMS"),
            "creator 'GEMS' is given but 'Modality' has no private tag in (gggg,xxEE) form");
}

TEST(AttributePathParserTest, SequenceMistakes) {
  EXPECT_EQ(Error("Modality/PatientID"),
            "attribute path 'Modality/PatientID': the step before 'PatientID' is not a sequence "
            "(its VR is CS)");
  EXPECT_EQ(Error("Modality[0]"),
            "attribute path 'Modality[0]': an item index belongs on a sequence step, not on the "
            "last one");
  EXPECT_EQ(Error("ReferencedStudySequence[x]/ReferencedSOPInstanceUID"),
            "an item index must be a number from 0 to 999999, got 'ReferencedStudySequence[x]'");
  EXPECT_EQ(Error("ReferencedStudySequence[0/ReferencedSOPInstanceUID"),
            "an item index is written [n] at the end of a step, got 'ReferencedStudySequence[0'");
  std::string deep = "Modality";
  for (int i = 0; i < 8; ++i) {
    deep.insert(0, "RequestAttributesSequence/");
  }
  EXPECT_EQ(Error(deep), "attribute path '" + deep + "' is deeper than 8 steps");
}

}  // namespace
}  // namespace conduit::rules
