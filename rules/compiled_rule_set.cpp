// Evaluation of compiled rules. Evaluate and Explain run the same templated code: Evaluate with
// a tracer that records nothing (compiled away), Explain with one that records every condition,
// so what `explain` shows is what the daemon decides. The one difference is speed: Evaluate
// skips the rules RuleGuards proves cannot match, Explain walks them to show why.
#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rules/compiled_rules.h"

namespace conduit::rules {
namespace {

constexpr std::size_t kMaxSeenLength = 200;  // explain output stays readable for long values
constexpr int kSecondsPerDay = 86'400;

// One attribute as this evaluation has read it. Derived forms (padding removed, numbers, dates)
// are computed once, the first time a condition needs them, and shared by every later one.
struct CachedAttribute {
  bool fetched = false;
  bool blank = true;  // absent, no value, or only values that are all padding
  bool numbers_ready = false;
  ValueKind spans_kind = ValueKind::kOther;  // which parse `spans` holds; kOther: none yet
  VrTraits traits;
  std::uint32_t first = 0;  // values without padding: EvaluationState::trimmed_[first, +count)
  std::uint32_t count = 0;
  std::uint32_t numbers = 0;  // EvaluationState::numbers_[numbers, +count)
  std::uint32_t spans = 0;    // EvaluationState::spans_[spans, +count)
  std::uint32_t lowered = 0;  // EvaluationState::lowered_[lowered, +count)
  bool lowered_ready = false;
  std::optional<AttributeValues> values;
};

constexpr double kNotANumber = std::numeric_limits<double>::quiet_NaN();
constexpr TimeSpan kNotATime{1, 0};  // first > last: the value did not parse
constexpr std::size_t kExpectedValues = 64;

// What one evaluation has read so far: each attribute fetched once, local time computed once.
class EvaluationState {
 public:
  EvaluationState(const CompiledRules& rules, const AttributeSource& source,
                  const AssociationFacts& facts)
      : rules_(rules), source_(source), facts_(facts), cache_(rules.slots.size()) {
    trimmed_.reserve(kExpectedValues);
  }

  CachedAttribute& Attribute(std::size_t slot) {
    CachedAttribute& cached = cache_[slot];
    if (!cached.fetched) {
      cached.fetched = true;
      cached.values = source_.Find(rules_.slots[slot].path);
      if (cached.values) {
        // The VR the source read wins; without one (implicit VR private data) use the dictionary.
        const std::string& vr = cached.values->vr;
        cached.traits =
            vr.empty() || vr == "UN" ? rules_.slots[slot].dictionary_traits : TraitsOfVr(vr);
        // cache_ never grows, so views into its strings stay valid for the evaluation.
        cached.first = static_cast<std::uint32_t>(trimmed_.size());
        cached.count = static_cast<std::uint32_t>(cached.values->values.size());
        for (const std::string& value : cached.values->values) {
          const std::string_view trimmed = TrimValue(value, cached.traits);
          cached.blank = cached.blank && trimmed.empty();
          trimmed_.push_back(trimmed);
        }
      }
    }
    return cached;
  }

  std::span<const std::string_view> Trimmed(const CachedAttribute& attribute) const {
    return {trimmed_.data() + attribute.first, attribute.count};
  }

  // The values as numbers; NaN for a value that is not one.
  std::span<const double> Numbers(CachedAttribute& cached) {
    if (!cached.numbers_ready) {
      cached.numbers_ready = true;
      cached.numbers = static_cast<std::uint32_t>(numbers_.size());
      for (const std::string_view value : Trimmed(cached)) {
        numbers_.push_back(ParseDecimal(value).value_or(kNotANumber));
      }
    }
    return {numbers_.data() + cached.numbers, cached.count};
  }

  // The values with ASCII letters in lower case, for ignore_case wildcards.
  std::span<const std::string> Lowered(CachedAttribute& cached) {
    if (!cached.lowered_ready) {
      cached.lowered_ready = true;
      cached.lowered = static_cast<std::uint32_t>(lowered_.size());
      for (const std::string_view value : Trimmed(cached)) {
        lowered_.push_back(AsciiLower(value));
      }
    }
    return {lowered_.data() + cached.lowered, cached.count};
  }

  // The values as dates, times or date-times; kNotATime for a value that is not one.
  std::span<const TimeSpan> Spans(CachedAttribute& cached, ValueKind kind) {
    if (cached.spans_kind != kind) {
      cached.spans_kind = kind;
      cached.spans = static_cast<std::uint32_t>(spans_.size());
      for (const std::string_view value : Trimmed(cached)) {
        const std::optional<TimeSpan> span = kind == ValueKind::kDate   ? ParseDate(value)
                                             : kind == ValueKind::kTime ? ParseTime(value)
                                                                        : ParseDateTime(value);
        spans_.push_back(span.value_or(kNotATime));
      }
    }
    return {spans_.data() + cached.spans, cached.count};
  }

  const std::tm& LocalTime() {
    if (!local_time_) {
      const std::time_t seconds = std::chrono::system_clock::to_time_t(facts_.received_at);
      std::tm local{};
      localtime_r(&seconds, &local);
      local_time_ = local;
    }
    return *local_time_;
  }

  // nullopt when the router recorded no (or no valid) address: no source network matches.
  const std::optional<IpAddress>& PeerAddress() {
    if (!peer_parsed_) {
      peer_parsed_ = true;
      peer_address_ = ParseIpAddress(facts_.peer_address);
    }
    return peer_address_;
  }

  const AssociationFacts& facts() const { return facts_; }

 private:
  const CompiledRules& rules_;
  const AttributeSource& source_;
  const AssociationFacts& facts_;
  std::vector<CachedAttribute> cache_;
  std::vector<std::string_view> trimmed_;
  std::vector<double> numbers_;
  std::vector<TimeSpan> spans_;
  std::vector<std::string> lowered_;
  std::optional<std::tm> local_time_;
  bool peer_parsed_ = false;
  std::optional<IpAddress> peer_address_;
};

// DICOM values and rule constants are short: a byte loop beats calling memcmp for them.
bool SameBytes(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      return false;
    }
  }
  return true;
}

// As std::string_view::compare (bytes as unsigned char), without the call to memcmp.
int CompareBytes(std::string_view a, std::string_view b) {
  const std::size_t common = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (a[i] != b[i]) {
      return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]) ? -1 : 1;
    }
  }
  return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
}

bool TextEquals(const Constant& constant, std::string_view value, bool ignore_case) {
  return ignore_case ? EqualsFolded(constant.text, value) : SameBytes(constant.text, value);
}

bool RegexMatches(const ValueTest& test, std::string_view value) {
  // Two comparisons turn most values away before RE2 runs (see ValueTest::regex_min).
  if (test.has_regex_bounds &&
      (CompareBytes(value, test.regex_min) < 0 || CompareBytes(value, test.regex_max) > 0)) {
    return false;
  }
  return RE2::FullMatch(value, *test.regex);
}

bool InDateRange(const ValueTest& test, const TimeSpan& span) {
  if (span.first > span.last) {
    return false;  // not a date or time
  }
  if (test.wraps_midnight) {
    return span.first >= test.from || span.first <= test.to;
  }
  return span.first >= test.from && span.first <= test.to;
}

// A text value (an AE title, or an attribute value compared as text) against equals, in,
// wildcard or regex.
bool MatchText(const ValueTest& test, std::string_view value) {
  switch (test.op) {
    case ValueOperator::kEquals:
    case ValueOperator::kIn:
      return std::any_of(
          test.constants.begin(), test.constants.end(),
          [&](const Constant& constant) { return TextEquals(constant, value, test.ignore_case); });
    case ValueOperator::kWildcard:
      return test.wildcard.Matches(value);
    case ValueOperator::kRegex:
      return RegexMatches(test, value);
    default:
      return false;
  }
}

bool MatchAttribute(const ValueTest& test, CachedAttribute& attribute, EvaluationState& state) {
  switch (test.op) {
    case ValueOperator::kAbsent:
      return !attribute.values.has_value() != test.negated;
    case ValueOperator::kEmpty:
      return (attribute.values && attribute.blank) != test.negated;
    case ValueOperator::kPresent:
      return (attribute.values && !attribute.blank) != test.negated;
    default:
      break;
  }
  // An absent attribute matches only `absent`, an empty one only `empty`.
  if (!attribute.values || attribute.blank) {
    return false;
  }
  // Multi-valued attributes match when any value does.
  const std::span<const std::string_view> values = state.Trimmed(attribute);
  switch (test.op) {
    case ValueOperator::kEquals:
    case ValueOperator::kIn:
      if (attribute.traits.kind == ValueKind::kNumber) {
        // DS, IS and binary numbers compare by value ("5.0" equals 5); a value that is not a
        // number (NaN) still compares as text.
        const std::span<const double> numbers = state.Numbers(attribute);
        for (std::size_t i = 0; i < values.size(); ++i) {
          for (const Constant& constant : test.constants) {
            if (constant.number && !std::isnan(numbers[i])
                    ? numbers[i] == *constant.number
                    : TextEquals(constant, values[i], test.ignore_case)) {
              return true;
            }
          }
        }
        return false;
      }
      break;
    case ValueOperator::kNumberRange: {
      const std::span<const double> numbers = state.Numbers(attribute);
      return std::any_of(numbers.begin(), numbers.end(),
                         [&](double number) { return number >= test.min && number <= test.max; });
    }
    case ValueOperator::kDateRange: {
      const std::span<const TimeSpan> spans = state.Spans(attribute, test.range_kind);
      return std::any_of(spans.begin(), spans.end(),
                         [&](const TimeSpan& span) { return InDateRange(test, span); });
    }
    case ValueOperator::kWildcard:
      if (test.ignore_case) {
        // Lower-cased once per attribute, then plain searches for every such rule.
        const std::span<const std::string> lowered = state.Lowered(attribute);
        return std::any_of(lowered.begin(), lowered.end(), [&](const std::string& value) {
          return test.wildcard.MatchesLowered(value);
        });
      }
      break;
    default:
      break;
  }
  return std::any_of(values.begin(), values.end(),
                     [&](std::string_view value) { return MatchText(test, value); });
}

bool MatchAe(const ValueTest& test, std::string_view ae) {
  constexpr VrTraits kAeTraits{ValueKind::kText, true};
  const std::string_view value = TrimValue(ae, kAeTraits);
  return !value.empty() && MatchText(test, value);
}

int SecondsSinceMidnight(const std::tm& local) {
  return std::min(local.tm_hour * 3600 + local.tm_min * 60 + local.tm_sec, kSecondsPerDay - 1);
}

// Explain only: the value a condition looked at, as the rules file would write it.
std::string Seen(const Condition& condition, EvaluationState& state) {
  std::string seen;
  switch (condition.kind) {
    case Condition::Kind::kAll:
    case Condition::Kind::kAny:
    case Condition::Kind::kNot:
      return seen;
    case Condition::Kind::kAttribute: {
      const CachedAttribute& attribute = state.Attribute(condition.slot);
      if (!attribute.values) {
        return "<absent>";
      }
      if (attribute.blank) {
        return "<empty>";
      }
      bool first = true;
      for (const std::string_view value : state.Trimmed(attribute)) {
        if (!first) {
          seen += '\\';
        }
        first = false;
        seen += value;
      }
      break;
    }
    case Condition::Kind::kCallingAe:
      seen = state.facts().calling_ae.empty() ? "<none>" : state.facts().calling_ae;
      break;
    case Condition::Kind::kCalledAe:
      seen = state.facts().called_ae.empty() ? "<none>" : state.facts().called_ae;
      break;
    case Condition::Kind::kSource:
      seen = state.facts().peer_address.empty() ? "<none>" : state.facts().peer_address;
      break;
    case Condition::Kind::kTimeOfDay:
    case Condition::Kind::kDayOfWeek: {
      char text[32];
      const std::size_t length =
          std::strftime(text, sizeof text, "%a %H:%M:%S (local)", &state.LocalTime());
      seen.assign(text, length);
      break;
    }
  }
  if (seen.size() > kMaxSeenLength) {
    seen.resize(kMaxSeenLength);
    seen += "...";
  }
  return seen;
}

// Evaluate's tracer: nothing recorded, nothing computed.
struct NoTrace {
  static constexpr bool kRecording = false;
};

// Explain's tracer: every condition evaluated, in order, with its depth and the value seen.
struct RecordingTrace {
  static constexpr bool kRecording = true;
  std::vector<RuleTrace> rules;
};

template <typename Trace>
bool Holds(const Condition& condition, EvaluationState& state, Trace& trace, int depth) {
  std::size_t index = 0;
  if constexpr (Trace::kRecording) {
    std::vector<ConditionTrace>& conditions = trace.rules.back().conditions;
    index = conditions.size();
    conditions.push_back(ConditionTrace{depth, condition.description, "", false});
  }
  bool matched = false;
  switch (condition.kind) {
    case Condition::Kind::kAll:
      matched = true;
      for (const Condition& child : condition.children) {
        if (!Holds(child, state, trace, depth + 1)) {
          matched = false;
          break;
        }
      }
      break;
    case Condition::Kind::kAny:
      for (const Condition& child : condition.children) {
        if (Holds(child, state, trace, depth + 1)) {
          matched = true;
          break;
        }
      }
      break;
    case Condition::Kind::kNot:
      matched = !Holds(condition.children.front(), state, trace, depth + 1);
      break;
    case Condition::Kind::kAttribute:
      matched = MatchAttribute(condition.test, state.Attribute(condition.slot), state);
      break;
    case Condition::Kind::kCallingAe:
      matched = MatchAe(condition.test, state.facts().calling_ae);
      break;
    case Condition::Kind::kCalledAe:
      matched = MatchAe(condition.test, state.facts().called_ae);
      break;
    case Condition::Kind::kSource: {
      const std::optional<IpAddress>& peer = state.PeerAddress();
      matched =
          peer && std::any_of(condition.networks.begin(), condition.networks.end(),
                              [&](const IpNetwork& network) { return network.Contains(*peer); });
      break;
    }
    case Condition::Kind::kTimeOfDay: {
      const int now = SecondsSinceMidnight(state.LocalTime());
      matched = condition.from_second < condition.to_second
                    ? now >= condition.from_second && now < condition.to_second
                    : now >= condition.from_second || now < condition.to_second;
      break;
    }
    case Condition::Kind::kDayOfWeek:
      matched = (condition.days & (1U << state.LocalTime().tm_wday)) != 0;
      break;
  }
  if constexpr (Trace::kRecording) {
    ConditionTrace& traced = trace.rules.back().conditions[index];
    traced.matched = matched;
    traced.seen = Seen(condition, state);
  }
  return matched;
}

void AddRoutes(const std::vector<Route>& routes, RoutingDecision& decision) {
  for (const Route& route : routes) {
    // A destination reached by several rules gets one route: the first rule's.
    const bool already_routed = std::any_of(
        decision.routes.begin(), decision.routes.end(),
        [&](const Route& existing) { return existing.destination == route.destination; });
    if (!already_routed) {
      decision.routes.push_back(route);
    }
  }
}

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const {
    return std::hash<std::string_view>{}(text);
  }
};

// Most rules start by testing one attribute (or AE title) for equality: "Modality equals CT",
// "calling_ae in [CT1, CT2]". Such a test is a necessary condition of its rule, and one hash
// lookup of the value answers it for every rule at once: a rule whose guard fails cannot match,
// so Evaluate skips it without walking its conditions. Explain walks every rule instead, to show
// each condition; both decide the same, because a guard is only ever a condition the rule itself
// requires, compared exactly as the rule compares it.
class RuleGuards {
 public:
  explicit RuleGuards(const CompiledRules& rules) : unguarded_((rules.rules.size() + 63) / 64, 0) {
    for (std::size_t index = 0; index < rules.rules.size(); ++index) {
      const CompiledRule& rule = rules.rules[index];
      const Condition* condition = rule.when ? GuardConditionOf(*rule.when) : nullptr;
      if (condition == nullptr) {
        Set(unguarded_, index);
        continue;
      }
      Guard& guard = GuardFor(*condition);
      guard.rules.push_back(static_cast<std::uint32_t>(index));
      for (const Constant& constant : condition->test.constants) {
        std::vector<std::uint32_t>& listed = guard.rules_by_value[constant.text];
        if (listed.empty() || listed.back() != index) {
          listed.push_back(static_cast<std::uint32_t>(index));
        }
      }
    }
  }

  bool empty() const { return guards_.empty(); }

  // One bit per rule: set when the rule has no guard or its guard holds.
  std::vector<std::uint64_t> Evaluate(EvaluationState& state) const {
    std::vector<std::uint64_t> passed = unguarded_;
    for (const Guard& guard : guards_) {
      if (guard.subject == Condition::Kind::kAttribute) {
        const CachedAttribute& attribute = state.Attribute(guard.slot);
        if (!attribute.values || attribute.blank) {
          continue;  // equals and in never match an absent or empty attribute
        }
        if (attribute.traits.kind == ValueKind::kNumber) {
          // Compared by value, not text: no shortcut, every rule is evaluated in full.
          for (const std::uint32_t index : guard.rules) {
            Set(passed, index);
          }
          continue;
        }
        for (const std::string_view value : state.Trimmed(attribute)) {
          Mark(guard, value, passed);
        }
      } else {
        constexpr VrTraits kAeTraits{ValueKind::kText, true};
        const std::string& ae = guard.subject == Condition::Kind::kCallingAe
                                    ? state.facts().calling_ae
                                    : state.facts().called_ae;
        Mark(guard, TrimValue(ae, kAeTraits), passed);
      }
    }
    return passed;
  }

  static bool Passed(const std::vector<std::uint64_t>& passed, std::size_t index) {
    return (passed[index / 64] >> (index % 64) & 1U) != 0;
  }

 private:
  struct Guard {
    Condition::Kind subject = Condition::Kind::kAttribute;
    std::size_t slot = 0;
    std::vector<std::uint32_t> rules;
    std::unordered_map<std::string, std::vector<std::uint32_t>, StringHash, std::equal_to<>>
        rules_by_value;
  };

  // equals or in, compared as text and case-sensitively: what a lookup can answer.
  static bool Usable(const Condition& condition) {
    return (condition.kind == Condition::Kind::kAttribute ||
            condition.kind == Condition::Kind::kCallingAe ||
            condition.kind == Condition::Kind::kCalledAe) &&
           (condition.test.op == ValueOperator::kEquals ||
            condition.test.op == ValueOperator::kIn) &&
           !condition.test.ignore_case;
  }

  // The rule's whole condition, or one that a top-level all requires.
  static const Condition* GuardConditionOf(const Condition& when) {
    if (Usable(when)) {
      return &when;
    }
    if (when.kind == Condition::Kind::kAll) {
      for (const Condition& child : when.children) {
        if (Usable(child)) {
          return &child;
        }
      }
    }
    return nullptr;
  }

  Guard& GuardFor(const Condition& condition) {
    for (Guard& guard : guards_) {
      if (guard.subject == condition.kind &&
          (condition.kind != Condition::Kind::kAttribute || guard.slot == condition.slot)) {
        return guard;
      }
    }
    Guard& guard = guards_.emplace_back();
    guard.subject = condition.kind;
    guard.slot = condition.slot;
    return guard;
  }

  static void Set(std::vector<std::uint64_t>& passed, std::size_t index) {
    passed[index / 64] |= std::uint64_t{1} << (index % 64);
  }

  static void Mark(const Guard& guard, std::string_view value, std::vector<std::uint64_t>& passed) {
    if (value.empty()) {
      return;
    }
    const auto found = guard.rules_by_value.find(value);
    if (found == guard.rules_by_value.end()) {
      return;
    }
    for (const std::uint32_t index : found->second) {
      Set(passed, index);
    }
  }

  std::vector<Guard> guards_;
  std::vector<std::uint64_t> unguarded_;  // one bit per rule without a guard
};

template <typename Trace>
RoutingDecision Decide(const CompiledRules& rules, const RuleGuards& guards, EvaluationState& state,
                       Trace& trace) {
  RoutingDecision decision;
  bool stopped = false;
  std::vector<std::uint64_t> passed;
  if constexpr (!Trace::kRecording) {
    if (!guards.empty()) {
      passed = guards.Evaluate(state);
    }
  }
  for (std::size_t index = 0; index < rules.rules.size(); ++index) {
    const CompiledRule& rule = rules.rules[index];
    if constexpr (Trace::kRecording) {
      trace.rules.push_back(RuleTrace{rule.name, rule.line, !stopped, false, {}});
    }
    if (stopped) {
      if constexpr (Trace::kRecording) {
        continue;  // listed as not evaluated
      } else {
        break;
      }
    }
    if constexpr (!Trace::kRecording) {
      if (!passed.empty() && !RuleGuards::Passed(passed, index)) {
        continue;  // its guard failed: it cannot match
      }
    }
    const bool matched = !rule.when || Holds(*rule.when, state, trace, 0);
    if constexpr (Trace::kRecording) {
      trace.rules.back().matched = matched;
    }
    if (!matched) {
      continue;
    }
    decision.matched_rules.push_back(rule.name);
    if (rule.discard) {
      // Discard wins over whatever earlier rules routed: the instance goes nowhere.
      decision.routes.clear();
      decision.discarded = true;
      decision.discarded_by = rule.name;
      stopped = true;
      continue;
    }
    AddRoutes(rule.routes, decision);
    stopped = rule.stop;
  }
  if (decision.matched_rules.empty() && rules.default_routes) {
    decision.routes = *rules.default_routes;
    decision.used_default = true;
  }
  std::stable_sort(decision.routes.begin(), decision.routes.end(),
                   [](const Route& a, const Route& b) { return a.priority > b.priority; });
  return decision;
}

class CompiledRuleSet final : public RuleSet {
 public:
  explicit CompiledRuleSet(CompiledRules rules) : rules_(std::move(rules)), guards_(rules_) {}

  RoutingDecision Evaluate(const AttributeSource& attributes,
                           const AssociationFacts& facts) const override {
    EvaluationState state(rules_, attributes, facts);
    NoTrace trace;
    return Decide(rules_, guards_, state, trace);
  }

  Explanation Explain(const AttributeSource& attributes,
                      const AssociationFacts& facts) const override {
    EvaluationState state(rules_, attributes, facts);
    RecordingTrace trace;
    Explanation explanation;
    explanation.decision = Decide(rules_, guards_, state, trace);
    explanation.rules = std::move(trace.rules);
    return explanation;
  }

  const std::vector<std::string>& rule_names() const override { return rules_.rule_names; }

 private:
  CompiledRules rules_;
  RuleGuards guards_;
};

}  // namespace

std::shared_ptr<const RuleSet> MakeRuleSet(CompiledRules rules) {
  return std::make_shared<const CompiledRuleSet>(std::move(rules));
}

}  // namespace conduit::rules
