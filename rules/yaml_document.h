// Safe single-document YAML loading, shared by the rules and configuration loaders.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

namespace conduit::rules {

// Where a second YAML document starts, if the text has one with content, so the loaders can
// refuse it with a position. Not YAML::LoadAll: yaml-cpp 0.7's LoadAll loops forever,
// allocating, on input as small as ",|" (jbeder/yaml-cpp#1040, fixed upstream by #1319); two
// parser calls are bounded.
std::optional<YAML::Mark> SecondDocumentMark(const std::string& text);

}  // namespace conduit::rules
