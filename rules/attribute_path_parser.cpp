#include "rules/attribute_path_parser.h"

#include <dcmtk/dcmdata/dcdicent.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dchashdi.h>
#include <dcmtk/dcmdata/dctagkey.h>
#include <dcmtk/dcmdata/dcvr.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <utility>

#include "rules/edit_distance.h"

namespace conduit::rules {
namespace {

// Deeper paths are almost certainly mistakes; bounding them bounds what a source must walk.
constexpr std::size_t kMaxSteps = 8;
constexpr std::size_t kMaxIndexDigits = 6;
constexpr std::size_t kMaxCreatorLength = 64;  // PS3.5 6.2: the creator is an LO
constexpr std::uint16_t kItemGroup = 0xFFFE;   // items and delimiters, not attributes

struct DictionaryEntry {
  Tag tag;
  std::string vr;  // empty when the dictionary does not say (several VRs possible)
};

// DCMTK names ambiguous VRs in lower case ("xs" is US or SS, "ox" OB or OW); map the ones whose
// values compare the same either way, and leave the rest unknown.
std::string NormalizeVr(const char* name) {
  std::string vr = name == nullptr ? "" : name;
  if (vr == "xs") {
    return "US";
  }
  if (vr == "up") {
    return "UL";
  }
  if (vr.size() == 2 && vr[0] >= 'A' && vr[0] <= 'Z' && vr[1] >= 'A' && vr[1] <= 'Z') {
    return vr;
  }
  return "";
}

bool DictionaryLoaded() {
  const DcmDataDictionary& dictionary = dcmDataDict.rdlock();
  const bool loaded = dictionary.isDictionaryLoaded();
  dcmDataDict.rdunlock();
  return loaded;
}

// DCMTK spells the keywords of retired attributes with this prefix; PS3.6 does not.
constexpr std::string_view kRetiredPrefix = "RETIRED_";

std::optional<DictionaryEntry> FindKeyword(const std::string& keyword) {
  std::optional<DictionaryEntry> found;
  const DcmDataDictionary& dictionary = dcmDataDict.rdlock();
  // Standard attributes only (DCMTK skips entries with a private creator here).
  const DcmDictEntry* entry = dictionary.findEntry(keyword.c_str());
  if (entry == nullptr) {
    entry = dictionary.findEntry((std::string(kRetiredPrefix) + keyword).c_str());
  }
  if (entry != nullptr) {
    found = DictionaryEntry{Tag{entry->getGroup(), entry->getElement()},
                            NormalizeVr(entry->getVR().getVRName())};
  }
  dcmDataDict.rdunlock();
  return found;
}

std::string WithoutRetiredPrefix(const char* name) {
  std::string_view keyword = name;
  if (keyword.starts_with(kRetiredPrefix)) {
    keyword.remove_prefix(kRetiredPrefix.size());
  }
  return std::string(keyword);
}

std::optional<DictionaryEntry> FindTag(Tag tag) {
  std::optional<DictionaryEntry> found;
  const DcmDataDictionary& dictionary = dcmDataDict.rdlock();
  if (const DcmDictEntry* entry =
          dictionary.findEntry(DcmTagKey(tag.group, tag.element), nullptr)) {
    found = DictionaryEntry{tag, NormalizeVr(entry->getVR().getVRName())};
  }
  dcmDataDict.rdunlock();
  return found;
}

// Every standard keyword, read once (needs the write lock: DCMTK iterates only a mutable
// dictionary). Only used to suggest a correction, so only on the error path.
const std::vector<std::string>& StandardKeywords() {
  static const std::vector<std::string> keywords = [] {
    std::vector<std::string> names;
    DcmDataDictionary& dictionary = dcmDataDict.wrlock();
    for (auto it = dictionary.normalBegin(); it != dictionary.normalEnd(); ++it) {
      if ((*it)->getPrivateCreator() == nullptr && (*it)->getTagName() != nullptr) {
        names.push_back(WithoutRetiredPrefix((*it)->getTagName()));
      }
    }
    for (auto it = dictionary.repeatingBegin(); it != dictionary.repeatingEnd(); ++it) {
      if ((*it)->getPrivateCreator() == nullptr && (*it)->getTagName() != nullptr) {
        names.push_back(WithoutRetiredPrefix((*it)->getTagName()));
      }
    }
    dcmDataDict.wrunlock();
    std::sort(names.begin(), names.end());
    return names;
  }();
  return keywords;
}

std::string ClosestKeyword(std::string_view keyword) {
  // Up to a third of the letters wrong, at least two: "Modalty", "patientname", "StudyDat".
  const std::size_t max_distance = std::max<std::size_t>(2, keyword.size() / 3);
  std::string closest;
  std::size_t closest_distance = max_distance + 1;
  for (const std::string& candidate : StandardKeywords()) {
    const std::size_t length_gap = candidate.size() > keyword.size()
                                       ? candidate.size() - keyword.size()
                                       : keyword.size() - candidate.size();
    if (length_gap >= closest_distance) {
      continue;
    }
    const std::size_t distance = EditDistance(keyword, candidate, /*ignore_ascii_case=*/true);
    if (distance < closest_distance) {
      closest = candidate;
      closest_distance = distance;
    }
  }
  return closest;
}

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::optional<std::uint16_t> ParseHex16(std::string_view text) {
  if (text.size() != 4 || !std::all_of(text.begin(), text.end(), IsHexDigit)) {
    return std::nullopt;
  }
  std::uint16_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return value;
}

// PS3.5 7.8.1: odd groups hold private data, except 0001, 0003, 0005, 0007 and FFFF.
bool IsPrivateGroup(std::uint16_t group) {
  return group % 2 == 1 && group > 0x0008 && group != 0xFFFF;
}

bool IsKeywordCharacter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

struct StepText {
  std::string_view name;  // keyword or tag
  std::optional<std::uint32_t> item;
};

std::variant<StepText, std::string> SplitIndex(std::string_view step) {
  StepText result;
  result.name = step;
  const std::size_t open = step.find('[');
  if (open == std::string_view::npos) {
    if (step.find(']') != std::string_view::npos) {
      return "unbalanced ']' in " + Quoted(step);
    }
    return result;
  }
  if (step.back() != ']') {
    return "an item index is written [n] at the end of a step, got " + Quoted(step);
  }
  const std::string_view digits = step.substr(open + 1, step.size() - open - 2);
  if (digits.empty() || digits.size() > kMaxIndexDigits ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "an item index must be a number from 0 to 999999, got " + Quoted(step);
  }
  std::uint32_t index = 0;
  std::from_chars(digits.data(), digits.data() + digits.size(), index);
  result.name = step.substr(0, open);
  result.item = index;
  return result;
}

struct StepResult {
  PathStep step;
  std::string vr;
  bool is_private = false;
};

std::variant<StepResult, std::string> ParseStep(std::string_view text,
                                                std::string_view private_creator) {
  std::variant<StepText, std::string> split = SplitIndex(text);
  if (const auto* error = std::get_if<std::string>(&split)) {
    return *error;
  }
  const StepText& step_text = std::get<StepText>(split);
  std::string_view name = step_text.name;
  StepResult result;
  result.step.item = step_text.item;
  if (name.empty()) {
    return std::string("empty step in the attribute path");
  }
  const bool looks_like_tag =
      name.front() == '(' || (name.size() >= 5 && name[4] == ',' && IsHexDigit(name[0]));
  if (!looks_like_tag) {
    if (!std::all_of(name.begin(), name.end(), IsKeywordCharacter) ||
        !((name[0] >= 'A' && name[0] <= 'Z') || (name[0] >= 'a' && name[0] <= 'z'))) {
      return "bad attribute " + Quoted(name) +
             ": expected a keyword such as Modality or a tag such as (0008,0060)";
    }
    const std::optional<DictionaryEntry> entry = FindKeyword(std::string(name));
    if (!entry) {
      if (!DictionaryLoaded()) {
        return "cannot look up keyword " + Quoted(name) +
               ": the DICOM data dictionary is not loaded (check DCMDICTPATH); write the tag "
               "instead, e.g. (0008,0060)";
      }
      std::string message = "unknown attribute keyword " + Quoted(name);
      if (const std::string closest = ClosestKeyword(name); !closest.empty()) {
        message += " (did you mean " + Quoted(closest) + "?)";
      }
      return message;
    }
    result.step.tag = entry->tag;
    result.vr = entry->vr;
    if (result.step.tag.group == kItemGroup) {
      return Quoted(name) + " is an item delimiter, not an attribute";
    }
    return result;
  }

  std::string_view inner = name;
  if (inner.front() == '(') {
    if (inner.back() != ')') {
      return "bad tag " + Quoted(name) + ": missing ')'";
    }
    inner = inner.substr(1, inner.size() - 2);
  }
  const std::size_t comma = inner.find(',');
  if (comma == std::string_view::npos) {
    return "bad tag " + Quoted(name) + ": expected (gggg,eeee) in hexadecimal";
  }
  const std::optional<std::uint16_t> group = ParseHex16(inner.substr(0, comma));
  if (!group) {
    return "bad tag " + Quoted(name) + ": the group must be four hexadecimal digits";
  }
  std::string_view element_text = inner.substr(comma + 1);
  const bool block_placeholder = element_text.size() == 4 &&
                                 (element_text[0] == 'x' || element_text[0] == 'X') &&
                                 (element_text[1] == 'x' || element_text[1] == 'X');
  if (block_placeholder) {
    if (!IsPrivateGroup(*group)) {
      return "bad tag " + Quoted(name) +
             ": 'xx' stands for a private block, but the group is not private (private groups "
             "are odd)";
    }
    const std::optional<std::uint16_t> low =
        ParseHex16(std::string("00") + std::string(element_text.substr(2)));
    if (!low) {
      return "bad tag " + Quoted(name) + ": the element must be xxEE with EE hexadecimal";
    }
    if (private_creator.empty()) {
      return "private tag " + Quoted(name) +
             " needs its private creator: add creator: \"NAME\" next to it";
    }
    result.step.tag = Tag{*group, *low};
    result.step.private_creator = std::string(private_creator);
    result.is_private = true;
    return result;
  }
  const std::optional<std::uint16_t> element = ParseHex16(element_text);
  if (!element) {
    return "bad tag " + Quoted(name) +
           ": the element must be four hexadecimal digits (or xxEE in a private group)";
  }
  if (*group == kItemGroup) {
    return "bad tag " + Quoted(name) + ": group FFFE holds items and delimiters, not attributes";
  }
  if (IsPrivateGroup(*group) && *element >= 0x1000) {
    // The block (the high byte) is assigned per dataset by the creator (PS3.5 7.8.1); a fixed
    // block would match whatever another creator put there.
    char placeholder[16];
    std::snprintf(placeholder, sizeof placeholder, "(%04X,xx%02X)", *group, *element & 0xFF);
    return "private tag " + Quoted(name) + ": write it as " + placeholder +
           " with creator: \"NAME\"; the block number depends on the dataset";
  }
  result.step.tag = Tag{*group, *element};
  if (!IsPrivateGroup(*group)) {
    if (const std::optional<DictionaryEntry> entry = FindTag(result.step.tag)) {
      result.vr = entry->vr;
    }
  }
  return result;
}

}  // namespace

std::variant<ParsedAttributePath, std::string> ParseAttributePath(
    std::string_view text, std::string_view private_creator) {
  if (text.empty()) {
    return std::string("empty attribute path");
  }
  if (private_creator.size() > kMaxCreatorLength ||
      private_creator.find('\\') != std::string_view::npos) {
    return "bad private creator " + Quoted(private_creator) +
           ": at most 64 characters, no backslash";
  }
  ParsedAttributePath parsed;
  bool any_private = false;
  std::size_t start = 0;
  while (true) {
    const std::size_t separator = text.find_first_of("/.", start);
    const std::string_view step_text = text.substr(
        start, separator == std::string_view::npos ? std::string_view::npos : separator - start);
    if (parsed.path.steps.size() == kMaxSteps) {
      return "attribute path " + Quoted(text) + " is deeper than " + std::to_string(kMaxSteps) +
             " steps";
    }
    std::variant<StepResult, std::string> step = ParseStep(step_text, private_creator);
    if (const auto* error = std::get_if<std::string>(&step)) {
      return *error;
    }
    StepResult& result = std::get<StepResult>(step);
    any_private = any_private || result.is_private;
    if (!parsed.path.steps.empty() && !parsed.vr.empty() && parsed.vr != "SQ") {
      return "attribute path " + Quoted(text) + ": the step before " + Quoted(step_text) +
             " is not a sequence (its VR is " + parsed.vr + ")";
    }
    parsed.path.steps.push_back(std::move(result.step));
    parsed.vr = std::move(result.vr);
    if (separator == std::string_view::npos) {
      break;
    }
    start = separator + 1;
  }
  if (parsed.path.steps.back().item) {
    return "attribute path " + Quoted(text) +
           ": an item index belongs on a sequence step, not on the last one";
  }
  if (!private_creator.empty() && !any_private) {
    return "creator " + Quoted(private_creator) + " is given but " + Quoted(text) +
           " has no private tag in (gggg,xxEE) form";
  }
  return parsed;
}

std::string FormatAttributePath(const AttributePath& path) {
  std::string text;
  for (const PathStep& step : path.steps) {
    if (!text.empty()) {
      text += '/';
    }
    char tag[16];
    if (!step.private_creator.empty()) {
      std::snprintf(tag, sizeof tag, "(%04X,xx%02X)", step.tag.group, step.tag.element & 0xFF);
    } else {
      std::snprintf(tag, sizeof tag, "(%04X,%04X)", step.tag.group, step.tag.element);
    }
    text += tag;
    if (step.item) {
      text += "[" + std::to_string(*step.item) + "]";
    }
  }
  return text;
}

std::string KeywordOfTag(Tag tag) {
  std::string keyword;
  const DcmDataDictionary& dictionary = dcmDataDict.rdlock();
  if (const DcmDictEntry* entry =
          dictionary.findEntry(DcmTagKey(tag.group, tag.element), nullptr)) {
    if (entry->getTagName() != nullptr) {
      keyword = entry->getTagName();
    }
  }
  dcmDataDict.rdunlock();
  return keyword;
}

}  // namespace conduit::rules
