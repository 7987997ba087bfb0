// JPEG-LS codec overhead: our JpegLsCodec (Lossless 4.80, Near-Lossless 4.81 with NEAR 2)
// against the same CharLS calls made directly, on one 512x512 12-bit CT-like frame (smooth
// anatomy plus noise). The raw calls do what any caller must: create the encoder or decoder,
// size the destination, code. Prints the wrapper/raw time ratio per operation (target <= 1.05).
//
//   build/bin/conduit_codec_jpegls_bench
//   build/bin/conduit_codec_jpegls_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>
#include <charls/charls.h>

#include <string>
#include <vector>

#include "bench/codec_bench_support.h"
#include "codecs/jpegls_codec.h"

namespace {

using conduit::bench::CtFrame;
using conduit::bench::CtInfo;
using conduit::codecs::EncodeOptions;
using conduit::codecs::FrameInfo;

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
    auto encoded = codec->Encode(CtFrame(), info, Options(near));
    if (!encoded.ok()) state.SkipWithError(encoded.error().message.c_str());
    bytes = encoded->bytes.size();
    benchmark::DoNotOptimize(encoded);
  }
  state.counters["ratio"] = static_cast<double>(CtFrame().size()) / bytes;
}

void RawEncode(benchmark::State& state) {
  const int near = static_cast<int>(state.range(0));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto encoded = RawEncode(CtFrame(), near);
    bytes = encoded.size();
    benchmark::DoNotOptimize(encoded);
  }
  state.counters["ratio"] = static_cast<double>(CtFrame().size()) / bytes;
}

void WrapperDecode(benchmark::State& state) {
  const int near = static_cast<int>(state.range(0));
  const auto codec = Codec(near);
  const FrameInfo info = CtInfo();
  const std::vector<std::uint8_t> encoded = RawEncode(CtFrame(), near);
  for (auto _ : state) {
    auto decoded = codec->Decode(encoded, info);
    if (!decoded.ok()) state.SkipWithError(decoded.error().message.c_str());
    benchmark::DoNotOptimize(decoded);
  }
}

void RawDecode(benchmark::State& state) {
  const int near = static_cast<int>(state.range(0));
  const std::vector<std::uint8_t> encoded = RawEncode(CtFrame(), near);
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

}  // namespace

int main(int argc, char** argv) {
  std::vector<conduit::bench::TimeRatio> ratios;
  for (const std::string operation : {"Encode", "Decode"}) {
    for (const auto& [near, label] : {std::pair{"0", "4.80 lossless"}, {"2", "4.81 NEAR=2"}}) {
      ratios.push_back({"overhead " + operation + " " + label,
                        "JpegLs/" + operation + "/Wrapper/" + near,
                        "JpegLs/" + operation + "/Raw/" + near});
    }
  }
  return conduit::bench::RunBenchmarksAndPrintRatios(argc, argv, ratios);
}
