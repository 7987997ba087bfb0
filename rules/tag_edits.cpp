// ApplyEdits: the string side of routing edits (prefix, suffix, copy, regex replace), done once
// here over any EditableAttributes; the router only implements Find, Set and Delete.
#include <re2/re2.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rules/dicom_value.h"
#include "rules/rule_set.h"

namespace conduit::rules {
namespace {

VrTraits TraitsOf(const AttributeValues& values) { return TraitsOfVr(values.vr); }

// The values joined with backslashes (PS3.5 6.4), each without its padding.
std::string JoinValues(const AttributeValues& values) {
  const VrTraits traits = TraitsOf(values);
  std::string joined;
  for (std::size_t i = 0; i < values.values.size(); ++i) {
    if (i != 0) {
      joined += '\\';
    }
    joined += TrimValue(values.values[i], traits);
  }
  return joined;
}

// Prefix or suffix each non-empty value (a multi-valued attribute keeps its multiplicity).
void AddAffix(const TagEdit& edit, EditableAttributes& attributes) {
  const std::optional<AttributeValues> found = attributes.Find(edit.target);
  if (!found) {
    return;
  }
  const VrTraits traits = TraitsOf(*found);
  std::string joined;
  bool changed = false;
  for (std::size_t i = 0; i < found->values.size(); ++i) {
    if (i != 0) {
      joined += '\\';
    }
    const std::string_view value = TrimValue(found->values[i], traits);
    if (value.empty()) {
      continue;  // an empty value stays empty: "SITEA-" alone would be a made-up identifier
    }
    changed = true;
    if (edit.kind == TagEdit::Kind::kPrefix) {
      joined += edit.value;
      joined += value;
    } else {
      joined += value;
      joined += edit.value;
    }
  }
  if (changed) {
    attributes.Set(edit.target, joined);
  }
}

void ReplaceMatches(const TagEdit& edit, EditableAttributes& attributes) {
  const std::optional<AttributeValues> found = attributes.Find(edit.target);
  if (!found) {
    return;
  }
  std::shared_ptr<const RE2> regex = edit.compiled_pattern;
  if (!regex) {
    RE2::Options options;
    options.set_log_errors(false);
    regex = std::make_shared<const RE2>(edit.pattern, options);
    if (!regex->ok()) {
      return;  // the loader refuses such patterns; a hand-built edit with one does nothing
    }
  }
  const VrTraits traits = TraitsOf(*found);
  std::string joined;
  bool changed = false;
  for (std::size_t i = 0; i < found->values.size(); ++i) {
    if (i != 0) {
      joined += '\\';
    }
    std::string value(TrimValue(found->values[i], traits));
    changed = RE2::GlobalReplace(&value, *regex, edit.replacement) > 0 || changed;
    joined += value;
  }
  if (changed) {
    attributes.Set(edit.target, joined);
  }
}

}  // namespace

void ApplyEdits(const std::vector<TagEdit>& edits, EditableAttributes& attributes) {
  for (const TagEdit& edit : edits) {
    switch (edit.kind) {
      case TagEdit::Kind::kSet:
        attributes.Set(edit.target, edit.value);
        break;
      case TagEdit::Kind::kDelete:
        attributes.Delete(edit.target);
        break;
      case TagEdit::Kind::kPrefix:
      case TagEdit::Kind::kSuffix:
        AddAffix(edit, attributes);
        break;
      case TagEdit::Kind::kCopy:
        // An absent source copies nothing (the target keeps whatever it had).
        if (const std::optional<AttributeValues> found = attributes.Find(edit.source)) {
          attributes.Set(edit.target, JoinValues(*found));
        }
        break;
      case TagEdit::Kind::kRegexReplace:
        ReplaceMatches(edit, attributes);
        break;
    }
  }
}

}  // namespace conduit::rules
