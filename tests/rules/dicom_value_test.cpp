#include "rules/dicom_value.h"

#include <gtest/gtest.h>

#include <optional>
#include <string_view>

namespace conduit::rules {
namespace {

using namespace std::string_view_literals;

TEST(DicomValueTest, TrailingSpacesAndNulsAreNeverSignificant) {
  EXPECT_EQ(TrimValue("CT ", TraitsOfVr("CS")), "CT");
  EXPECT_EQ(TrimValue("1.2.840.10008.1.2\0"sv, TraitsOfVr("UI")), "1.2.840.10008.1.2");
  EXPECT_EQ(TrimValue("text  ", TraitsOfVr("LT")), "text");
  EXPECT_EQ(TrimValue("raw \0"sv, TraitsOfVr("UN")), "raw");
}

TEST(DicomValueTest, LeadingSpacesOnlyWhereTheVrSaysSo) {
  // PS3.5 6.2: AE, CS, DS, IS, LO, PN, SH, DA, DT, TM ignore leading spaces.
  for (const char* vr : {"AE", "CS", "DS", "IS", "LO", "PN", "SH", "DA", "DT", "TM"}) {
    EXPECT_EQ(TrimValue("  X ", TraitsOfVr(vr)), "X") << vr;
  }
  for (const char* vr : {"LT", "ST", "UT", "UI", "UC", "UR", "UN", ""}) {
    EXPECT_EQ(TrimValue("  X ", TraitsOfVr(vr)), "  X") << vr;
  }
}

TEST(DicomValueTest, VrKinds) {
  EXPECT_EQ(TraitsOfVr("DS").kind, ValueKind::kNumber);
  EXPECT_EQ(TraitsOfVr("IS").kind, ValueKind::kNumber);
  EXPECT_EQ(TraitsOfVr("US").kind, ValueKind::kNumber);
  EXPECT_EQ(TraitsOfVr("FD").kind, ValueKind::kNumber);
  EXPECT_EQ(TraitsOfVr("DA").kind, ValueKind::kDate);
  EXPECT_EQ(TraitsOfVr("TM").kind, ValueKind::kTime);
  EXPECT_EQ(TraitsOfVr("DT").kind, ValueKind::kDateTime);
  EXPECT_EQ(TraitsOfVr("CS").kind, ValueKind::kText);
  EXPECT_EQ(TraitsOfVr("OB").kind, ValueKind::kOther);
  EXPECT_EQ(TraitsOfVr("").kind, ValueKind::kOther);
}

TEST(DicomValueTest, DecimalNumbersAsDsAndIsWriteThem) {
  EXPECT_EQ(ParseDecimal("1"), 1.0);
  EXPECT_EQ(ParseDecimal("+1.50"), 1.5);
  EXPECT_EQ(ParseDecimal("-0.5"), -0.5);
  EXPECT_EQ(ParseDecimal(".5"), 0.5);
  EXPECT_EQ(ParseDecimal("1e3"), 1000.0);
  EXPECT_EQ(ParseDecimal("2.5E-1"), 0.25);
  EXPECT_FALSE(ParseDecimal(""));
  EXPECT_FALSE(ParseDecimal("+"));
  EXPECT_FALSE(ParseDecimal("+-1"));
  EXPECT_FALSE(ParseDecimal("1.5mm"));
  EXPECT_FALSE(ParseDecimal("inf"));
  EXPECT_FALSE(ParseDecimal("nan"));
  EXPECT_FALSE(ParseDecimal("-inf"));
  EXPECT_FALSE(ParseDecimal("1e999"));
  EXPECT_FALSE(ParseDecimal(" 1"));  // callers trim first
}

TEST(DicomValueTest, DatesSpanTheirDay) {
  const std::optional<TimeSpan> day = ParseDate("20240229");
  ASSERT_TRUE(day);
  EXPECT_EQ(day->last - day->first, kMicrosecondsPerDay - 1);
  EXPECT_EQ(ParseDate("2024.02.29")->first, day->first);  // ACR-NEMA
  EXPECT_EQ(ParseDate("2024-02-29")->first, day->first);
  EXPECT_EQ(ParseDate("19700101")->first, 0);
  EXPECT_LT(ParseDate("20231231")->first, day->first);
  EXPECT_FALSE(ParseDate("20230229"));  // not a leap year
  EXPECT_FALSE(ParseDate("20241301"));
  EXPECT_FALSE(ParseDate("20240100"));
  EXPECT_FALSE(ParseDate("2024-0101"));
  EXPECT_FALSE(ParseDate("2024010"));
  EXPECT_FALSE(ParseDate("2024O101"));
}

TEST(DicomValueTest, TimesSpanTheirPrecision) {
  const std::optional<TimeSpan> minute = ParseTime("0800");
  ASSERT_TRUE(minute);
  EXPECT_EQ(minute->first, kMicrosecondsPerSecond * 8 * 3600);
  EXPECT_EQ(minute->last, minute->first + kMicrosecondsPerSecond * 60 - 1);
  EXPECT_EQ(ParseTime("08")->last, kMicrosecondsPerSecond * 9 * 3600 - 1);
  EXPECT_EQ(ParseTime("080000")->last, kMicrosecondsPerSecond * 8 * 3600 + 999'999);
  EXPECT_EQ(ParseTime("080000.5")->first, kMicrosecondsPerSecond * 8 * 3600 + 500'000);
  EXPECT_EQ(ParseTime("080000.5")->last, kMicrosecondsPerSecond * 8 * 3600 + 599'999);
  EXPECT_EQ(ParseTime("080000.123456")->last, ParseTime("080000.123456")->first);
  EXPECT_EQ(ParseTime("08:00")->first, minute->first);
  EXPECT_EQ(ParseTime("8:00")->first, minute->first);
  EXPECT_EQ(ParseTime("08:00:30")->first, ParseTime("080030")->first);
  EXPECT_TRUE(ParseTime("235960"));  // leap second
  EXPECT_FALSE(ParseTime("2400"));
  EXPECT_FALSE(ParseTime("0860"));
  EXPECT_FALSE(ParseTime("080"));
  EXPECT_FALSE(ParseTime("0800.5"));  // a fraction follows seconds only
  EXPECT_FALSE(ParseTime("080000.1234567"));
  EXPECT_FALSE(ParseTime("08:0"));
  EXPECT_FALSE(ParseTime("08:00:00:00"));
  EXPECT_FALSE(ParseTime(""));
}

TEST(DicomValueTest, DateTimesWithAnyPrecisionAndOffsetIgnored) {
  const std::optional<TimeSpan> year = ParseDateTime("2024");
  ASSERT_TRUE(year);
  EXPECT_EQ(year->first, ParseDate("20240101")->first);
  EXPECT_EQ(year->last, ParseDate("20241231")->last);
  EXPECT_EQ(ParseDateTime("202402")->last, ParseDate("20240229")->last);
  EXPECT_EQ(ParseDateTime("20241231")->last, ParseDate("20241231")->last);
  EXPECT_EQ(ParseDateTime("202406011830")->first,
            ParseDate("20240601")->first + ParseTime("1830")->first);
  EXPECT_EQ(ParseDateTime("20240601183000.25+0200")->first,
            ParseDateTime("20240601183000.25")->first);
  EXPECT_FALSE(ParseDateTime("202"));
  EXPECT_FALSE(ParseDateTime("20241"));
  EXPECT_FALSE(ParseDateTime("20240230"));
  EXPECT_FALSE(ParseDateTime("20240101.5"));
  EXPECT_FALSE(ParseDateTime("2024010125"));
}

TEST(DicomValueTest, ClockTimesForTimeOfDay) {
  EXPECT_EQ(ParseClockTime("00:00"), 0);
  EXPECT_EQ(ParseClockTime("7:05"), 7 * 3600 + 5 * 60);
  EXPECT_EQ(ParseClockTime("18:00:30"), 18 * 3600 + 30);
  EXPECT_EQ(ParseClockTime("23:59:59"), 86'399);
  EXPECT_FALSE(ParseClockTime("24:00"));
  EXPECT_FALSE(ParseClockTime("1800"));
  EXPECT_FALSE(ParseClockTime("18:60"));
  EXPECT_FALSE(ParseClockTime("23:59:60"));
  EXPECT_FALSE(ParseClockTime("18:00:00.5"));
  EXPECT_FALSE(ParseClockTime("six"));
}

TEST(DicomValueTest, CaseFoldingIsAscii) {
  EXPECT_EQ(AsciiLower("HeAd Ç"), "head Ç");
  EXPECT_TRUE(EqualsFolded("head", "HEAD"));
  EXPECT_FALSE(EqualsFolded("head", "HEADS"));
  EXPECT_FALSE(EqualsFolded("HEAD", "head"));  // the constant must be lower case already
}

TEST(DicomValueTest, Wildcards) {
  EXPECT_TRUE(WildcardMatch("*", "", false));
  EXPECT_TRUE(WildcardMatch("*", "anything", false));
  EXPECT_TRUE(WildcardMatch("HEAD*", "HEAD", false));
  EXPECT_TRUE(WildcardMatch("HEAD*", "HEADNECK", false));
  EXPECT_TRUE(WildcardMatch("*NECK", "HEADNECK", false));
  EXPECT_TRUE(WildcardMatch("*AD*EC*", "HEADNECK", false));
  EXPECT_TRUE(WildcardMatch("C?", "CT", false));
  EXPECT_TRUE(WildcardMatch("a*b*c", "aXbYbZc", false));
  EXPECT_TRUE(WildcardMatch("*ab", "aab", false));
  EXPECT_FALSE(WildcardMatch("C?", "C", false));
  EXPECT_FALSE(WildcardMatch("C?", "CTA", false));
  EXPECT_FALSE(WildcardMatch("HEAD*", "head", false));
  EXPECT_TRUE(WildcardMatch("head*", "HEADNECK", true));
  EXPECT_FALSE(WildcardMatch("HEAD", "HEADNECK", false));
  EXPECT_FALSE(WildcardMatch("", "x", false));
  // `?` is one character, even when UTF-8 spends two bytes on it.
  EXPECT_TRUE(WildcardMatch("M?LLER", "M\xC3\x9CLLER", false));
  EXPECT_FALSE(WildcardMatch("M??LLER", "M\xC3\x9CLLER", false));
  EXPECT_TRUE(WildcardMatch("*\xC3\x9C*", "M\xC3\x9CLLER", false));
}

TEST(DicomValueTest, PreparedWildcardsMatchWhatWildcardMatchMatches) {
  const auto patterns = {"*",   "**",         "HEAD",   "HEAD*", "*HEAD",   "*HEAD*",
                         "H*D", "H*A*D",      "*E*E*",  "A*A",   "*AB*AB*", "AB*AB",
                         "",    "*\xC3\x9C*", "M?LLER", "*?",    "?*",      "a*b*c"};
  const auto texts = {"",    "HEAD", "HEADNECK", "NECKHEAD",      "HEAD NECK HEAD", "HD",
                      "HAD", "A",    "AA",       "ABAB",          "ABABAB",         "ABXAB",
                      "EE",  "E",    "aXbYbZc",  "M\xC3\x9CLLER", "MULLER"};
  for (const char* pattern : patterns) {
    for (const bool fold : {false, true}) {
      const std::string prepared = fold ? AsciiLower(pattern) : std::string(pattern);
      const WildcardPattern compiled(prepared, fold);
      for (const char* text : texts) {
        EXPECT_EQ(compiled.Matches(text), WildcardMatch(prepared, text, fold))
            << pattern << " on " << text << (fold ? " folded" : "");
      }
    }
  }
  EXPECT_TRUE(WildcardPattern("*head*", true).Matches("CT HEAD WO"));
  EXPECT_FALSE(WildcardPattern("*head*", false).Matches("CT HEAD WO"));
  EXPECT_FALSE(WildcardPattern("ab*ba", false).Matches("aba"));  // the ends may not overlap
}

}  // namespace
}  // namespace conduit::rules
