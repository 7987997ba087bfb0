// JPEG-LS codec overhead: our JpegLsCodec (Lossless 4.80, Near-Lossless 4.81 with NEAR 2)
// against the same CharLS calls made directly, on one 512x512 12-bit CT-like frame (smooth
// anatomy plus noise). The raw calls do what any caller must: create the encoder or decoder,
// size the destination, code. Prints the wrapper/raw time ratio per operation (target <= 1.05).
//
//   build/bin/conduit_codec_jpegls_bench
//   build/bin/conduit_codec_jpegls_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>
#include <charls/charls.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "codecs/jpegls_codec.h"

namespace {

using conduit::codecs::EncodeOptions;
using conduit::codecs::FrameInfo;

FrameInfo CtInfo() {
  FrameInfo info;
  info.rows = 512;
  info.columns = 512;
  info.bits_allocated = 16;
  info.bits_stored = 12;
  return info;
}

// Air outside an elliptic body, soft tissue with slow variation, a brighter "bone" ring, and
// Gaussian noise: roughly what a CT slice costs a lossless coder.
std::vector<std::uint8_t> CtFrame() {
  std::mt19937 random(42);
  std::normal_distribution<double> noise(0, 12);
  std::vector<std::uint8_t> frame(512 * 512 * 2);
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
      const auto sample = static_cast<std::uint16_t>(std::clamp(value, 0.0, 4095.0));
      frame[2 * (y * 512 + x)] = static_cast<std::uint8_t>(sample);
      frame[2 * (y * 512 + x) + 1] = static_cast<std::uint8_t>(sample >> 8);
    }
  }
  return frame;
}

const std::vector<std::uint8_t>& Frame() {
  static const std::vector<std::uint8_t> frame = CtFrame();
  return frame;
}

EncodeOptions Options(int near) {
  EncodeOptions options;
  options.lossy = near > 0;
  options.near_lossless = near;
  return options;
}

std::unique_ptr<conduit::codecs::FrameCodec> Codec(int near) {
  return near > 0 ? conduit::codecs::MakeJpegLsNearLosslessCodec()
                  : conduit::codecs::MakeJpegLsLosslessCodec();
}

std::vector<std::uint8_t> RawEncode(const std::vector<std::uint8_t>& frame, int near) {
  charls::jpegls_encoder encoder;
  encoder.frame_info({512, 512, 12, 1}).near_lossless(near);
  std::vector<std::uint8_t> destination(encoder.estimated_destination_size());
  encoder.destination(destination);
  destination.resize(encoder.encode(frame));
  return destination;
}

void WrapperEncode(benchmark::State& state) {
  const int near = static_cast<int>(state.range(0));
  const auto codec = Codec(near);
  const FrameInfo info = CtInfo();
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto encoded = codec->Encode(Frame(), info, Options(near));
    if (!encoded.ok()) state.SkipWithError(encoded.error().message.c_str());
    bytes = encoded->bytes.size();
    benchmark::DoNotOptimize(encoded);
  }
  state.counters["ratio"] = static_cast<double>(Frame().size()) / bytes;
}

void RawEncode(benchmark::State& state) {
  const int near = static_cast<int>(state.range(0));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto encoded = RawEncode(Frame(), near);
    bytes = encoded.size();
    benchmark::DoNotOptimize(encoded);
  }
  state.counters["ratio"] = static_cast<double>(Frame().size()) / bytes;
}

void WrapperDecode(benchmark::State& state) {
  const int near = static_cast<int>(state.range(0));
  const auto codec = Codec(near);
  const FrameInfo info = CtInfo();
  const std::vector<std::uint8_t> encoded = RawEncode(Frame(), near);
  for (auto _ : state) {
    auto decoded = codec->Decode(encoded, info);
    if (!decoded.ok()) state.SkipWithError(decoded.error().message.c_str());
    benchmark::DoNotOptimize(decoded);
  }
}

void RawDecode(benchmark::State& state) {
  const int near = static_cast<int>(state.range(0));
  const std::vector<std::uint8_t> encoded = RawEncode(Frame(), near);
  for (auto _ : state) {
    charls::jpegls_decoder decoder(encoded, true);
    std::vector<std::uint8_t> pixels(decoder.destination_size());
    decoder.decode(pixels);
    benchmark::DoNotOptimize(pixels);
  }
}

BENCHMARK(WrapperEncode)
    ->Name("JpegLs/Encode/Wrapper")
    ->Arg(0)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(RawEncode)->Name("JpegLs/Encode/Raw")->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond);
BENCHMARK(WrapperDecode)
    ->Name("JpegLs/Decode/Wrapper")
    ->Arg(0)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(RawDecode)->Name("JpegLs/Decode/Raw")->Arg(0)->Arg(2)->Unit(benchmark::kMillisecond);

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

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  const auto& times = reporter.times();
  for (const char* operation : {"Encode", "Decode"}) {
    for (const char* near : {"0", "2"}) {
      const std::string suffix = std::string("/") + near;
      const auto wrapper = times.find(std::string("JpegLs/") + operation + "/Wrapper" + suffix);
      const auto raw = times.find(std::string("JpegLs/") + operation + "/Raw" + suffix);
      if (wrapper == times.end() || raw == times.end()) continue;
      std::printf("overhead %s %s: %.3f\n", operation,
                  std::string(near) == "0" ? "4.80 lossless" : "4.81 NEAR=2",
                  wrapper->second / raw->second);
    }
  }
  return 0;
}
