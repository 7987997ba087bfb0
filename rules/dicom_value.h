// How DICOM values compare: padding that is not significant per VR (PS3.5 6.2), numbers written
// as text (DS, IS, and binary numbers rendered as decimal), dates and times (DA, TM, DT), and
// C-FIND style wildcards (PS3.4 C.2.2.2.4). Pure functions on string views; no allocation on the
// matching paths, because the rule evaluator calls them for every instance.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace conduit::rules {

// How the values of a VR are compared.
enum class ValueKind : std::uint8_t {
  kText,      // AE AS CS LO LT PN SH ST UC UI UR UT
  kNumber,    // DS IS and the binary numbers US SS UL SL FL FD SV UV (rendered as decimal text)
  kDate,      // DA
  kTime,      // TM
  kDateTime,  // DT
  kOther,     // SQ, OB, OW, UN, unknown: compared as text
};

struct VrTraits {
  ValueKind kind = ValueKind::kOther;
  bool trim_leading_spaces = false;  // PS3.5 6.2: leading spaces are not significant
};

// `vr` is two upper-case letters; anything else (empty, "UN") gives kOther.
VrTraits TraitsOfVr(std::string_view vr);

// `value` without the padding that carries no meaning: trailing spaces and NULs always (UI is
// padded with NUL, PS3.5 9.1; some writers wrongly pad other VRs with NUL too), leading spaces
// when the VR says so.
std::string_view TrimValue(std::string_view value, VrTraits traits);

// A decimal number as DS, IS and rendered binary numbers are written: optional sign, digits,
// optional fraction and exponent. The whole text must be the number; no NaN or infinity.
std::optional<double> ParseDecimal(std::string_view text);

// A point in time as microseconds since 1970-01-01 (wall clock, no time zone), with the extent
// the text's precision gives it: "2024" covers the whole year, "0800" the whole minute.
struct TimeSpan {
  std::int64_t first = 0;
  std::int64_t last = 0;  // inclusive
};

constexpr std::int64_t kMicrosecondsPerSecond = 1'000'000;
constexpr std::int64_t kMicrosecondsPerDay = 86'400 * kMicrosecondsPerSecond;

// DA: YYYYMMDD (also the ACR-NEMA YYYY.MM.DD, and YYYY-MM-DD for people writing rules).
std::optional<TimeSpan> ParseDate(std::string_view text);
// TM: HH[MM[SS[.F{1,6}]]] (also HH:MM[:SS[.F]] from ACR-NEMA and people), within one day.
std::optional<TimeSpan> ParseTime(std::string_view text);
// DT: YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]][&ZZXX]. The UTC offset is ignored: values compare as
// the wall-clock time written.
std::optional<TimeSpan> ParseDateTime(std::string_view text);

// "HH:MM" or "HH:MM:SS" (hour may be one digit): seconds since midnight, for time_of_day.
std::optional<int> ParseClockTime(std::string_view text);

// ASCII upper-case letters folded to lower case; other bytes unchanged.
std::string AsciiLower(std::string_view text);
// `lowered` is already lower case; `text` is folded as it is compared.
bool EqualsFolded(std::string_view lowered, std::string_view text);

// C-FIND wildcards: `*` any run of characters (possibly none), `?` exactly one character (a
// whole UTF-8 sequence). With `fold_case`, `pattern` must already be lower case.
bool WildcardMatch(std::string_view pattern, std::string_view text, bool fold_case);

// A wildcard pattern prepared once: without `?`, the literal pieces between `*`s are found with
// plain searches ("*HEAD*" is one search), which is what most rules use; with `?`, it falls back
// to WildcardMatch. Matches exactly what WildcardMatch matches.
class WildcardPattern {
 public:
  WildcardPattern() = default;
  // With `fold_case`, `pattern` must already be lower case.
  WildcardPattern(std::string_view pattern, bool fold_case);

  bool Matches(std::string_view text) const;
  // The same for a text already lower-cased (AsciiLower): plain searches, even with fold_case.
  bool MatchesLowered(std::string_view lowered_text) const;

 private:
  bool Match(std::string_view text, bool fold_case) const;

  std::string pattern_;
  bool fold_case_ = false;
  bool has_question_mark_ = false;
  std::vector<std::string> pieces_;  // split on '*': first anchors the start, last the end
};

}  // namespace conduit::rules
