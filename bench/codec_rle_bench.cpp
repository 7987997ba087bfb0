// RLE Lossless: our own PS3.5 Annex G codec against DCMTK's RLE classes (DcmRLEEncoder and
// DcmRLEDecoder, header-only PackBits coders) doing the same whole-frame work on one 512x512
// 12-bit CT-like frame: split the little-endian samples into MSB and LSB planes, code each row
// (G.3.1), pad segments to even length, write the 64-byte header; and back. RLE is ours, so the
// printed "ratio ours/DCMTK" says how we compare with the reference implementation rather than
// a wrapper overhead (target <= 1.05: no slower).
//
//   build/bin/conduit_codec_rle_bench
//   build/bin/conduit_codec_rle_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcrledec.h>
#include <dcmtk/dcmdata/dcrleenc.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/codec_bench_support.h"
#include "codecs/rle_codec.h"

namespace {

using conduit::bench::CtFrame;
using conduit::bench::CtInfo;
using conduit::codecs::FrameInfo;

void StoreLe32(std::uint8_t* bytes, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<std::uint8_t>(value >> (8 * i));
}

// DCMTK's coder on the same layout: segment 1 the MSB plane, segment 2 the LSB plane, each
// row flushed on its own, segments padded to even length.
std::vector<std::uint8_t> DcmtkEncode(const std::vector<std::uint8_t>& frame) {
  std::vector<std::uint8_t> out(64, 0);
  StoreLe32(out.data(), 2);
  for (int segment = 0; segment < 2; ++segment) {
    const int byte = segment == 0 ? 1 : 0;
    DcmRLEEncoder encoder(1);
    for (int row = 0; row < 512; ++row) {
      const std::uint8_t* source = frame.data() + row * 1024 + byte;
      for (int column = 0; column < 512; ++column) encoder.add(source[2 * column]);
      encoder.flush();
    }
    StoreLe32(out.data() + 4 * (segment + 1), static_cast<std::uint32_t>(out.size()));
    const std::size_t start = out.size();
    out.resize(start + encoder.size());
    encoder.write(out.data() + start);
  }
  return out;
}

std::vector<std::uint8_t> DcmtkDecode(const std::vector<std::uint8_t>& encoded) {
  std::vector<std::uint8_t> pixels(512 * 512 * 2);
  std::uint32_t offsets[3];
  for (int i = 0; i < 2; ++i) std::memcpy(&offsets[i], encoded.data() + 4 * (i + 1), 4);
  offsets[2] = static_cast<std::uint32_t>(encoded.size());
  for (int segment = 0; segment < 2; ++segment) {
    DcmRLEDecoder decoder(512 * 512);
    std::vector<std::uint8_t> coded(encoded.begin() + offsets[segment],
                                    encoded.begin() + offsets[segment + 1]);
    // A trailing pad byte reads as a literal cut short (EC_StreamNotifyClient): not a failure.
    decoder.decompress(coded.data(), coded.size());
    if (decoder.fail() || decoder.size() != 512 * 512) return {};
    const auto* plane = static_cast<const std::uint8_t*>(decoder.getOutputBuffer());
    std::uint8_t* target = pixels.data() + (segment == 0 ? 1 : 0);
    for (std::size_t i = 0; i < 512 * 512; ++i) target[2 * i] = plane[i];
  }
  return pixels;
}

void OursEncode(benchmark::State& state) {
  const auto codec = conduit::codecs::MakeRleLosslessCodec();
  const FrameInfo info = CtInfo();
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto encoded = codec->Encode(CtFrame(), info, {});
    if (!encoded.ok()) state.SkipWithError(encoded.error().message.c_str());
    bytes = encoded->bytes.size();
    benchmark::DoNotOptimize(encoded);
  }
  state.counters["ratio"] = static_cast<double>(CtFrame().size()) / bytes;
}

void DcmtkEncode(benchmark::State& state) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto encoded = DcmtkEncode(CtFrame());
    bytes = encoded.size();
    benchmark::DoNotOptimize(encoded);
  }
  state.counters["ratio"] = static_cast<double>(CtFrame().size()) / bytes;
}

void OursDecode(benchmark::State& state) {
  const auto codec = conduit::codecs::MakeRleLosslessCodec();
  const FrameInfo info = CtInfo();
  const std::vector<std::uint8_t> encoded = codec->Encode(CtFrame(), info, {})->bytes;
  for (auto _ : state) {
    auto decoded = codec->Decode(encoded, info);
    if (!decoded.ok()) state.SkipWithError(decoded.error().message.c_str());
    benchmark::DoNotOptimize(decoded);
  }
}

void DcmtkDecode(benchmark::State& state) {
  const std::vector<std::uint8_t> encoded = DcmtkEncode(CtFrame());
  if (DcmtkDecode(encoded) != CtFrame()) state.SkipWithError("DCMTK round trip differs");
  for (auto _ : state) {
    auto decoded = DcmtkDecode(encoded);
    benchmark::DoNotOptimize(decoded);
  }
}

BENCHMARK(OursEncode)->Name("Rle/Encode/Ours")->Unit(benchmark::kMicrosecond);
BENCHMARK(DcmtkEncode)->Name("Rle/Encode/Dcmtk")->Unit(benchmark::kMicrosecond);
BENCHMARK(OursDecode)->Name("Rle/Decode/Ours")->Unit(benchmark::kMicrosecond);
BENCHMARK(DcmtkDecode)->Name("Rle/Decode/Dcmtk")->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  std::vector<conduit::bench::TimeRatio> ratios;
  for (const std::string operation : {"Encode", "Decode"}) {
    ratios.push_back({"ratio ours/DCMTK " + operation, "Rle/" + operation + "/Ours",
                      "Rle/" + operation + "/Dcmtk"});
  }
  return conduit::bench::RunBenchmarksAndPrintRatios(argc, argv, ratios);
}
