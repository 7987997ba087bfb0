// What the frame codec benchmarks share: the 512x512 12-bit CT-like frame they code, and a main
// that runs the benchmarks and then prints the time ratio of each pair of runs it is given.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "codecs/frame_codec.h"

namespace conduit::bench {

inline codecs::FrameInfo CtInfo() {
  codecs::FrameInfo info;
  info.rows = 512;
  info.columns = 512;
  info.bits_allocated = 16;
  info.bits_stored = 12;
  return info;
}

// Air outside an elliptic body, soft tissue with slow variation, a brighter "bone" ring, and
// Gaussian noise: roughly what a CT slice costs a lossless coder. Seeded, so every run and
// every bench codes the same frame.
inline std::vector<std::uint16_t> CtSamples() {
  std::mt19937 random(42);
  std::normal_distribution<double> noise(0, 12);
  std::vector<std::uint16_t> samples(512 * 512);
  for (int y = 0; y < 512; ++y) {
    for (int x = 0; x < 512; ++x) {
      const double dx = (x - 256) / 220.0;
      const double dy = (y - 256) / 180.0;
      const double r = std::sqrt(dx * dx + dy * dy);
      double value = 24;  // air
      if (r < 1) {
        value = 1040 + 60 * std::sin(x * 0.03) * std::cos(y * 0.02) + noise(random);
        if (r > 0.9) value = 1800 + noise(random);
      }
      samples[y * 512 + x] = static_cast<std::uint16_t>(std::clamp(value, 0.0, 4095.0));
    }
  }
  return samples;
}

// CtSamples() as the native little-endian frame CtInfo() describes; built once per process.
inline const std::vector<std::uint8_t>& CtFrame() {
  static const std::vector<std::uint8_t> frame = [] {
    std::vector<std::uint8_t> bytes;
    for (const std::uint16_t sample : CtSamples()) {
      bytes.push_back(static_cast<std::uint8_t>(sample));
      bytes.push_back(static_cast<std::uint8_t>(sample >> 8));
    }
    return bytes;
  }();
  return frame;
}

// Collects each run's CPU time per iteration (the medians when repeated) to print the ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const bool aggregate = run.run_type == Run::RT_Aggregate;
      if (aggregate && run.aggregate_name != "median") continue;
      const std::string name = run.run_name.str();
      if (!aggregate && medians_.count(name) != 0) continue;
      times_[name] = run.GetAdjustedCPUTime();
      if (aggregate) medians_[name] = true;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  const std::map<std::string, double>& times() const { return times_; }

 private:
  std::map<std::string, double> times_;
  std::map<std::string, bool> medians_;
};

// One line of the summary: "<label>: <numerator time / denominator time>", both runs by name.
struct TimeRatio {
  std::string label;
  std::string numerator;
  std::string denominator;
};

// The whole main of a codec bench: runs what the command line selects, then prints each ratio
// whose two runs both ran (a --benchmark_filter may have skipped either).
inline int RunBenchmarksAndPrintRatios(int argc, char** argv,
                                       const std::vector<TimeRatio>& ratios) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  const auto& times = reporter.times();
  for (const TimeRatio& ratio : ratios) {
    const auto numerator = times.find(ratio.numerator);
    const auto denominator = times.find(ratio.denominator);
    if (numerator == times.end() || denominator == times.end()) continue;
    std::printf("%s: %.3f\n", ratio.label.c_str(), numerator->second / denominator->second);
  }
  return 0;
}

}  // namespace conduit::bench
