// The default configuration, embedded at build time from default_config.yaml, so that
// `conduit serve` runs without any file and `conduit config default` can print every key.
#pragma once

#include <string_view>

namespace conduit::config {

extern const std::string_view kDefaultConfigYaml;

}  // namespace conduit::config
