// The rules file after loading: every path parsed, regex compiled, number and date read and
// constant lower-cased, so that evaluating an instance only reads its values. Built by the loader
// (rules_loader.cpp), run by CompiledRuleSet (compiled_rule_set.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rules/attribute_source.h"
#include "rules/dicom_value.h"
#include "rules/ip_network.h"
#include "rules/rule_set.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace conduit::rules {

// One attribute the rules read. Conditions on the same path share a slot, so each attribute is
// fetched from the source at most once per evaluation.
struct AttributeSlot {
  AttributePath path;
  std::string text;            // as first written in the rules file
  VrTraits dictionary_traits;  // used when the source reports no VR or UN
};

// A constant as written, with the padding its VR ignores removed and, for ignore_case,
// lower-cased; `number` when it reads as a number (DS, IS and binary numbers compare by value).
struct Constant {
  std::string text;
  std::optional<double> number;
};

enum class ValueOperator : std::uint8_t {
  kEquals,
  kIn,
  kWildcard,
  kRegex,
  kNumberRange,
  kDateRange,  // DA, TM, DT values: `range_kind` says which
  kPresent,    // has at least one non-empty value
  kAbsent,     // not in the dataset
  kEmpty,      // in the dataset with no value (or only blank ones)
};

// Hot fields first: evaluation walks every rule's conditions for each instance.
struct ValueTest {
  ValueOperator op = ValueOperator::kEquals;
  bool ignore_case = false;
  bool negated = false;         // present/absent/empty: false
  bool wraps_midnight = false;  // TM ranges with from later than to
  bool has_regex_bounds = false;
  ValueKind range_kind = ValueKind::kDate;  // kDateRange: kDate, kTime or kDateTime
  std::vector<Constant> constants;          // equals: one; in: several
  WildcardPattern wildcard;                 // kWildcard
  std::shared_ptr<const re2::RE2> regex;    // kRegex
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  std::int64_t from = std::numeric_limits<std::int64_t>::min();  // µs, see TimeSpan
  std::int64_t to = std::numeric_limits<std::int64_t>::max();
  // kRegex: every value the regex can match lies in [regex_min, regex_max] (RE2's
  // PossibleMatchRange), so most values are turned away by two comparisons, without RE2.
  std::string regex_min;
  std::string regex_max;
};

struct Condition {
  enum class Kind : std::uint8_t {
    kAll,
    kAny,
    kNot,
    kAttribute,
    kCallingAe,
    kCalledAe,
    kSource,
    kTimeOfDay,
    kDayOfWeek,
  };
  Kind kind = Kind::kAll;
  std::uint8_t days = 0;  // kDayOfWeek: bit 0 Sunday … bit 6 Saturday (struct tm's tm_wday)
  int from_second = 0;    // kTimeOfDay: [from, to) in seconds since local midnight; may wrap
  int to_second = 0;
  std::size_t slot = 0;  // kAttribute
  ValueTest test;        // kAttribute, kCallingAe, kCalledAe
  std::vector<Condition> children;
  std::vector<IpNetwork> networks;  // kSource
  std::string description;          // for explain: "Modality equals CT"
};

struct CompiledRule {
  std::string name;
  int line = 0;
  std::optional<Condition> when;  // nullopt: always
  std::vector<Route> routes;
  bool stop = false;
  bool discard = false;
};

struct CompiledRules {
  std::vector<AttributeSlot> slots;
  std::vector<CompiledRule> rules;
  std::optional<std::vector<Route>> default_routes;
  std::vector<std::string> rule_names;
};

// The RuleSet over compiled rules.
std::shared_ptr<const RuleSet> MakeRuleSet(CompiledRules rules);

}  // namespace conduit::rules
