// FormatExplanation: `conduit rules explain` output. One block per rule (matched, not matched,
// or not evaluated because an earlier rule stopped), each condition indented by its depth with
// the value it saw, then the decision with every route's settings and edits.
#include <string>

#include "rules/rule_set.h"

namespace conduit::rules {
namespace {

constexpr std::string_view kHeld = "\u2713";    // ✓
constexpr std::string_view kFailed = "\u2717";  // ✗

std::string LevelName(RoutingLevel level) {
  switch (level) {
    case RoutingLevel::kSeries:
      return "series";
    case RoutingLevel::kStudy:
      return "study";
    case RoutingLevel::kInstance:
      break;
  }
  return "instance";
}

std::string DoubleQuoted(const std::string& text) { return "\"" + text + "\""; }

std::string DescribeEdit(const TagEdit& edit) {
  switch (edit.kind) {
    case TagEdit::Kind::kSet:
      return "set " + edit.target_text + " to " + DoubleQuoted(edit.value);
    case TagEdit::Kind::kDelete:
      return "delete " + edit.target_text;
    case TagEdit::Kind::kPrefix:
      return "prefix " + edit.target_text + " with " + DoubleQuoted(edit.value);
    case TagEdit::Kind::kSuffix:
      return "suffix " + edit.target_text + " with " + DoubleQuoted(edit.value);
    case TagEdit::Kind::kCopy:
      return "copy " + edit.source_text + " to " + edit.target_text;
    case TagEdit::Kind::kRegexReplace:
      return "replace " + DoubleQuoted(edit.pattern) + " in " + edit.target_text + " with " +
             DoubleQuoted(edit.replacement);
  }
  return "";
}

void AppendRoute(const Route& route, std::string& out) {
  out += "  " + route.destination + ": priority " + std::to_string(route.priority) + ", ";
  out +=
      route.transcode_profile.empty() ? "sent as stored" : "transcode " + route.transcode_profile;
  out += ", level " + LevelName(route.level);
  if (route.level != RoutingLevel::kInstance) {
    out += " (quiet period " + std::to_string(route.quiet_period.count()) + " s)";
  }
  out += route.rule == "default" ? ", default route\n" : ", from rule '" + route.rule + "'\n";
  for (const TagEdit& edit : route.edits) {
    out += "      edit: " + DescribeEdit(edit) + "\n";
  }
}

}  // namespace

std::string FormatExplanation(const Explanation& explanation) {
  std::string out;
  for (const RuleTrace& rule : explanation.rules) {
    out += "rule '" + rule.name + "' (line " + std::to_string(rule.line) + "): ";
    if (!rule.evaluated) {
      out += "not evaluated (an earlier rule stopped evaluation)\n";
      continue;
    }
    if (rule.conditions.empty()) {
      out += rule.matched ? "matched (it has no conditions)\n" : "not matched\n";
      continue;
    }
    out += rule.matched ? "matched\n" : "not matched\n";
    for (const ConditionTrace& condition : rule.conditions) {
      out += std::string(2 + 2 * static_cast<std::size_t>(condition.depth), ' ');
      out += condition.matched ? kHeld : kFailed;
      out += " " + condition.description;
      if (!condition.seen.empty()) {
        out += "  (seen: " + condition.seen + ")";
      }
      out += "\n";
    }
  }
  if (!out.empty()) {
    out += "\n";
  }

  const RoutingDecision& decision = explanation.decision;
  if (decision.discarded) {
    out += "decision: discarded by rule '" + decision.discarded_by +
           "' (acknowledged, counted, not forwarded)\n";
    return out;
  }
  if (decision.routes.empty()) {
    out += decision.matched_rules.empty()
               ? "decision: no route (no rule matched and there is no default route)\n"
               : "decision: no route\n";
    return out;
  }
  out += "decision: " + std::to_string(decision.routes.size()) +
         (decision.routes.size() == 1 ? " route" : " routes");
  out += decision.used_default ? " (no rule matched: the default route applies)\n" : "\n";
  for (const Route& route : decision.routes) {
    AppendRoute(route, out);
  }
  return out;
}

}  // namespace conduit::rules
