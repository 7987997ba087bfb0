// Test doubles for the rules engine: a map-backed AttributeSource (and EditableAttributes) that
// stores values exactly as a dataset would hand them over (padding included), keyed by path.
#pragma once

#include <gtest/gtest.h>

#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "rules/attribute_path_parser.h"
#include "rules/attribute_source.h"
#include "rules/rule_set.h"

namespace conduit::rules::testing {

// A path written as in the rules file; a test failure if it does not parse. Remembered: a
// keyword lookup scans the DCMTK dictionary, and randomized tests build many sources.
inline AttributePath PathOf(std::string_view text, std::string_view creator = "") {
  static std::mutex mutex;
  static std::map<std::pair<std::string, std::string>, AttributePath> known;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(std::string(text), std::string(creator));
  if (const auto found = known.find(key); found != known.end()) {
    return found->second;
  }
  std::variant<ParsedAttributePath, std::string> parsed = ParseAttributePath(text, creator);
  if (const auto* error = std::get_if<std::string>(&parsed)) {
    ADD_FAILURE() << "bad path " << text << ": " << *error;
    return {};
  }
  return known.emplace(key, std::get<ParsedAttributePath>(parsed).path).first->second;
}

class FakeAttributes : public EditableAttributes {
 public:
  // `values` as stored: {"CT"}, {"ORIGINAL", "PRIMARY"}, {} for an empty attribute.
  FakeAttributes& Add(std::string_view path, std::string vr, std::vector<std::string> values,
                      std::string_view creator = "") {
    AddPath(PathOf(path, creator), std::move(vr), std::move(values));
    return *this;
  }

  FakeAttributes& AddPath(const AttributePath& path, std::string vr,
                          std::vector<std::string> values) {
    for (Entry& entry : entries_) {
      if (entry.path == path) {
        entry.values = AttributeValues{std::move(vr), std::move(values)};
        return *this;
      }
    }
    entries_.push_back(Entry{path, AttributeValues{std::move(vr), std::move(values)}});
    return *this;
  }

  std::optional<AttributeValues> Find(const AttributePath& path) const override {
    ++finds_;
    for (const Entry& entry : entries_) {
      if (entry.path == path) {
        return entry.values;
      }
    }
    return std::nullopt;
  }

  // Set splits on backslash like a DICOM toolkit; a new attribute gets `new_vr_`.
  void Set(const AttributePath& path, const std::string& value) override {
    std::vector<std::string> values;
    std::size_t start = 0;
    while (true) {
      const std::size_t end = value.find('\\', start);
      values.push_back(value.substr(start, end == std::string::npos ? end : end - start));
      if (end == std::string::npos) {
        break;
      }
      start = end + 1;
    }
    for (Entry& entry : entries_) {
      if (entry.path == path) {
        entry.values.values = std::move(values);
        return;
      }
    }
    entries_.push_back(Entry{path, AttributeValues{new_vr_, std::move(values)}});
  }

  void Delete(const AttributePath& path) override {
    std::erase_if(entries_, [&](const Entry& entry) { return entry.path == path; });
  }

  // The values at `path` joined with backslashes; "<absent>" when absent.
  std::string Text(std::string_view path, std::string_view creator = "") const {
    const std::optional<AttributeValues> found = Find(PathOf(path, creator));
    if (!found) {
      return "<absent>";
    }
    std::string joined;
    for (std::size_t i = 0; i < found->values.size(); ++i) {
      joined += (i == 0 ? "" : "\\") + found->values[i];
    }
    return joined;
  }

  int finds() const { return finds_; }
  void set_new_vr(std::string vr) { new_vr_ = std::move(vr); }

 private:
  struct Entry {
    AttributePath path;
    AttributeValues values;
  };
  std::vector<Entry> entries_;
  std::string new_vr_ = "LO";
  mutable int finds_ = 0;
};

// The destinations and transcode profiles the tests' rules may name.
inline RuleContext TestContext() {
  RuleContext context;
  context.destinations = {"AI", "ARCHIVE", "PACS", "RESEARCH"};
  context.transcode_profiles = {"htj2k-lossless", "jpegls-lossless"};
  return context;
}

inline std::string DescribeDiagnostics(const std::vector<Diagnostic>& diagnostics) {
  std::string text;
  for (const Diagnostic& diagnostic : diagnostics) {
    text += diagnostic.ToString() + "\n";
  }
  return text;
}

// The rule set; a test failure (and null) if the text has errors.
inline std::shared_ptr<const RuleSet> LoadOrFail(std::string_view yaml,
                                                 const RuleContext& context = TestContext()) {
  RuleSetResult result = LoadRulesText(yaml, "rules.yaml", context);
  if (const auto* errors = std::get_if<std::vector<Diagnostic>>(&result)) {
    ADD_FAILURE() << "unexpected errors:\n" << DescribeDiagnostics(*errors) << "in:\n" << yaml;
    return nullptr;
  }
  return std::get<std::shared_ptr<const RuleSet>>(result);
}

// The diagnostics as "rules.yaml:L:C: message" lines; a test failure if the text loads.
inline std::vector<std::string> LoadErrors(std::string_view yaml,
                                           const RuleContext& context = TestContext()) {
  RuleSetResult result = LoadRulesText(yaml, "rules.yaml", context);
  std::vector<std::string> lines;
  if (const auto* errors = std::get_if<std::vector<Diagnostic>>(&result)) {
    for (const Diagnostic& diagnostic : *errors) {
      lines.push_back(diagnostic.ToString());
    }
  } else {
    ADD_FAILURE() << "expected errors, but the rules loaded:\n" << yaml;
  }
  return lines;
}

}  // namespace conduit::rules::testing
