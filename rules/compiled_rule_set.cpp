// Evaluation of compiled rules. Evaluate and Explain run the same templated code: Evaluate with
// a tracer that records nothing (compiled away), Explain with one that records every condition,
// so what `explain` shows is what the daemon decides.
#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rules/compiled_rules.h"

namespace conduit::rules {
namespace {

constexpr std::size_t kMaxSeenLength = 200;  // explain output stays readable for long values
constexpr int kSecondsPerDay = 86'400;

struct CachedAttribute {
  bool fetched = false;
  std::optional<AttributeValues> values;
  VrTraits traits;
  bool blank = true;  // no value, or only values that are all padding
};

// What one evaluation has read so far: each attribute fetched once, local time computed once.
class EvaluationState {
 public:
  EvaluationState(const CompiledRules& rules, const AttributeSource& source,
                  const AssociationFacts& facts)
      : rules_(rules), source_(source), facts_(facts), cache_(rules.slots.size()) {}

  const CachedAttribute& Attribute(std::size_t slot) {
    CachedAttribute& cached = cache_[slot];
    if (!cached.fetched) {
      cached.fetched = true;
      cached.values = source_.Find(rules_.slots[slot].path);
      if (cached.values) {
        // The VR the source read wins; without one (implicit VR private data) use the dictionary.
        const std::string& vr = cached.values->vr;
        cached.traits = vr.empty() || vr == "UN" ? rules_.slots[slot].dictionary_traits
                                                  : TraitsOfVr(vr);
        cached.blank = std::all_of(
            cached.values->values.begin(), cached.values->values.end(),
            [&](const std::string& value) { return TrimValue(value, cached.traits).empty(); });
      }
    }
    return cached;
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

  const AssociationFacts& facts() const { return facts_; }

 private:
  const CompiledRules& rules_;
  const AttributeSource& source_;
  const AssociationFacts& facts_;
  std::vector<CachedAttribute> cache_;
  std::optional<std::tm> local_time_;
};

// `number` is the value read as a number, or NaN when it is not one (or compares as text).
bool ConstantMatches(const Constant& constant, std::string_view value, double number,
                     bool ignore_case) {
  if (constant.number && !std::isnan(number)) {
    return number == *constant.number;
  }
  return ignore_case ? EqualsFolded(constant.text, value) : constant.text == value;
}

std::optional<TimeSpan> ParseSpan(ValueKind kind, std::string_view value) {
  switch (kind) {
    case ValueKind::kDate:
      return ParseDate(value);
    case ValueKind::kTime:
      return ParseTime(value);
    default:
      return ParseDateTime(value);
  }
}

// One value (padding removed, not blank) against a value operator.
bool MatchValue(const ValueTest& test, std::string_view value, ValueKind kind) {
  switch (test.op) {
    case ValueOperator::kEquals:
    case ValueOperator::kIn: {
      // A plain double rather than an optional: GCC 12 warns (wrongly) about optional<double>
      // captured in the lambda.
      const double number = kind == ValueKind::kNumber
                                ? ParseDecimal(value).value_or(std::numeric_limits<double>::quiet_NaN())
                                : std::numeric_limits<double>::quiet_NaN();
      return std::any_of(test.constants.begin(), test.constants.end(),
                         [&](const Constant& constant) {
                           return ConstantMatches(constant, value, number, test.ignore_case);
                         });
    }
    case ValueOperator::kWildcard:
      return WildcardMatch(test.constants.front().text, value, test.ignore_case);
    case ValueOperator::kRegex:
      return RE2::FullMatch(value, *test.regex);
    case ValueOperator::kNumberRange: {
      const std::optional<double> number = ParseDecimal(value);
      return number && *number >= test.min && *number <= test.max;
    }
    case ValueOperator::kDateRange: {
      const std::optional<TimeSpan> span = ParseSpan(test.range_kind, value);
      if (!span) {
        return false;
      }
      if (test.wraps_midnight) {
        return span->first >= test.from || span->first <= test.to;
      }
      return span->first >= test.from && span->first <= test.to;
    }
    case ValueOperator::kPresent:
    case ValueOperator::kAbsent:
    case ValueOperator::kEmpty:
      break;
  }
  return false;
}

bool MatchAttribute(const ValueTest& test, const CachedAttribute& attribute) {
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
  return std::any_of(attribute.values->values.begin(), attribute.values->values.end(),
                     [&](const std::string& raw) {
                       return MatchValue(test, TrimValue(raw, attribute.traits),
                                         attribute.traits.kind);
                     });
}

bool MatchAe(const ValueTest& test, std::string_view ae) {
  constexpr VrTraits kAeTraits{ValueKind::kText, true};
  const std::string_view value = TrimValue(ae, kAeTraits);
  return !value.empty() && MatchValue(test, value, ValueKind::kText);
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
      for (std::size_t i = 0; i < attribute.values->values.size(); ++i) {
        if (i != 0) {
          seen += '\\';
        }
        seen += TrimValue(attribute.values->values[i], attribute.traits);
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
      matched = MatchAttribute(condition.test, state.Attribute(condition.slot));
      break;
    case Condition::Kind::kCallingAe:
      matched = MatchAe(condition.test, state.facts().calling_ae);
      break;
    case Condition::Kind::kCalledAe:
      matched = MatchAe(condition.test, state.facts().called_ae);
      break;
    case Condition::Kind::kSource:
      matched = std::any_of(condition.networks.begin(), condition.networks.end(),
                            [&](const Cidr& network) {
                              return network.Contains(state.facts().peer_address);
                            });
      break;
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
    const bool already_routed =
        std::any_of(decision.routes.begin(), decision.routes.end(),
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
