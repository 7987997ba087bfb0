// LoadRulesText / LoadRulesFile: the rules file (YAML) read, validated and compiled. Every
// mistake is reported at once, each with the line and column it is on; nothing is half-loaded.
// The grammar is documented in docs/rules.md.
#include <re2/re2.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "rules/attribute_path_parser.h"
#include "rules/compiled_rules.h"
#include "rules/dicom_value.h"
#include "rules/edit_distance.h"
#include "rules/rule_set.h"
#include "rules/yaml_document.h"

namespace conduit::rules {

std::string Diagnostic::ToString() const {
  if (line == 0) {
    return file + ": " + message;
  }
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

constexpr std::string_view kSupportedVersion = "1";
// all/any/not nesting; deeper is unreadable, and the bound keeps recursion (and explain
// indentation) small whatever the file holds.
constexpr int kMaxConditionDepth = 16;
// YAML aliases can make a small file describe a huge tree ("billion laughs"); stop reading once
// this many nodes have been visited (a 2,000-rule file visits about 40,000).
constexpr std::size_t kMaxVisitedNodes = 250'000;
constexpr std::uintmax_t kMaxFileBytes = 16U << 20;
constexpr std::int64_t kDefaultQuietPeriodSeconds = 60;
constexpr std::int64_t kMaxQuietPeriodSeconds = std::int64_t{7} * 86'400;
constexpr std::int64_t kMaxPriority = 1'000'000;
constexpr std::size_t kMaxRuleNameLength = 128;
constexpr std::size_t kMaxAeTitleLength = 16;  // PS3.5 6.2, VR AE

using Keys = std::span<const std::string_view>;

constexpr auto kTopLevelKeys = std::to_array<std::string_view>({"version", "default", "rules"});
constexpr auto kRuleKeys = std::to_array<std::string_view>(
    {"name", "when", "route", "discard", "level", "quiet_period_seconds", "stop"});
constexpr auto kDefaultKeys =
    std::to_array<std::string_view>({"route", "level", "quiet_period_seconds"});
constexpr auto kRouteKeys =
    std::to_array<std::string_view>({"destination", "priority", "transcode", "edits"});
constexpr auto kConditionKinds =
    std::to_array<std::string_view>({"all", "any", "not", "attribute", "calling_ae", "called_ae",
                                     "source", "time_of_day", "day_of_week"});
constexpr auto kValueOperators = std::to_array<std::string_view>(
    {"equals", "in", "wildcard", "regex", "range", "present", "absent", "empty"});
// Every key a condition mapping may hold, whatever its kind (for "did you mean").
constexpr auto kConditionKeys = std::to_array<std::string_view>(
    {"all", "any", "not", "attribute", "calling_ae", "called_ae", "source", "time_of_day",
     "day_of_week", "equals", "in", "wildcard", "regex", "range", "present", "absent", "empty",
     "creator", "ignore_case"});
constexpr auto kAeKeys =
    std::to_array<std::string_view>({"equals", "in", "wildcard", "regex", "ignore_case"});
constexpr auto kAeOperators =
    std::to_array<std::string_view>({"equals", "in", "wildcard", "regex"});
constexpr auto kRangeKeys = std::to_array<std::string_view>({"min", "max", "from", "to"});
constexpr auto kTimeOfDayKeys = std::to_array<std::string_view>({"from", "to"});
constexpr auto kEditKinds =
    std::to_array<std::string_view>({"set", "delete", "prefix", "suffix", "copy", "replace"});
constexpr auto kSetKeys = std::to_array<std::string_view>({"attribute", "value", "creator"});
constexpr auto kDeleteKeys = std::to_array<std::string_view>({"attribute", "creator"});
constexpr auto kCopyKeys = std::to_array<std::string_view>({"from", "to", "creator"});
constexpr auto kReplaceKeys =
    std::to_array<std::string_view>({"attribute", "regex", "with", "creator"});
// struct tm's tm_wday order: Sunday is 0.
constexpr auto kDayNames =
    std::to_array<std::string_view>({"sun", "mon", "tue", "wed", "thu", "fri", "sat"});
constexpr auto kFullDayNames = std::to_array<std::string_view>(
    {"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"});

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

template <typename Strings>
std::string Join(const Strings& names, std::string_view separator = ", ") {
  std::string joined;
  for (const auto& name : names) {
    if (!joined.empty()) {
      joined += separator;
    }
    joined += name;
  }
  return joined;
}

bool Contains(Keys keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

template <typename Strings>
std::optional<std::string> Closest(std::string_view name, const Strings& candidates) {
  const std::size_t max_typos = name.size() <= 4 ? 1 : 2;
  std::optional<std::string> closest;
  std::size_t closest_distance = max_typos + 1;
  for (const auto& candidate : candidates) {
    const std::size_t distance = EditDistance(name, candidate);
    if (distance < closest_distance) {
      closest = std::string(candidate);
      closest_distance = distance;
    }
  }
  return closest;
}

std::string_view Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// A value in a mapping with where it is. A value left empty has no useful mark of its own
// (yaml-cpp points at the next token), so it takes its key's.
struct Field {
  std::string key;
  YAML::Node value;
  YAML::Mark key_mark;
  YAML::Mark mark;
};
using Fields = std::vector<Field>;

YAML::Mark MarkOf(const YAML::Node& node, const YAML::Mark& fallback) {
  return node.IsNull() || node.Mark().is_null() ? fallback : node.Mark();
}

const Field* Find(const Fields& fields, std::string_view key) {
  for (const Field& field : fields) {
    if (field.key == key) {
      return &field;
    }
  }
  return nullptr;
}

// The fields of `fields` whose keys are in `keys`, in file order.
std::vector<const Field*> FindAll(const Fields& fields, Keys keys) {
  std::vector<const Field*> found;
  for (const Field& field : fields) {
    if (Contains(keys, field.key)) {
      found.push_back(&field);
    }
  }
  return found;
}

std::string OperatorDescription(std::string_view op) {
  if (op == "wildcard") {
    return "matches wildcard";
  }
  if (op == "regex") {
    return "matches regex";
  }
  return std::string(op);
}

class RulesReader {
 public:
  RulesReader(std::string_view source_name, const RuleContext& context)
      : source_name_(source_name), context_(context) {}

  void AddError(const YAML::Mark& mark, std::string message) {
    Diagnostic diagnostic;
    diagnostic.file = source_name_;
    diagnostic.line = mark.is_null() ? 1 : mark.line + 1;
    diagnostic.column = mark.is_null() ? 1 : mark.column + 1;
    diagnostic.message = std::move(message);
    errors_.push_back(std::move(diagnostic));
  }

  // In file order, whatever order the checks ran in.
  std::vector<Diagnostic> TakeErrors() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::tie(a.line, a.column) < std::tie(b.line, b.column);
    });
    return std::move(errors_);
  }

  CompiledRules Read(const YAML::Node& document) {
    CompiledRules compiled;
    const YAML::Mark start;  // line 1, column 1
    if (document.IsNull()) {
      AddError(start, "version is missing: a rules file starts with 'version: 1'");
      return compiled;
    }
    const std::optional<Fields> top =
        OpenMapping(document, start, kTopLevelKeys, "at the top level");
    if (!top) {
      return compiled;
    }
    if (const Field* version = Find(*top, "version")) {
      if (!version->value.IsScalar() || version->value.Scalar() != kSupportedVersion) {
        AddError(version->mark,
                 "unsupported version " +
                     (version->value.IsScalar() ? Quoted(version->value.Scalar())
                                                : std::string(Describe(version->value))) +
                     "; this Conduit reads version 1");
      }
    } else {
      AddError(MarkOf(document, start),
               "version is missing: a rules file starts with 'version: 1'");
    }
    if (const Field* rules = Find(*top, "rules")) {
      ReadRules(*rules, compiled);
    }
    if (const Field* fallback = Find(*top, "default")) {
      compiled.default_routes = ReadDefault(*fallback);
    }
    compiled.slots = std::move(slots_);
    return compiled;
  }

 private:
  // False once the node budget is spent (reported once).
  bool Visit(const YAML::Mark& mark) {
    if (++visited_ <= kMaxVisitedNodes) {
      return true;
    }
    if (!budget_reported_) {
      budget_reported_ = true;
      AddError(mark, "the rules file is too large (over " + std::to_string(kMaxVisitedNodes) +
                         " YAML nodes once aliases are expanded)");
    }
    return false;
  }

  // The keys of a mapping, each known, none twice; nullopt (with an error) when `node` is not a
  // mapping.
  std::optional<Fields> OpenMapping(const YAML::Node& node, const YAML::Mark& mark, Keys allowed,
                                    std::string_view where) {
    if (!node.IsMap()) {
      AddError(MarkOf(node, mark), "expected a mapping of keys " + std::string(where) + ", got " +
                                       std::string(Describe(node)));
      return std::nullopt;
    }
    Fields fields;
    for (auto it = node.begin(); it != node.end(); ++it) {
      // Copies: `it->` returns a temporary proxy, which a reference would outlive.
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      if (!Visit(key.Mark())) {
        return std::nullopt;
      }
      if (!key.IsScalar()) {
        AddError(MarkOf(key, mark), "a key must be a plain name, got " +
                                        std::string(Describe(key)) + " " + std::string(where));
        continue;
      }
      const std::string& name = key.Scalar();
      if (!Contains(allowed, name)) {
        std::string message = "unknown key " + Quoted(name) + " " + std::string(where);
        if (const auto suggestion = Closest(name, allowed)) {
          message += " (did you mean " + Quoted(*suggestion) + "?)";
        }
        message += "; allowed keys: " + Join(allowed);
        AddError(key.Mark(), message);
        continue;
      }
      if (const Field* first = Find(fields, name)) {
        // yaml-cpp keeps both entries; which one wins would otherwise be a silent surprise.
        AddError(key.Mark(), "duplicate key " + Quoted(name) + "; it is already set on line " +
                                 std::to_string(first->key_mark.line + 1));
        continue;
      }
      fields.push_back(Field{name, value, key.Mark(), MarkOf(value, key.Mark())});
    }
    return fields;
  }

  std::optional<std::string> ReadScalar(const Field& field, std::string_view expected) {
    if (!field.value.IsScalar()) {
      AddError(field.mark, field.key + ": expected " + std::string(expected) + ", got " +
                               std::string(Describe(field.value)));
      return std::nullopt;
    }
    return field.value.Scalar();
  }

  // A scalar that says something: not empty.
  std::optional<std::string> ReadText(const Field& field, std::string_view expected) {
    std::optional<std::string> text = ReadScalar(field, expected);
    if (text && text->empty()) {
      AddError(field.mark, field.key + ": expected " + std::string(expected) + ", got ''");
      return std::nullopt;
    }
    return text;
  }

  std::optional<bool> ReadBool(const Field& field) {
    const std::optional<std::string> text = ReadScalar(field, "true or false");
    if (!text) {
      return std::nullopt;
    }
    if (*text == "true" || *text == "True" || *text == "TRUE") {
      return true;
    }
    if (*text == "false" || *text == "False" || *text == "FALSE") {
      return false;
    }
    AddError(field.mark, field.key + ": expected true or false, got " + Quoted(*text));
    return std::nullopt;
  }

  std::optional<std::int64_t> ReadInteger(const Field& field, std::int64_t min, std::int64_t max) {
    const std::optional<std::string> text = ReadScalar(field, "a whole number");
    if (!text) {
      return std::nullopt;
    }
    std::int64_t value = 0;
    const char* begin = text->data();
    const char* end = text->data() + text->size();
    const auto [parsed_end, error] = std::from_chars(begin, end, value);
    if (text->empty() || error != std::errc() || parsed_end != end) {
      AddError(field.mark, field.key + ": expected a whole number, got " + Quoted(*text));
      return std::nullopt;
    }
    if (value < min || value > max) {
      AddError(field.mark, field.key + ": " + *text + " is out of range; use " +
                               std::to_string(min) + " to " + std::to_string(max));
      return std::nullopt;
    }
    return value;
  }

  // The items of a list; one scalar or mapping counts as a list of one when `single_allowed`.
  std::optional<std::vector<YAML::Node>> ReadList(const Field& field, std::string_view expected,
                                                  bool single_allowed = false) {
    std::vector<YAML::Node> items;
    if (single_allowed && field.value.IsScalar()) {
      items.push_back(field.value);
      return items;
    }
    if (!field.value.IsSequence()) {
      AddError(field.mark, field.key + ": expected " + std::string(expected) + ", got " +
                               std::string(Describe(field.value)));
      return std::nullopt;
    }
    for (auto it = field.value.begin(); it != field.value.end(); ++it) {
      if (!Visit(field.mark)) {
        return std::nullopt;
      }
      items.push_back(*it);
    }
    if (items.empty()) {
      AddError(field.mark, field.key + ": the list is empty; give at least one item");
      return std::nullopt;
    }
    return items;
  }

  // ---- rules ----

  void ReadRules(const Field& field, CompiledRules& compiled) {
    if (field.value.IsNull()) {
      return;  // "rules:" with every rule commented out
    }
    if (!field.value.IsSequence()) {
      AddError(field.mark, "rules: expected a list of rules (each starting with '- name:'), got " +
                               std::string(Describe(field.value)));
      return;
    }
    std::map<std::string, int, std::less<>> first_lines;
    for (auto it = field.value.begin(); it != field.value.end(); ++it) {
      const YAML::Node node = *it;
      if (!Visit(field.mark)) {
        return;
      }
      std::optional<CompiledRule> rule = ReadRule(node, MarkOf(node, field.mark), first_lines);
      if (rule) {
        compiled.rule_names.push_back(rule->name);
        compiled.rules.push_back(std::move(*rule));
      }
    }
  }

  std::optional<CompiledRule> ReadRule(const YAML::Node& node, const YAML::Mark& mark,
                                       std::map<std::string, int, std::less<>>& first_lines) {
    const std::optional<Fields> fields = OpenMapping(node, mark, kRuleKeys, "in a rule");
    if (!fields) {
      return std::nullopt;
    }
    CompiledRule rule;
    rule.line = mark.line + 1;
    bool ok = true;

    if (const Field* name = Find(*fields, "name")) {
      if (std::optional<std::string> text = ReadText(*name, "a rule name")) {
        if (const std::string problem = RuleNameProblem(*text); !problem.empty()) {
          AddError(name->mark, "name: " + problem);
          ok = false;
        } else if (const auto [first, inserted] =
                       first_lines.try_emplace(*text, name->mark.line + 1);
                   !inserted) {
          AddError(name->mark, "duplicate rule name " + Quoted(*text) +
                                   "; it is already used on line " + std::to_string(first->second));
          ok = false;
        }
        rule.name = std::move(*text);
      } else {
        ok = false;
      }
    } else {
      AddError(mark, "a rule needs a name: (unique, used in logs, metrics and explain)");
      ok = false;
    }
    const std::string who = rule.name.empty() ? "this rule" : "rule " + Quoted(rule.name);

    if (const Field* when = Find(*fields, "when")) {
      rule.when = ReadWhen(*when);
      ok = ok && rule.when.has_value();
    }

    const Field* route = Find(*fields, "route");
    const Field* discard = Find(*fields, "discard");
    const Field* level = Find(*fields, "level");
    const Field* quiet = Find(*fields, "quiet_period_seconds");
    if (discard) {
      const std::optional<bool> value = ReadBool(*discard);
      ok = ok && value.has_value();
      rule.discard = value.value_or(false);
    }
    if (rule.discard) {
      // Discard implies stop: nothing after it can route the instance.
      rule.stop = true;
      if (route) {
        AddError(route->key_mark, who +
                                      " has both route: and discard: true; a rule either routes "
                                      "or discards");
        ok = false;
      }
      for (const Field* field : {level, quiet}) {
        if (field) {
          AddError(field->key_mark, field->key + " has no effect on a rule that discards");
          ok = false;
        }
      }
    } else if (!route) {
      AddError(mark, who +
                         " has neither route: nor discard: true; say where matching instances "
                         "go, or discard them");
      ok = false;
    }

    if (const Field* stop = Find(*fields, "stop")) {
      const std::optional<bool> value = ReadBool(*stop);
      ok = ok && value.has_value();
      rule.stop = rule.stop || value.value_or(false);
    }

    if (route && !rule.discard) {
      std::optional<std::vector<Route>> routes = ReadRouteSection(*route, level, quiet, rule.name);
      ok = ok && routes.has_value();
      if (routes) {
        rule.routes = std::move(*routes);
      }
    }
    if (!ok) {
      return std::nullopt;
    }
    return rule;
  }

  static std::string RuleNameProblem(std::string_view name) {
    if (name == "default") {
      return "'default' is reserved for the default route; choose another name";
    }
    if (name.size() > kMaxRuleNameLength) {
      return "a rule name has at most " + std::to_string(kMaxRuleNameLength) + " characters";
    }
    for (const char c : name) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
        return "a rule name cannot hold control characters";
      }
    }
    return "";
  }

  std::optional<std::vector<Route>> ReadDefault(const Field& field) {
    const std::optional<Fields> fields =
        OpenMapping(field.value, field.mark, kDefaultKeys, "in 'default'");
    if (!fields) {
      return std::nullopt;
    }
    const Field* route = Find(*fields, "route");
    if (!route) {
      AddError(field.mark, "default: needs route: (where instances that no rule matched go)");
      return std::nullopt;
    }
    return ReadRouteSection(*route, Find(*fields, "level"), Find(*fields, "quiet_period_seconds"),
                            "default");
  }

  // route: plus the level and quiet period that apply to each of its destinations.
  std::optional<std::vector<Route>> ReadRouteSection(const Field& route, const Field* level_field,
                                                     const Field* quiet_field,
                                                     const std::string& rule_name) {
    bool ok = true;
    RoutingLevel level = RoutingLevel::kInstance;
    if (level_field) {
      if (const std::optional<std::string> text = ReadScalar(*level_field, "a level")) {
        if (*text == "instance") {
          level = RoutingLevel::kInstance;
        } else if (*text == "series") {
          level = RoutingLevel::kSeries;
        } else if (*text == "study") {
          level = RoutingLevel::kStudy;
        } else {
          AddError(level_field->mark,
                   "level: unknown level " + Quoted(*text) + "; use instance, series or study");
          ok = false;
        }
      } else {
        ok = false;
      }
    }
    std::chrono::seconds quiet_period{
        level == RoutingLevel::kInstance ? 0 : kDefaultQuietPeriodSeconds};
    if (quiet_field) {
      if (level == RoutingLevel::kInstance) {
        AddError(quiet_field->key_mark,
                 "quiet_period_seconds applies only with level: series or level: study");
        ok = false;
      } else if (const auto seconds = ReadInteger(*quiet_field, 0, kMaxQuietPeriodSeconds)) {
        quiet_period = std::chrono::seconds(*seconds);
      } else {
        ok = false;
      }
    }

    std::optional<std::vector<YAML::Node>> items =
        ReadList(route, "a list of destinations, e.g. [PACS] or [{destination: PACS}]");
    if (!items) {
      return std::nullopt;
    }
    std::vector<Route> routes;
    std::map<std::string, int, std::less<>> listed;
    for (const YAML::Node& item : *items) {
      const YAML::Mark mark = MarkOf(item, route.mark);
      std::optional<Route> parsed = ReadRoute(item, mark);
      if (!parsed) {
        ok = false;
        continue;
      }
      if (const auto [first, inserted] = listed.try_emplace(parsed->destination, mark.line + 1);
          !inserted) {
        AddError(mark, "destination " + Quoted(parsed->destination) +
                           " is listed twice in this route (first on line " +
                           std::to_string(first->second) + ")");
        ok = false;
        continue;
      }
      parsed->level = level;
      parsed->quiet_period = quiet_period;
      parsed->rule = rule_name;
      routes.push_back(std::move(*parsed));
    }
    if (!ok) {
      return std::nullopt;
    }
    return routes;
  }

  std::optional<Route> ReadRoute(const YAML::Node& item, const YAML::Mark& mark) {
    Route route;
    if (item.IsScalar()) {
      const Field field{"route", item, mark, mark};
      if (!CheckDestination(field, item.Scalar())) {
        return std::nullopt;
      }
      route.destination = item.Scalar();
      return route;
    }
    if (!item.IsMap()) {
      AddError(mark, "a route is a destination name or a mapping with destination:, got " +
                         std::string(Describe(item)));
      return std::nullopt;
    }
    const std::optional<Fields> fields = OpenMapping(item, mark, kRouteKeys, "in a route");
    if (!fields) {
      return std::nullopt;
    }
    bool ok = true;
    if (const Field* destination = Find(*fields, "destination")) {
      const std::optional<std::string> name = ReadText(*destination, "a destination name");
      ok = name && CheckDestination(*destination, *name);
      route.destination = name.value_or("");
    } else {
      AddError(mark, "a route needs destination:");
      ok = false;
    }
    if (const Field* priority = Find(*fields, "priority")) {
      const std::optional<std::int64_t> value = ReadInteger(*priority, -kMaxPriority, kMaxPriority);
      ok = ok && value.has_value();
      route.priority = static_cast<int>(value.value_or(0));
    }
    if (const Field* transcode = Find(*fields, "transcode")) {
      const std::optional<std::string> profile = ReadText(*transcode, "a transcode profile name");
      ok = profile && CheckTranscodeProfile(*transcode, *profile) && ok;
      route.transcode_profile = profile.value_or("");
    }
    if (const Field* edits = Find(*fields, "edits")) {
      std::optional<std::vector<TagEdit>> parsed = ReadEdits(*edits);
      ok = ok && parsed.has_value();
      if (parsed) {
        route.edits = std::move(*parsed);
      }
    }
    if (!ok) {
      return std::nullopt;
    }
    return route;
  }

  bool CheckKnownName(const Field& field, const std::string& name,
                      const std::set<std::string>& known, std::string_view what,
                      std::string_view plural) {
    if (known.count(name) != 0) {
      return true;
    }
    std::string message = "unknown " + std::string(what) + " " + Quoted(name);
    if (known.empty()) {
      message += "; no " + std::string(plural) + " are configured";
    } else {
      if (const auto suggestion = Closest(name, known)) {
        message += " (did you mean " + Quoted(*suggestion) + "?)";
      }
      message += "; known " + std::string(plural) + ": " + Join(known);
    }
    AddError(field.mark, message);
    return false;
  }

  bool CheckDestination(const Field& field, const std::string& name) {
    return CheckKnownName(field, name, context_.destinations, "destination", "destinations");
  }

  bool CheckTranscodeProfile(const Field& field, const std::string& name) {
    return CheckKnownName(field, name, context_.transcode_profiles, "transcode profile",
                          "transcode profiles");
  }

  // ---- edits ----

  std::optional<std::vector<TagEdit>> ReadEdits(const Field& field) {
    if (!field.value.IsSequence()) {
      AddError(field.mark,
               "edits: expected a list of edits such as '- delete: {attribute: "
               "PatientName}', got " +
                   std::string(Describe(field.value)));
      return std::nullopt;
    }
    std::vector<TagEdit> edits;
    bool ok = true;
    for (auto it = field.value.begin(); it != field.value.end(); ++it) {
      const YAML::Node item = *it;
      if (!Visit(field.mark)) {
        return std::nullopt;
      }
      std::optional<TagEdit> edit = ReadEdit(item, MarkOf(item, field.mark));
      ok = ok && edit.has_value();
      if (edit) {
        edits.push_back(std::move(*edit));
      }
    }
    if (!ok) {
      return std::nullopt;
    }
    return edits;
  }

  std::optional<TagEdit> ReadEdit(const YAML::Node& item, const YAML::Mark& mark) {
    const std::size_t errors_before = errors_.size();
    const std::optional<Fields> outer = OpenMapping(item, mark, kEditKinds, "in an edit");
    if (!outer) {
      return std::nullopt;
    }
    if (outer->size() != 1) {
      if (outer->empty()) {
        if (errors_.size() != errors_before) {
          return std::nullopt;  // the misspelt kind was reported, with its suggestion
        }
        AddError(mark, "an edit is one of: " + Join(kEditKinds));
      } else {
        AddError((*outer)[1].key_mark, "one edit per list item: " + Quoted((*outer)[0].key) +
                                           " and " + Quoted((*outer)[1].key) +
                                           " are both here; start each with '-'");
      }
      return std::nullopt;
    }
    const Field& kind_field = outer->front();
    const std::string& kind = kind_field.key;
    TagEdit edit;
    Keys keys = kSetKeys;
    if (kind == "set") {
      edit.kind = TagEdit::Kind::kSet;
    } else if (kind == "prefix") {
      edit.kind = TagEdit::Kind::kPrefix;
    } else if (kind == "suffix") {
      edit.kind = TagEdit::Kind::kSuffix;
    } else if (kind == "delete") {
      edit.kind = TagEdit::Kind::kDelete;
      keys = kDeleteKeys;
    } else if (kind == "copy") {
      edit.kind = TagEdit::Kind::kCopy;
      keys = kCopyKeys;
    } else {
      edit.kind = TagEdit::Kind::kRegexReplace;
      keys = kReplaceKeys;
    }
    const std::optional<Fields> fields =
        OpenMapping(kind_field.value, kind_field.mark, keys, "in a " + kind + " edit");
    if (!fields) {
      return std::nullopt;
    }
    bool ok = true;
    const auto required = [&](std::string_view key) -> const Field* {
      const Field* field = Find(*fields, key);
      if (!field) {
        AddError(kind_field.mark, kind + " needs " + std::string(key) + ":");
        ok = false;
      }
      return field;
    };
    std::string creator;
    if (const Field* creator_field = Find(*fields, "creator")) {
      const std::optional<std::string> text = ReadText(*creator_field, "a private creator");
      ok = ok && text.has_value();
      creator = text.value_or("");
    }
    const Field* target = required(edit.kind == TagEdit::Kind::kCopy ? "to" : "attribute");
    const Field* source = edit.kind == TagEdit::Kind::kCopy ? required("from") : nullptr;
    // A copy may go between a private and a standard attribute: the creator belongs to whichever
    // path has a private (gggg,xxEE) step.
    std::string target_creator = creator;
    std::string source_creator = creator;
    if (edit.kind == TagEdit::Kind::kCopy && !creator.empty() && target && source) {
      const bool target_private = HasPrivatePlaceholder(target->value);
      const bool source_private = HasPrivatePlaceholder(source->value);
      if (target_private || source_private) {
        target_creator = target_private ? creator : "";
        source_creator = source_private ? creator : "";
      }
    }
    if (target) {
      ok = ReadEditPath(*target, target_creator, edit.kind != TagEdit::Kind::kDelete, edit.target,
                        edit.target_text) &&
           ok;
    }
    if (source) {
      ok = ReadEditPath(*source, source_creator, false, edit.source, edit.source_text) && ok;
    }
    if (edit.kind == TagEdit::Kind::kSet || edit.kind == TagEdit::Kind::kPrefix ||
        edit.kind == TagEdit::Kind::kSuffix) {
      if (const Field* value = required("value")) {
        const std::optional<std::string> text = ReadScalar(*value, "a value");
        if (!text) {
          ok = false;
        } else if (edit.kind != TagEdit::Kind::kSet &&
                   (text->empty() || text->find('\\') != std::string::npos)) {
          AddError(value->mark, kind +
                                    " value: give some text, without a backslash (which "
                                    "separates values)");
          ok = false;
        } else {
          edit.value = *text;
        }
      }
    }
    if (edit.kind == TagEdit::Kind::kRegexReplace) {
      if (const Field* regex = required("regex")) {
        if (const std::optional<std::string> pattern = ReadText(*regex, "a regular expression")) {
          edit.pattern = *pattern;
          edit.compiled_pattern = CompileRegex(*regex, *pattern, false);
          ok = ok && edit.compiled_pattern != nullptr;
        } else {
          ok = false;
        }
      }
      if (const Field* with = required("with")) {
        if (const std::optional<std::string> replacement =
                ReadScalar(*with, "the replacement text (\"\" removes the match)")) {
          edit.replacement = *replacement;
          std::string problem;
          if (edit.compiled_pattern &&
              !edit.compiled_pattern->CheckRewriteString(edit.replacement, &problem)) {
            AddError(with->mark, "with: " + problem);
            ok = false;
          }
        } else {
          ok = false;
        }
      }
    }
    if (!ok) {
      return std::nullopt;
    }
    return edit;
  }

  // Paths repeat (Modality in most rules); the dictionary lookup behind a keyword is a scan.
  const std::variant<ParsedAttributePath, std::string>& ParsePath(const std::string& text,
                                                                  const std::string& creator) {
    auto [entry, inserted] = parsed_paths_.try_emplace(std::make_pair(text, creator));
    if (inserted) {
      entry->second = ParseAttributePath(text, creator);
    }
    return entry->second;
  }

  static bool HasPrivatePlaceholder(const YAML::Node& path) {
    if (!path.IsScalar()) {
      return false;
    }
    const std::string lowered = AsciiLower(path.Scalar());
    return lowered.find(",xx") != std::string::npos;
  }

  // An edit's attribute. Where the edit stores a value (`writes`: every edit but delete, and not
  // the copy source) the path must not end on a sequence, and must name one item of each sequence
  // it goes through: the value read back and rewritten must come from the item it is written to.
  bool ReadEditPath(const Field& field, const std::string& creator, bool writes,
                    AttributePath& path, std::string& text) {
    const std::optional<std::string> written = ReadText(field, "an attribute");
    if (!written) {
      return false;
    }
    const std::variant<ParsedAttributePath, std::string>& parsed = ParsePath(*written, creator);
    if (const auto* error = std::get_if<std::string>(&parsed)) {
      AddError(field.mark, field.key + ": " + *error);
      return false;
    }
    ParsedAttributePath result = std::get<ParsedAttributePath>(parsed);
    if (writes && result.vr == "SQ") {
      AddError(field.mark, field.key + ": " + Quoted(*written) +
                               " is a sequence; only delete applies to a whole sequence");
      return false;
    }
    if (writes) {
      for (std::size_t i = 0; i + 1 < result.path.steps.size(); ++i) {
        if (!result.path.steps[i].item) {
          AddError(field.mark, field.key + ": " + Quoted(*written) +
                                   " goes through a sequence without an item index; write "
                                   "e.g. Sequence[0]/Attribute (only delete applies to every "
                                   "item)");
          return false;
        }
      }
    }
    path = std::move(result.path);
    text = *written;
    return true;
  }

  std::shared_ptr<const re2::RE2> CompileRegex(const Field& field, const std::string& pattern,
                                               bool ignore_case) {
    RE2::Options options;
    options.set_log_errors(false);
    options.set_case_sensitive(!ignore_case);
    auto regex = std::make_shared<const RE2>(pattern, options);
    if (!regex->ok()) {
      AddError(field.mark, field.key + ": bad regex " + Quoted(pattern) + ": " + regex->error());
      return nullptr;
    }
    return regex;
  }

  // ---- conditions ----

  std::optional<Condition> ReadWhen(const Field& field) {
    if (field.value.IsSequence()) {
      return ReadConditionList(field, Condition::Kind::kAll, "all of", 0);
    }
    if (field.value.IsMap()) {
      return ReadCondition(field.value, field.mark, 0);
    }
    AddError(field.mark,
             "when: expected a condition (a mapping such as {attribute: Modality, "
             "equals: CT}) or a list of them, got " +
                 std::string(Describe(field.value)));
    return std::nullopt;
  }

  std::optional<Condition> ReadConditionList(const Field& field, Condition::Kind kind,
                                             std::string description, int depth) {
    if (depth > kMaxConditionDepth) {
      AddError(field.mark, "conditions are nested deeper than " +
                               std::to_string(kMaxConditionDepth) + " levels");
      return std::nullopt;
    }
    const std::optional<std::vector<YAML::Node>> items = ReadList(field, "a list of conditions");
    if (!items) {
      return std::nullopt;
    }
    Condition condition;
    condition.kind = kind;
    condition.description = std::move(description);
    bool ok = true;
    for (const YAML::Node& item : *items) {
      std::optional<Condition> child = ReadCondition(item, MarkOf(item, field.mark), depth + 1);
      if (child) {
        condition.children.push_back(std::move(*child));
      } else {
        ok = false;
      }
    }
    if (!ok) {
      return std::nullopt;
    }
    return condition;
  }

  std::optional<Condition> ReadCondition(const YAML::Node& node, const YAML::Mark& mark,
                                         int depth) {
    if (depth > kMaxConditionDepth) {
      AddError(mark, "conditions are nested deeper than " + std::to_string(kMaxConditionDepth) +
                         " levels");
      return std::nullopt;
    }
    if (!Visit(mark)) {
      return std::nullopt;
    }
    const std::size_t errors_before = errors_.size();
    const std::optional<Fields> fields = OpenMapping(node, mark, kConditionKeys, "in a condition");
    if (!fields) {
      return std::nullopt;
    }
    const std::vector<const Field*> kinds = FindAll(*fields, kConditionKinds);
    if (kinds.empty()) {
      // A misspelt kind ("atribute") was just reported with a suggestion; say no more.
      if (errors_.size() == errors_before) {
        const std::vector<const Field*> operators = FindAll(*fields, kValueOperators);
        if (!operators.empty()) {
          AddError(mark, Quoted(operators.front()->key) +
                             " needs the attribute it tests: add attribute: (or write "
                             "calling_ae: {" +
                             operators.front()->key + ": ...})");
        } else {
          AddError(mark, "a condition needs one of: " + Join(kConditionKinds));
        }
      }
      return std::nullopt;
    }
    if (kinds.size() > 1) {
      AddError(kinds[1]->key_mark, "one condition per mapping: " + Quoted(kinds[0]->key) + " and " +
                                       Quoted(kinds[1]->key) +
                                       " are both here; combine them under all: or any:");
      return std::nullopt;
    }
    const Field& kind = *kinds.front();
    if (kind.key != "attribute") {
      bool ok = true;
      for (const Field& field : *fields) {
        if (&field != &kind) {
          AddError(field.key_mark, Quoted(field.key) + " does not belong in a " + kind.key +
                                       " condition" + MisplacedHint(kind.key, field.key));
          ok = false;
        }
      }
      if (!ok) {
        return std::nullopt;
      }
    }
    if (kind.key == "all") {
      return ReadConditionList(kind, Condition::Kind::kAll, "all of", depth);
    }
    if (kind.key == "any") {
      return ReadConditionList(kind, Condition::Kind::kAny, "any of", depth);
    }
    if (kind.key == "not") {
      return ReadNot(kind, depth);
    }
    if (kind.key == "attribute") {
      return ReadAttributeCondition(*fields, kind, mark, errors_.size() != errors_before);
    }
    if (kind.key == "calling_ae" || kind.key == "called_ae") {
      return ReadAeCondition(kind);
    }
    if (kind.key == "source") {
      return ReadSource(kind);
    }
    if (kind.key == "time_of_day") {
      return ReadTimeOfDay(kind);
    }
    return ReadDayOfWeek(kind);
  }

  static std::string MisplacedHint(const std::string& kind, const std::string& key) {
    if ((kind == "calling_ae" || kind == "called_ae") && Contains(kAeOperators, key)) {
      return "; write " + kind + ": {" + key + ": ...}";
    }
    return "; one condition per mapping, combine them under all: or any:";
  }

  std::optional<Condition> ReadNot(const Field& field, int depth) {
    std::optional<Condition> child;
    if (field.value.IsSequence()) {
      child = ReadConditionList(field, Condition::Kind::kAll, "all of", depth + 1);
    } else {
      child = ReadCondition(field.value, field.mark, depth + 1);
    }
    if (!child) {
      return std::nullopt;
    }
    Condition condition;
    condition.kind = Condition::Kind::kNot;
    condition.description = "not";
    condition.children.push_back(std::move(*child));
    return condition;
  }

  std::size_t SlotFor(const AttributePath& path, const std::string& text, const std::string& vr) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].path == path) {
        return i;
      }
    }
    slots_.push_back(AttributeSlot{path, text, TraitsOfVr(vr)});
    return slots_.size() - 1;
  }

  // `had_key_errors`: the mapping had unknown keys, already reported (a misspelt operator).
  std::optional<Condition> ReadAttributeCondition(const Fields& fields, const Field& attribute,
                                                  const YAML::Mark& mark, bool had_key_errors) {
    bool ok = true;
    std::string creator;
    if (const Field* creator_field = Find(fields, "creator")) {
      const std::optional<std::string> text = ReadText(*creator_field, "a private creator");
      ok = text.has_value();
      creator = text.value_or("");
    }
    const std::optional<std::string> path_text = ReadText(attribute, "an attribute");
    std::optional<ParsedAttributePath> path;
    if (path_text) {
      const std::variant<ParsedAttributePath, std::string>& parsed = ParsePath(*path_text, creator);
      if (const auto* error = std::get_if<std::string>(&parsed)) {
        AddError(attribute.mark, "attribute: " + *error);
      } else {
        path = std::get<ParsedAttributePath>(parsed);
      }
    }
    ok = ok && path.has_value();

    const std::vector<const Field*> operators = FindAll(fields, kValueOperators);
    if (operators.empty()) {
      if (!had_key_errors) {
        AddError(mark, "the condition on " + Quoted(path_text.value_or("attribute")) +
                           " needs one of: " + Join(kValueOperators));
      }
      return std::nullopt;
    }
    if (operators.size() > 1) {
      AddError(operators[1]->key_mark, "one operator per condition: " + Quoted(operators[0]->key) +
                                           " and " + Quoted(operators[1]->key) +
                                           " are both here; combine conditions under all: or any:");
      return std::nullopt;
    }
    const Field& op = *operators.front();
    bool ignore_case = false;
    if (const Field* ignore = Find(fields, "ignore_case")) {
      const std::optional<bool> value = ReadBool(*ignore);
      ok = ok && value.has_value();
      ignore_case = value.value_or(false);
      if (!Contains(kAeOperators, op.key)) {
        AddError(ignore->key_mark,
                 "ignore_case applies to equals, in, wildcard and regex, not to " + op.key);
        ok = false;
      }
    }
    const std::string vr = path ? path->vr : "";
    const std::string subject = path_text.value_or("");
    std::optional<ValueTest> test = ReadValueTest(op, subject, vr, ignore_case, false);
    if (!ok || !test) {
      return std::nullopt;
    }
    Condition condition;
    condition.kind = Condition::Kind::kAttribute;
    condition.slot = SlotFor(path->path, *path_text, vr);
    condition.test = std::move(*test);
    condition.description = subject + " " + DescribeTest(op, condition.test, ignore_case);
    return condition;
  }

  static std::string DescribeTest(const Field& op, const ValueTest& test, bool ignore_case) {
    std::string text;
    switch (test.op) {
      case ValueOperator::kPresent:
      case ValueOperator::kAbsent:
      case ValueOperator::kEmpty:
        return (test.negated ? "is not " : "is ") + op.key;
      case ValueOperator::kNumberRange:
      case ValueOperator::kDateRange:
        text = "in range " + DescribeRange(op.value);
        break;
      case ValueOperator::kIn:
        text = "in [" + Join(ScalarTexts(op.value)) + "]";
        break;
      default:
        text = OperatorDescription(op.key) + " " + op.value.Scalar();
        break;
    }
    if (ignore_case) {
      text += " (ignoring case)";
    }
    return text;
  }

  static std::vector<std::string> ScalarTexts(const YAML::Node& list) {
    std::vector<std::string> texts;
    for (auto it = list.begin(); it != list.end(); ++it) {
      texts.push_back(it->IsScalar() ? it->Scalar() : "?");
    }
    return texts;
  }

  static std::string DescribeRange(const YAML::Node& range) {
    std::string low;
    std::string high;
    for (auto it = range.begin(); it != range.end(); ++it) {
      const std::string key = it->first.Scalar();
      (key == "min" || key == "from" ? low : high) = it->second.Scalar();
    }
    if (high.empty()) {
      return "from " + low;
    }
    if (low.empty()) {
      return "up to " + high;
    }
    return low + " to " + high;
  }

  // equals / in / wildcard / regex / range / present / absent / empty on an attribute of
  // dictionary VR `vr` ("" when unknown), or on an AE title (`is_ae`).
  std::optional<ValueTest> ReadValueTest(const Field& op, const std::string& subject,
                                         const std::string& vr, bool ignore_case, bool is_ae) {
    const VrTraits traits = is_ae ? VrTraits{ValueKind::kText, true} : TraitsOfVr(vr);
    ValueTest test;
    test.ignore_case = ignore_case;
    if (op.key == "equals" || op.key == "in") {
      test.op = op.key == "equals" ? ValueOperator::kEquals : ValueOperator::kIn;
      std::vector<YAML::Node> values;
      if (op.key == "equals") {
        if (!op.value.IsScalar()) {
          AddError(op.mark, "equals: expected one value, got " + std::string(Describe(op.value)) +
                                (op.value.IsSequence() ? "; use in: for a list" : ""));
          return std::nullopt;
        }
        values.push_back(op.value);
      } else {
        std::optional<std::vector<YAML::Node>> items =
            ReadList(op, "a list of values such as [CT, MR]");
        if (!items) {
          return std::nullopt;
        }
        values = std::move(*items);
      }
      bool ok = true;
      for (const YAML::Node& value : values) {
        std::optional<Constant> constant = ReadConstant(value, MarkOf(value, op.mark), op.key,
                                                        subject, vr, traits, ignore_case, is_ae);
        if (constant) {
          test.constants.push_back(std::move(*constant));
        } else {
          ok = false;
        }
      }
      return ok ? std::optional<ValueTest>(std::move(test)) : std::nullopt;
    }
    if (op.key == "wildcard") {
      test.op = ValueOperator::kWildcard;
      const std::optional<std::string> pattern = ReadText(op, "a pattern with * and ?");
      if (!pattern) {
        return std::nullopt;
      }
      const std::string_view trimmed = TrimValue(*pattern, VrTraits{ValueKind::kText, false});
      if (trimmed.empty()) {
        AddError(op.mark, "wildcard: the pattern is blank");
        return std::nullopt;
      }
      test.wildcard =
          WildcardPattern(ignore_case ? AsciiLower(trimmed) : std::string(trimmed), ignore_case);
      return test;
    }
    if (op.key == "regex") {
      test.op = ValueOperator::kRegex;
      const std::optional<std::string> pattern = ReadText(op, "a regular expression");
      if (!pattern) {
        return std::nullopt;
      }
      test.regex = CompileRegex(op, *pattern, ignore_case);
      if (!test.regex) {
        return std::nullopt;
      }
      // An empty max is ambiguous in RE2 (nothing, or no upper bound): no prefilter then.
      constexpr int kBoundLength = 16;
      test.has_regex_bounds =
          test.regex->PossibleMatchRange(&test.regex_min, &test.regex_max, kBoundLength) &&
          !test.regex_max.empty();
      return test;
    }
    if (op.key == "range") {
      return ReadRange(op, subject, vr, test);
    }
    // present / absent / empty
    const std::optional<bool> value = ReadBool(op);
    if (!value) {
      return std::nullopt;
    }
    test.op = op.key == "present"  ? ValueOperator::kPresent
              : op.key == "absent" ? ValueOperator::kAbsent
                                   : ValueOperator::kEmpty;
    test.negated = !*value;
    return test;
  }

  std::optional<Constant> ReadConstant(const YAML::Node& node, const YAML::Mark& mark,
                                       const std::string& op, const std::string& subject,
                                       const std::string& vr, VrTraits traits, bool ignore_case,
                                       bool is_ae) {
    if (!node.IsScalar()) {
      AddError(mark, op + ": expected a value, got " + std::string(Describe(node)));
      return std::nullopt;
    }
    const std::string& written = node.Scalar();
    const std::string_view trimmed = TrimValue(written, traits);
    if (trimmed.empty()) {
      AddError(mark, op + ": an empty value never matches (empty attributes match only "
                          "'empty: true')");
      return std::nullopt;
    }
    if (trimmed.find('\\') != std::string_view::npos && vr != "LT" && vr != "ST" && vr != "UT") {
      AddError(mark, op + ": " + Quoted(written) +
                         " holds a backslash, which separates values; list the values with in:");
      return std::nullopt;
    }
    if (is_ae && trimmed.size() > kMaxAeTitleLength) {
      AddError(mark, op + ": " + Quoted(written) + " is not an AE title (at most 16 characters)");
      return std::nullopt;
    }
    // Kept whenever the constant reads as a number; whether it is compared as one depends on
    // the VR of the value seen (a private tag's VR is known only then).
    Constant constant;
    constant.number = ParseDecimal(trimmed);
    if (traits.kind == ValueKind::kNumber && !constant.number) {
      AddError(mark, op + ": " + Quoted(written) + " is not a number, and " + subject + " (VR " +
                         vr + ") compares as a number");
      return std::nullopt;
    }
    constant.text = ignore_case ? AsciiLower(trimmed) : std::string(trimmed);
    return constant;
  }

  std::optional<ValueTest> ReadRange(const Field& op, const std::string& subject,
                                     const std::string& vr, ValueTest& test) {
    const std::optional<Fields> fields = OpenMapping(op.value, op.mark, kRangeKeys, "in range");
    if (!fields) {
      return std::nullopt;
    }
    const Field* min = Find(*fields, "min");
    const Field* max = Find(*fields, "max");
    const Field* from = Find(*fields, "from");
    const Field* to = Find(*fields, "to");
    const ValueKind kind = TraitsOfVr(vr).kind;
    const bool numeric = min || max;
    const bool temporal = from || to;
    if (!numeric && !temporal) {
      AddError(op.mark,
               "range: give min: and/or max: (numbers), or from: and/or to: (dates and "
               "times)");
      return std::nullopt;
    }
    if (numeric && temporal) {
      AddError((from ? from : to)->key_mark,
               "range: min/max are for numbers, from/to for dates and times; not both");
      return std::nullopt;
    }
    const bool is_date_vr =
        kind == ValueKind::kDate || kind == ValueKind::kTime || kind == ValueKind::kDateTime;
    if (numeric) {
      if (is_date_vr) {
        AddError(op.mark, "range: " + subject + " has VR " + vr +
                              ", compared as a date or time: write range: {from: ..., to: ...}");
        return std::nullopt;
      }
      if (kind == ValueKind::kText) {
        AddError(op.mark, "range: " + subject + " has VR " + vr +
                              ", which is text, not a number, date or time");
        return std::nullopt;
      }
      return ReadNumberRange(op, min, max, test);
    }
    if (kind == ValueKind::kNumber) {
      AddError(op.mark, "range: " + subject + " has VR " + vr +
                            ", a number: write range: {min: ..., max: ...}");
      return std::nullopt;
    }
    if (kind == ValueKind::kText) {
      AddError(op.mark, "range: " + subject + " has VR " + vr +
                            ", which is text, not a number, date or time");
      return std::nullopt;
    }
    return ReadDateRange(op, from, to, kind, test);
  }

  std::optional<ValueTest> ReadNumberRange(const Field& op, const Field* min, const Field* max,
                                           ValueTest& test) {
    test.op = ValueOperator::kNumberRange;
    bool ok = true;
    const auto read = [&](const Field* field, double& target) {
      if (!field) {
        return;
      }
      const std::optional<std::string> text = ReadText(*field, "a number");
      const std::optional<double> value =
          text ? ParseDecimal(TrimValue(*text, VrTraits{ValueKind::kNumber, true})) : std::nullopt;
      if (!value) {
        if (text) {
          AddError(field->mark, field->key + ": " + Quoted(*text) + " is not a number");
        }
        ok = false;
        return;
      }
      target = *value;
    };
    read(min, test.min);
    read(max, test.max);
    if (ok && test.min > test.max) {
      AddError(op.mark, "impossible range: min " + min->value.Scalar() + " is greater than max " +
                            max->value.Scalar());
      ok = false;
    }
    return ok ? std::optional<ValueTest>(std::move(test)) : std::nullopt;
  }

  std::optional<ValueTest> ReadDateRange(const Field& op, const Field* from, const Field* to,
                                         ValueKind kind, ValueTest& test) {
    test.op = ValueOperator::kDateRange;
    bool ok = true;
    // Without a dictionary VR (private tags), the bounds say what they are.
    if (kind != ValueKind::kDate && kind != ValueKind::kTime && kind != ValueKind::kDateTime) {
      kind = ValueKind::kDateTime;
      const auto looks_like = [&](auto parse) {
        return (!from || !from->value.IsScalar() || parse(from->value.Scalar())) &&
               (!to || !to->value.IsScalar() || parse(to->value.Scalar()));
      };
      if (looks_like([](const std::string& text) { return ParseDate(text).has_value(); })) {
        kind = ValueKind::kDate;
      } else if (looks_like([](const std::string& text) { return ParseTime(text).has_value(); })) {
        kind = ValueKind::kTime;
      }
    }
    test.range_kind = kind;
    const char* expected = kind == ValueKind::kDate ? "a date YYYYMMDD"
                           : kind == ValueKind::kTime
                               ? "a time HHMM, HHMMSS or HH:MM"
                               : "a date-time YYYYMMDDHHMMSS (shorter is fine: YYYYMMDD)";
    std::optional<TimeSpan> low;
    std::optional<TimeSpan> high;
    const auto read = [&](const Field* field, std::optional<TimeSpan>& target) {
      if (!field) {
        return;
      }
      const std::optional<std::string> text = ReadText(*field, expected);
      if (!text) {
        ok = false;
        return;
      }
      target = kind == ValueKind::kDate   ? ParseDate(*text)
               : kind == ValueKind::kTime ? ParseTime(*text)
                                          : ParseDateTime(*text);
      if (!target) {
        AddError(field->mark, field->key + ": " + Quoted(*text) + " is not " + expected);
        ok = false;
      }
    };
    read(from, low);
    read(to, high);
    if (!ok) {
      return std::nullopt;
    }
    if (low) {
      test.from = low->first;
    }
    if (high) {
      test.to = high->last;  // "to: 20241231" includes the whole day
    }
    if (low && high && low->first > high->last) {
      if (kind == ValueKind::kTime) {
        test.wraps_midnight = true;  // {from: "2200", to: "0600"}: the night
      } else {
        AddError(op.mark, "impossible range: from " + from->value.Scalar() + " is after to " +
                              to->value.Scalar());
        return std::nullopt;
      }
    }
    return std::move(test);
  }

  std::optional<Condition> ReadAeCondition(const Field& field) {
    const bool calling = field.key == "calling_ae";
    const std::string subject = calling ? "calling AE" : "called AE";
    Condition condition;
    condition.kind = calling ? Condition::Kind::kCallingAe : Condition::Kind::kCalledAe;
    if (field.value.IsScalar()) {
      const Field equals{"equals", field.value, field.key_mark, field.mark};
      std::optional<ValueTest> test = ReadValueTest(equals, subject, "AE", false, true);
      if (!test) {
        return std::nullopt;
      }
      condition.test = std::move(*test);
      condition.description = subject + " equals " + field.value.Scalar();
      return condition;
    }
    const std::optional<Fields> fields =
        OpenMapping(field.value, field.mark, kAeKeys, "in " + field.key);
    if (!fields) {
      return std::nullopt;
    }
    const std::vector<const Field*> operators = FindAll(*fields, kAeOperators);
    if (operators.size() != 1) {
      AddError(operators.empty() ? field.mark : operators[1]->key_mark,
               field.key + ": give exactly one of equals, in, wildcard, regex");
      return std::nullopt;
    }
    bool ignore_case = false;
    if (const Field* ignore = Find(*fields, "ignore_case")) {
      const std::optional<bool> value = ReadBool(*ignore);
      if (!value) {
        return std::nullopt;
      }
      ignore_case = *value;
    }
    std::optional<ValueTest> test =
        ReadValueTest(*operators.front(), subject, "AE", ignore_case, true);
    if (!test) {
      return std::nullopt;
    }
    condition.test = std::move(*test);
    condition.description =
        subject + " " + DescribeTest(*operators.front(), condition.test, ignore_case);
    return condition;
  }

  std::optional<Condition> ReadSource(const Field& field) {
    const std::optional<std::vector<YAML::Node>> items =
        ReadList(field, "a list of networks such as [10.0.0.0/8, fd00::/8]", true);
    if (!items) {
      return std::nullopt;
    }
    Condition condition;
    condition.kind = Condition::Kind::kSource;
    bool ok = true;
    std::vector<std::string> texts;
    for (const YAML::Node& item : *items) {
      const YAML::Mark mark = MarkOf(item, field.mark);
      if (!item.IsScalar()) {
        AddError(mark, "source: expected a network such as 10.0.0.0/8, got " +
                           std::string(Describe(item)));
        ok = false;
        continue;
      }
      std::optional<Cidr> network = Cidr::Parse(item.Scalar());
      if (!network) {
        AddError(mark, "source: bad network " + Quoted(item.Scalar()) +
                           "; expected an IPv4 or IPv6 address or network such as 10.0.0.0/8, "
                           "192.168.1.7 or fd00::/8, with no bits set after the prefix");
        ok = false;
        continue;
      }
      texts.push_back(item.Scalar());
      condition.networks.push_back(IpNetwork::Of(*network));
    }
    if (!ok) {
      return std::nullopt;
    }
    condition.description = "source address in [" + Join(texts) + "]";
    return condition;
  }

  std::optional<Condition> ReadTimeOfDay(const Field& field) {
    const std::optional<Fields> fields =
        OpenMapping(field.value, field.mark, kTimeOfDayKeys, "in time_of_day");
    if (!fields) {
      return std::nullopt;
    }
    Condition condition;
    condition.kind = Condition::Kind::kTimeOfDay;
    bool ok = true;
    std::string texts[2];
    int seconds[2] = {0, 0};
    for (int i = 0; i < 2; ++i) {
      const std::string_view key = i == 0 ? "from" : "to";
      const Field* bound = Find(*fields, key);
      if (!bound) {
        AddError(field.mark, "time_of_day needs " + std::string(key) + ": (HH:MM)");
        ok = false;
        continue;
      }
      const std::optional<std::string> text = ReadText(*bound, "a time HH:MM");
      const std::optional<int> parsed = text ? ParseClockTime(*text) : std::nullopt;
      if (!parsed) {
        if (text) {
          AddError(bound->mark, std::string(key) + ": bad time " + Quoted(*text) +
                                    "; expected HH:MM or HH:MM:SS from 00:00 to 23:59:59");
        }
        ok = false;
        continue;
      }
      texts[i] = *text;
      seconds[i] = *parsed;
    }
    if (ok && seconds[0] == seconds[1]) {
      AddError(field.mark,
               "time_of_day: from and to are the same time; the window would be "
               "empty (leave time_of_day out to match the whole day)");
      ok = false;
    }
    if (!ok) {
      return std::nullopt;
    }
    condition.from_second = seconds[0];
    condition.to_second = seconds[1];
    condition.description = "time of day from " + texts[0] + " to " + texts[1];
    return condition;
  }

  std::optional<Condition> ReadDayOfWeek(const Field& field) {
    const std::optional<std::vector<YAML::Node>> items =
        ReadList(field, "a list of days such as [sat, sun]", true);
    if (!items) {
      return std::nullopt;
    }
    Condition condition;
    condition.kind = Condition::Kind::kDayOfWeek;
    bool ok = true;
    std::vector<std::string> names;
    for (const YAML::Node& item : *items) {
      const YAML::Mark mark = MarkOf(item, field.mark);
      const std::string name = item.IsScalar() ? AsciiLower(item.Scalar()) : "";
      std::size_t day = kDayNames.size();
      for (std::size_t i = 0; i < kDayNames.size(); ++i) {
        if (name == kDayNames[i] || name == kFullDayNames[i]) {
          day = i;
        }
      }
      if (day == kDayNames.size()) {
        AddError(mark, "day_of_week: bad day " +
                           (item.IsScalar() ? Quoted(item.Scalar()) : std::string(Describe(item))) +
                           "; use mon, tue, wed, thu, fri, sat, sun");
        ok = false;
        continue;
      }
      condition.days = static_cast<std::uint8_t>(condition.days | (1U << day));
      names.emplace_back(kDayNames[day]);
    }
    if (!ok) {
      return std::nullopt;
    }
    condition.description = "day of week in [" + Join(names) + "]";
    return condition;
  }

  std::string source_name_;
  const RuleContext& context_;
  std::vector<Diagnostic> errors_;
  std::vector<AttributeSlot> slots_;
  std::map<std::pair<std::string, std::string>, std::variant<ParsedAttributePath, std::string>>
      parsed_paths_;
  std::size_t visited_ = 0;
  bool budget_reported_ = false;
};

}  // namespace

RuleSetResult LoadRulesText(std::string_view yaml_text, std::string_view source_name,
                            const RuleContext& context) {
  RulesReader reader(source_name, context);
  try {
    const std::string text(yaml_text);
    const YAML::Node document = YAML::Load(text);
    if (const std::optional<YAML::Mark> second = SecondDocumentMark(text)) {
      reader.AddError(*second,
                      "the file must hold one YAML document; remove the '---' separator and "
                      "merge what follows into the first");
    }
    CompiledRules compiled = reader.Read(document);
    std::vector<Diagnostic> errors = reader.TakeErrors();
    if (!errors.empty()) {
      return errors;
    }
    return MakeRuleSet(std::move(compiled));
  } catch (const YAML::ParserException& error) {
    RulesReader syntax(source_name, context);
    syntax.AddError(error.mark, "YAML syntax error: " + error.msg);
    return syntax.TakeErrors();
  } catch (const YAML::Exception& error) {
    // A safety net: the reader checks node types before every access, so yaml-cpp has nothing
    // to refuse; if it does, the file is reported rather than the process ended.
    RulesReader failure(source_name, context);
    failure.AddError(error.mark, "cannot read the rules: " + error.msg);
    return failure.TakeErrors();
  }
}

RuleSetResult LoadRulesFile(const std::filesystem::path& path, const RuleContext& context) {
  const auto file_error = [&](std::string message) {
    return std::vector<Diagnostic>{Diagnostic{path.string(), 0, 0, std::move(message)}};
  };
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return file_error("cannot read the rules: it is a directory");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return file_error("cannot read the rules: " + std::string(std::strerror(errno)));
  }
  std::string contents;
  char buffer[65536];
  while (file.read(buffer, sizeof buffer) || file.gcount() > 0) {
    contents.append(buffer, static_cast<std::size_t>(file.gcount()));
    if (contents.size() > kMaxFileBytes) {
      return file_error("cannot read the rules: the file is larger than 16 MiB");
    }
  }
  if (file.bad()) {
    return file_error("cannot read the rules: " + std::string(std::strerror(errno)));
  }
  return LoadRulesText(contents, path.string(), context);
}

}  // namespace conduit::rules
