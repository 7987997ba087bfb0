#include "rules/dicom_value.h"

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <system_error>

namespace conduit::rules {
namespace {

constexpr std::int64_t kSecondsPerMinute = 60;
constexpr std::int64_t kSecondsPerHour = 3600;
constexpr std::size_t kMaxFractionDigits = 6;  // PS3.5 6.2: TM and DT fractions go to 1 µs

struct VrEntry {
  std::string_view vr;
  VrTraits traits;
};

// PS3.5 Table 6.2-1. Leading spaces are not significant for AE, CS, DS, IS, LO, PN, SH, DA, DT
// and TM; trailing spaces for every string VR.
constexpr std::array<VrEntry, 27> kVrTable = {{
    {"AE", {ValueKind::kText, true}},   {"AS", {ValueKind::kText, false}},
    {"CS", {ValueKind::kText, true}},   {"DA", {ValueKind::kDate, true}},
    {"DS", {ValueKind::kNumber, true}}, {"DT", {ValueKind::kDateTime, true}},
    {"FD", {ValueKind::kNumber, true}}, {"FL", {ValueKind::kNumber, true}},
    {"IS", {ValueKind::kNumber, true}}, {"LO", {ValueKind::kText, true}},
    {"LT", {ValueKind::kText, false}},  {"PN", {ValueKind::kText, true}},
    {"SH", {ValueKind::kText, true}},   {"SL", {ValueKind::kNumber, true}},
    {"SS", {ValueKind::kNumber, true}}, {"ST", {ValueKind::kText, false}},
    {"SV", {ValueKind::kNumber, true}}, {"TM", {ValueKind::kTime, true}},
    {"UC", {ValueKind::kText, false}},  {"UI", {ValueKind::kText, false}},
    {"UL", {ValueKind::kNumber, true}}, {"UR", {ValueKind::kText, false}},
    {"US", {ValueKind::kNumber, true}}, {"UT", {ValueKind::kText, false}},
    {"UV", {ValueKind::kNumber, true}}, {"SQ", {ValueKind::kOther, false}},
    {"UN", {ValueKind::kOther, false}},
}};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view text) {
  for (const char c : text) {
    if (!IsDigit(c)) {
      return false;
    }
  }
  return true;
}

// `text` holds only digits (checked by the caller) and is short enough not to overflow.
int DigitsValue(std::string_view text) {
  int value = 0;
  for (const char c : text) {
    value = value * 10 + (c - '0');
  }
  return value;
}

std::optional<std::int64_t> DaysSinceEpoch(int year, int month, int day) {
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) {
    return std::nullopt;
  }
  return std::chrono::sys_days{date}.time_since_epoch().count();
}

// ".F{1,6}" → microseconds and the number of microseconds one unit of the last digit spans.
struct Fraction {
  std::int64_t microseconds = 0;
  std::int64_t unit = kMicrosecondsPerSecond;
};

std::optional<Fraction> ParseFraction(std::string_view text) {
  if (text.empty()) {
    return Fraction{};
  }
  if (text.front() != '.') {
    return std::nullopt;
  }
  const std::string_view digits = text.substr(1);
  if (digits.empty() || digits.size() > kMaxFractionDigits || !AllDigits(digits)) {
    return std::nullopt;
  }
  Fraction fraction;
  fraction.unit = 1;
  for (std::size_t i = digits.size(); i < kMaxFractionDigits; ++i) {
    fraction.unit *= 10;
  }
  fraction.microseconds = DigitsValue(digits) * fraction.unit;
  return fraction;
}

// HH[MM[SS[.F]]] with every part two digits: the span within a day, in microseconds.
std::optional<TimeSpan> ParseCompactTime(std::string_view text) {
  const std::size_t dot = text.find('.');
  const std::string_view digits = text.substr(0, dot);
  if (digits.empty() || digits.size() > 6 || digits.size() % 2 != 0 || !AllDigits(digits)) {
    return std::nullopt;
  }
  const int hours = DigitsValue(digits.substr(0, 2));
  const int minutes = digits.size() >= 4 ? DigitsValue(digits.substr(2, 2)) : 0;
  const int seconds = digits.size() >= 6 ? DigitsValue(digits.substr(4, 2)) : 0;
  // PS3.5 Table 6.2-1: SS may be 60 for a leap second.
  if (hours > 23 || minutes > 59 || seconds > 60) {
    return std::nullopt;
  }
  std::int64_t unit = kSecondsPerHour * kMicrosecondsPerSecond;
  if (digits.size() >= 4) {
    unit = kSecondsPerMinute * kMicrosecondsPerSecond;
  }
  std::int64_t fraction = 0;
  if (dot != std::string_view::npos) {
    if (digits.size() != 6) {
      return std::nullopt;  // a fraction only follows seconds
    }
    const std::optional<Fraction> parsed = ParseFraction(text.substr(dot));
    if (!parsed) {
      return std::nullopt;
    }
    fraction = parsed->microseconds;
    unit = parsed->unit;
  } else if (digits.size() == 6) {
    unit = kMicrosecondsPerSecond;
  }
  const std::int64_t first =
      (hours * kSecondsPerHour + minutes * kSecondsPerMinute + seconds) * kMicrosecondsPerSecond +
      fraction;
  return TimeSpan{first, first + unit - 1};
}

// "HH:MM", "H:MM", "HH:MM:SS" and "HH:MM:SS.F" → the same as their compact spelling.
std::optional<TimeSpan> ParseColonTime(std::string_view text) {
  std::string compact;
  std::size_t start = 0;
  for (int part = 0; part < 3; ++part) {
    const std::size_t colon = text.find(':', start);
    std::string_view field = text.substr(
        start, colon == std::string_view::npos ? std::string_view::npos : colon - start);
    std::string_view fraction;
    if (part == 2) {
      const std::size_t dot = field.find('.');
      if (dot != std::string_view::npos) {
        fraction = field.substr(dot);
        field = field.substr(0, dot);
      }
    }
    if (field.empty() || field.size() > 2 || !AllDigits(field) || (part > 0 && field.size() != 2)) {
      return std::nullopt;
    }
    if (field.size() == 1) {
      compact += '0';
    }
    compact += field;
    compact += fraction;
    if (colon == std::string_view::npos) {
      return part == 0 ? std::nullopt : ParseCompactTime(compact);
    }
    start = colon + 1;
  }
  return std::nullopt;  // more than three parts
}

}  // namespace

VrTraits TraitsOfVr(std::string_view vr) {
  for (const VrEntry& entry : kVrTable) {
    if (entry.vr == vr) {
      return entry.traits;
    }
  }
  return VrTraits{};
}

std::string_view TrimValue(std::string_view value, VrTraits traits) {
  std::size_t end = value.size();
  while (end > 0 && (value[end - 1] == ' ' || value[end - 1] == '\0')) {
    --end;
  }
  std::size_t begin = 0;
  if (traits.trim_leading_spaces) {
    while (begin < end && value[begin] == ' ') {
      ++begin;
    }
  }
  return value.substr(begin, end - begin);
}

std::optional<double> ParseDecimal(std::string_view text) {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') {
      return std::nullopt;
    }
  }
  if (text.empty()) {
    return std::nullopt;
  }
  // from_chars reads "inf" and "nan", which no DICOM number is; a number starts with a digit,
  // a sign or a point.
  const char first = text.front() == '-' && text.size() > 1 ? text[1] : text.front();
  if (!IsDigit(first) && first != '.') {
    return std::nullopt;
  }
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<TimeSpan> ParseDate(std::string_view text) {
  std::string_view year;
  std::string_view month;
  std::string_view day;
  if (text.size() == 8) {
    year = text.substr(0, 4);
    month = text.substr(4, 2);
    day = text.substr(6, 2);
  } else if (text.size() == 10 && text[4] == text[7] && (text[4] == '.' || text[4] == '-')) {
    year = text.substr(0, 4);
    month = text.substr(5, 2);
    day = text.substr(8, 2);
  } else {
    return std::nullopt;
  }
  if (!AllDigits(year) || !AllDigits(month) || !AllDigits(day)) {
    return std::nullopt;
  }
  const std::optional<std::int64_t> days =
      DaysSinceEpoch(DigitsValue(year), DigitsValue(month), DigitsValue(day));
  if (!days) {
    return std::nullopt;
  }
  const std::int64_t first = *days * kMicrosecondsPerDay;
  return TimeSpan{first, first + kMicrosecondsPerDay - 1};
}

std::optional<TimeSpan> ParseTime(std::string_view text) {
  if (text.find(':') != std::string_view::npos) {
    return ParseColonTime(text);
  }
  return ParseCompactTime(text);
}

std::optional<TimeSpan> ParseDateTime(std::string_view text) {
  // PS3.5 Table 6.2-1: an optional &ZZXX suffix gives the offset from UTC.
  if (text.size() > 5 && (text[text.size() - 5] == '+' || text[text.size() - 5] == '-') &&
      AllDigits(text.substr(text.size() - 4))) {
    text.remove_suffix(5);
  }
  const std::size_t dot = text.find('.');
  const std::string_view digits = text.substr(0, dot);
  if (digits.size() < 4 || digits.size() > 14 || digits.size() % 2 != 0 || !AllDigits(digits)) {
    return std::nullopt;
  }
  const int year = DigitsValue(digits.substr(0, 4));
  const int month = digits.size() >= 6 ? DigitsValue(digits.substr(4, 2)) : 1;
  const int day = digits.size() >= 8 ? DigitsValue(digits.substr(6, 2)) : 1;
  const std::optional<std::int64_t> days = DaysSinceEpoch(year, month, day);
  if (!days) {
    return std::nullopt;
  }
  const std::int64_t midnight = *days * kMicrosecondsPerDay;
  if (digits.size() <= 8) {
    if (dot != std::string_view::npos) {
      return std::nullopt;
    }
    std::int64_t last = midnight + kMicrosecondsPerDay - 1;  // YYYYMMDD: the whole day
    if (digits.size() == 4) {
      last = *DaysSinceEpoch(year + 1, 1, 1) * kMicrosecondsPerDay - 1;
    } else if (digits.size() == 6) {
      const int next_year = month == 12 ? year + 1 : year;
      const int next_month = month == 12 ? 1 : month + 1;
      last = *DaysSinceEpoch(next_year, next_month, 1) * kMicrosecondsPerDay - 1;
    }
    return TimeSpan{midnight, last};
  }
  const std::optional<TimeSpan> time = ParseCompactTime(text.substr(8));
  if (!time) {
    return std::nullopt;
  }
  return TimeSpan{midnight + time->first, midnight + time->last};
}

std::optional<int> ParseClockTime(std::string_view text) {
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos || text.find('.') != std::string_view::npos) {
    return std::nullopt;
  }
  const std::optional<TimeSpan> span = ParseColonTime(text);
  if (!span) {
    return std::nullopt;
  }
  const std::int64_t seconds = span->first / kMicrosecondsPerSecond;
  if (seconds >= 86'400) {
    return std::nullopt;  // 23:59:60 is a leap second in a value, not a schedule
  }
  return static_cast<int>(seconds);
}

std::string AsciiLower(std::string_view text) {
  std::string lowered(text);
  for (char& c : lowered) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return lowered;
}

namespace {

char FoldAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// The bytes of the UTF-8 sequence starting at `position`: its lead byte and continuation bytes.
// Text that is not UTF-8 (Latin-1, say) counts byte by byte.
std::size_t CharacterLength(std::string_view text, std::size_t position) {
  std::size_t length = 1;
  while (length < 4 && position + length < text.size() &&
         (static_cast<unsigned char>(text[position + length]) & 0xC0) == 0x80) {
    ++length;
  }
  return length;
}

}  // namespace

bool EqualsFolded(std::string_view lowered, std::string_view text) {
  if (lowered.size() != text.size()) {
    return false;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (lowered[i] != FoldAscii(text[i])) {
      return false;
    }
  }
  return true;
}

bool WildcardMatch(std::string_view pattern, std::string_view text, bool fold_case) {
  // Greedy matching that falls back to the last `*`: linear for the usual patterns, at worst
  // pattern length × text length.
  constexpr std::size_t kNone = std::string_view::npos;
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star_p = kNone;
  std::size_t star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = ++p;
      star_t = t;
      continue;
    }
    if (p < pattern.size() && pattern[p] == '?') {
      ++p;
      t += CharacterLength(text, t);
      continue;
    }
    if (p < pattern.size() && pattern[p] == (fold_case ? FoldAscii(text[t]) : text[t])) {
      ++p;
      ++t;
      continue;
    }
    if (star_p == kNone) {
      return false;
    }
    p = star_p;
    star_t += CharacterLength(text, star_t);
    t = star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

namespace {

bool SameFolded(std::string_view lowered, std::string_view text, bool fold_case) {
  // lowered.size() == text.size() (checked by the callers)
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (lowered[i] != (fold_case ? FoldAscii(text[i]) : text[i])) {
      return false;
    }
  }
  return true;
}

// The first position at or after `from` where `piece` occurs in `text`, or npos.
std::size_t FindPiece(std::string_view text, std::string_view piece, std::size_t from,
                      bool fold_case) {
  if (!fold_case) {
    return text.find(piece, from);
  }
  if (piece.empty()) {
    return from <= text.size() ? from : std::string_view::npos;
  }
  if (piece.size() > text.size()) {
    return std::string_view::npos;
  }
  const char lead = piece.front();
  for (std::size_t at = from; at + piece.size() <= text.size(); ++at) {
    if (FoldAscii(text[at]) == lead &&
        SameFolded(piece.substr(1), text.substr(at + 1, piece.size() - 1), true)) {
      return at;
    }
  }
  return std::string_view::npos;
}

}  // namespace

WildcardPattern::WildcardPattern(std::string_view pattern, bool fold_case)
    : pattern_(pattern),
      fold_case_(fold_case),
      has_question_mark_(pattern.find('?') != std::string_view::npos) {
  std::size_t start = 0;
  while (true) {
    const std::size_t star = pattern.find('*', start);
    pieces_.emplace_back(pattern.substr(
        start, star == std::string_view::npos ? std::string_view::npos : star - start));
    if (star == std::string_view::npos) {
      break;
    }
    start = star + 1;
  }
}

bool WildcardPattern::Matches(std::string_view text) const { return Match(text, fold_case_); }

bool WildcardPattern::MatchesLowered(std::string_view lowered_text) const {
  return Match(lowered_text, false);
}

bool WildcardPattern::Match(std::string_view text, bool fold_case) const {
  if (has_question_mark_ || pieces_.empty()) {
    return WildcardMatch(pattern_, text, fold_case);
  }
  const std::string& first = pieces_.front();
  if (pieces_.size() == 1) {  // no '*': the whole text
    return first.size() == text.size() && SameFolded(first, text, fold_case);
  }
  const std::string& last = pieces_.back();
  if (first.size() + last.size() > text.size() ||
      !SameFolded(first, text.substr(0, first.size()), fold_case) ||
      !SameFolded(last, text.substr(text.size() - last.size()), fold_case)) {
    return false;
  }
  // The middle pieces, leftmost first, between the anchored ends: for '*' alone, taking the
  // earliest occurrence of each piece never loses a match.
  const std::string_view middle = text.substr(0, text.size() - last.size());
  std::size_t position = first.size();
  for (std::size_t i = 1; i + 1 < pieces_.size(); ++i) {
    const std::size_t found = FindPiece(middle, pieces_[i], position, fold_case);
    if (found == std::string_view::npos) {
      return false;
    }
    position = found + pieces_[i].size();
  }
  return true;
}

}  // namespace conduit::rules
