// Evaluation of compiled rules. Evaluate and Explain run the same templated code: Evaluate with
// a tracer that records nothing (compiled away), Explain with one that records every condition,
// so what `explain` shows is what the daemon decides.
#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
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

  const CachedAttribute& Attribute(std::size_t slot) {
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
  std::span<const double> Numbers(const CachedAttribute& attribute) {
    auto& cached = const_cast<CachedAttribute&>(attribute);  // cache_ is ours
    if (!cached.numbers_ready) {
      cached.numbers_ready = true;
      cached.numbers = static_cast<std::uint32_t>(numbers_.size());
      for (const std::string_view value : Trimmed(attribute)) {
        numbers_.push_back(ParseDecimal(value).value_or(kNotANumber));
      }
    }
    return {numbers_.data() + cached.numbers, cached.count};
  }

  // The values as dates, times or date-times; kNotATime for a value that is not one.
  std::span<const TimeSpan> Spans(const CachedAttribute& attribute, ValueKind kind) {
    auto& cached = const_cast<CachedAttribute&>(attribute);  // cache_ is ours
    if (cached.spans_kind != kind) {
      cached.spans_kind = kind;
      cached.spans = static_cast<std::uint32_t>(spans_.size());
      for (const std::string_view value : Trimmed(attribute)) {
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

bool MatchAttribute(const ValueTest& test, const CachedAttribute& attribute,
                    EvaluationState& state) {
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
            if (constant.number && !std::isnan(numbers[i]) ? numbers[i] == *constant.number
                                                           : SameBytes(constant.text, values[i])) {
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

template <typename Trace>
RoutingDecision Decide(const CompiledRules& rules, EvaluationState& state, Trace& trace) {
  RoutingDecision decision;
  bool stopped = false;
  for (const CompiledRule& rule : rules.rules) {
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
  explicit CompiledRuleSet(CompiledRules rules) : rules_(std::move(rules)) {}

  RoutingDecision Evaluate(const AttributeSource& attributes,
                           const AssociationFacts& facts) const override {
    EvaluationState state(rules_, attributes, facts);
    NoTrace trace;
    return Decide(rules_, state, trace);
  }

  Explanation Explain(const AttributeSource& attributes,
                      const AssociationFacts& facts) const override {
    EvaluationState state(rules_, attributes, facts);
    RecordingTrace trace;
    Explanation explanation;
    explanation.decision = Decide(rules_, state, trace);
    explanation.rules = std::move(trace.rules);
    return explanation;
  }

  const std::vector<std::string>& rule_names() const override { return rules_.rule_names; }

 private:
  CompiledRules rules_;
};

}  // namespace

std::shared_ptr<const RuleSet> MakeRuleSet(CompiledRules rules) {
  return std::make_shared<const CompiledRuleSet>(std::move(rules));
}

}  // namespace conduit::rules
