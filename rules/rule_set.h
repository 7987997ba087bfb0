// The routing rules: loaded from YAML, validated completely, compiled once, then evaluated
// for every instance (pure: attributes and association facts in, a routing decision out).
// `Explain` runs the same evaluation and records why each rule did or did not match.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "rules/association_facts.h"
#include "rules/attribute_source.h"

namespace re2 {
class RE2;  // compiled once at load; the router need not include RE2 to hold a TagEdit
}  // namespace re2

namespace conduit::rules {

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 for the file as a whole
  int column = 0;  // 1-based
  std::string message;
  std::string ToString() const;  // "file:line:column: message"
};

// What the rules may refer to, from the router's configuration.
struct RuleContext {
  std::set<std::string> destinations;        // names of configured destinations
  std::set<std::string> transcode_profiles;  // names of configured transcode profiles
};

enum class RoutingLevel { kInstance, kSeries, kStudy };

struct TagEdit {
  enum class Kind { kSet, kDelete, kPrefix, kSuffix, kCopy, kRegexReplace };
  Kind kind = Kind::kSet;
  AttributePath target;
  std::string target_text;  // as written in the rules file, for logs and explain
  std::string value;        // kSet, kPrefix, kSuffix
  AttributePath source;     // kCopy
  std::string source_text;  // kCopy, as written in the rules file
  std::string pattern;      // kRegexReplace (RE2 syntax)
  std::string replacement;  // kRegexReplace (\1 style groups)
  // kRegexReplace: `pattern` compiled by the loader. When null (a TagEdit built by hand),
  // ApplyEdits compiles `pattern` itself and skips the edit if it does not compile.
  std::shared_ptr<const re2::RE2> compiled_pattern;
};

struct Route {
  std::string destination;
  std::string transcode_profile;  // empty: send as stored
  int priority = 0;               // higher goes first
  std::vector<TagEdit> edits;
  RoutingLevel level = RoutingLevel::kInstance;
  std::chrono::seconds quiet_period{0};  // for series/study level
  std::string rule;                      // the rule that produced it ("default" for the default)
};

struct RoutingDecision {
  std::vector<Route> routes;
  bool discarded = false;  // acknowledged, counted, not forwarded
  std::string discarded_by;
  std::vector<std::string> matched_rules;  // in evaluation order
  bool used_default = false;               // nothing matched; the default route applied
};

// One condition's outcome, for explain: what it tested, the value it saw, whether it held.
struct ConditionTrace {
  int depth = 0;            // nesting under all/any/not
  std::string description;  // e.g. "Modality equals CT"
  std::string seen;         // e.g. "CT" or "<absent>"
  bool matched = false;
};

struct RuleTrace {
  std::string name;
  int line = 0;
  bool evaluated = false;  // false when an earlier rule stopped matching
  bool matched = false;
  std::vector<ConditionTrace> conditions;
};

struct Explanation {
  std::vector<RuleTrace> rules;
  RoutingDecision decision;
};

class RuleSet {
 public:
  virtual ~RuleSet() = default;
  virtual RoutingDecision Evaluate(const AttributeSource& attributes,
                                   const AssociationFacts& facts) const = 0;
  virtual Explanation Explain(const AttributeSource& attributes,
                              const AssociationFacts& facts) const = 0;
  virtual const std::vector<std::string>& rule_names() const = 0;
};

using RuleSetResult = std::variant<std::shared_ptr<const RuleSet>, std::vector<Diagnostic>>;

RuleSetResult LoadRulesText(std::string_view yaml_text, std::string_view source_name,
                            const RuleContext& context);
RuleSetResult LoadRulesFile(const std::filesystem::path& path, const RuleContext& context);

// Human-readable explain output: each rule, each condition, then routes and edits.
std::string FormatExplanation(const Explanation& explanation);

// Applies edits through this interface (the router implements it over a DCMTK dataset); the
// string logic (prefix, suffix, regex) lives in the rules library so it is tested once.
class EditableAttributes : public AttributeSource {
 public:
  virtual void Set(const AttributePath& path, const std::string& value) = 0;
  virtual void Delete(const AttributePath& path) = 0;
};
void ApplyEdits(const std::vector<TagEdit>& edits, EditableAttributes& attributes);

}  // namespace conduit::rules
