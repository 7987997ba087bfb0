// The Prometheus text format (0.0.4) of what some collectables hold, as prometheus-cpp's
// Exposer served it on /metrics: each collectable's families in turn, serialized by
// prometheus::TextSerializer.
#pragma once

#include <prometheus/collectable.h>

#include <memory>
#include <string>
#include <vector>

namespace conduit::metrics {

inline constexpr const char* kPrometheusTextContentType =
    "text/plain; version=0.0.4; charset=utf-8";

std::string PrometheusText(
    const std::vector<std::shared_ptr<prometheus::Collectable>>& collectables);

}  // namespace conduit::metrics
