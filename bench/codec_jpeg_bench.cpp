// JPEG family codec overhead: our JpegBaselineCodec (4.50, libjpeg-turbo) and DcmtkJpegCodec
// (4.51 extended 12-bit, 4.70 lossless SV1; 4.57 runs the same code with the same predictor)
// against the same library calls made directly, on one 512x512 12-bit CT-like frame (smooth
// anatomy plus noise; baseline gets its top 8 bits). The raw calls do what any caller must:
// create the TurboJPEG handle or the DCMTK coder and its parameters, have an output buffer, code.
// Prints the wrapper/raw time ratio per operation (target <= 1.05).
//
//   build/bin/conduit_codec_jpeg_bench
//   build/bin/conduit_codec_jpeg_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>
#include <turbojpeg.h>

// clang-format off
#include <dcmtk/config/osconfig.h>
// clang-format on
#include <dcmtk/dcmjpeg/djcparam.h>
#include <dcmtk/dcmjpeg/djdijg12.h>
#include <dcmtk/dcmjpeg/djeijg12.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "bench/codec_bench_support.h"
#include "codecs/dcmtk_jpeg_codec.h"
#include "codecs/jpeg_baseline_codec.h"

namespace {

using conduit::bench::CtFrame;
using conduit::bench::CtInfo;
using conduit::bench::CtSamples;
using conduit::codecs::EncodeOptions;
using conduit::codecs::FrameCodec;
using conduit::codecs::FrameInfo;

constexpr int kQuality = 90;

FrameInfo Mono8Info() {
  FrameInfo info = CtInfo();
  info.bits_allocated = 8;
  info.bits_stored = 8;
  return info;
}

const std::vector<std::uint8_t>& Frame8() {
  static const std::vector<std::uint8_t> frame = [] {
    std::vector<std::uint8_t> bytes;
    for (const std::uint16_t sample : CtSamples()) {
      bytes.push_back(static_cast<std::uint8_t>(sample >> 4));
    }
    return bytes;
  }();
  return frame;
}

EncodeOptions Options(bool lossy) {
  EncodeOptions options;
  options.lossy = lossy;
  options.quality = kQuality;
  return options;
}

// ---- Baseline (4.50): libjpeg-turbo ----

void WrapperBaselineEncode(benchmark::State& state) {
  const auto codec = conduit::codecs::MakeJpegBaselineCodec();
  for (auto _ : state) {
    auto encoded = codec->Encode(Frame8(), Mono8Info(), Options(true));
    if (!encoded.ok()) state.SkipWithError(encoded.error().message.c_str());
    benchmark::DoNotOptimize(encoded);
  }
}

void RawBaselineEncode(benchmark::State& state) {
  for (auto _ : state) {
    tjhandle handle = tjInitCompress();
    unsigned char* jpeg = nullptr;
    unsigned long size = 0;  // NOLINT(runtime/int)
    if (tjCompress2(handle, Frame8().data(), 512, 0, 512, TJPF_GRAY, &jpeg, &size, TJSAMP_GRAY,
                    kQuality, 0) != 0) {
      state.SkipWithError("tjCompress2 failed");
    }
    benchmark::DoNotOptimize(jpeg);
    tjFree(jpeg);
    tjDestroy(handle);
  }
}

const std::vector<std::uint8_t>& BaselineStream() {
  static const std::vector<std::uint8_t> stream =
      conduit::codecs::MakeJpegBaselineCodec()->Encode(Frame8(), Mono8Info(), Options(true))->bytes;
  return stream;
}

void WrapperBaselineDecode(benchmark::State& state) {
  const auto codec = conduit::codecs::MakeJpegBaselineCodec();
  for (auto _ : state) {
    auto decoded = codec->Decode(BaselineStream(), Mono8Info());
    if (!decoded.ok()) state.SkipWithError(decoded.error().message.c_str());
    benchmark::DoNotOptimize(decoded);
  }
}

void RawBaselineDecode(benchmark::State& state) {
  const auto& stream = BaselineStream();
  for (auto _ : state) {
    tjhandle handle = tjInitDecompress();
    int width = 0, height = 0, subsampling = 0, colorspace = 0;
    tjDecompressHeader3(handle, stream.data(), stream.size(), &width, &height, &subsampling,
                        &colorspace);
    std::unique_ptr<unsigned char[]> pixels(new unsigned char[width * height]);
    if (tjDecompress2(handle, stream.data(), stream.size(), pixels.get(), width, 0, height,
                      TJPF_GRAY, 0) != 0) {
      state.SkipWithError("tjDecompress2 failed");
    }
    benchmark::DoNotOptimize(pixels.get());
    tjDestroy(handle);
  }
}

// ---- Extended 12-bit (4.51) and lossless SV1 (4.70): DCMTK's IJG 12-bit build ----

std::unique_ptr<FrameCodec> DcmtkCodec(bool lossless) {
  return lossless ? conduit::codecs::MakeJpegLosslessSv1Codec()
                  : conduit::codecs::MakeJpegExtendedCodec();
}

void WrapperDcmtkEncode(benchmark::State& state) {
  const bool lossless = state.range(0) != 0;
  const auto codec = DcmtkCodec(lossless);
  for (auto _ : state) {
    auto encoded = codec->Encode(CtFrame(), CtInfo(), Options(!lossless));
    if (!encoded.ok()) state.SkipWithError(encoded.error().message.c_str());
    benchmark::DoNotOptimize(encoded);
  }
}

void RawDcmtkEncode(benchmark::State& state) {
  const bool lossless = state.range(0) != 0;
  // The DCMTK encoder takes a Uint16 buffer; a caller holding a byte frame has one aligned.
  std::vector<Uint16> samples = CtSamples();
  for (auto _ : state) {
    const DJCodecParameter parameters(lossless ? ECC_lossyRGB : ECC_lossyYCbCr,
                                      EDC_photometricInterpretation, EUC_never, EPC_colorByPixel);
    std::unique_ptr<DJCompressIJG12Bit> encoder =
        lossless ? std::make_unique<DJCompressIJG12Bit>(parameters, EJM_lossless, 1, 0)
                 : std::make_unique<DJCompressIJG12Bit>(parameters, EJM_sequential,
                                                        static_cast<Uint8>(kQuality));
    Uint8* to = nullptr;
    Uint32 length = 0;
    if (encoder->encode(512, 512, EPI_Monochrome2, 1, samples.data(), to, length).bad()) {
      state.SkipWithError("DJCompressIJG12Bit::encode failed");
    }
    benchmark::DoNotOptimize(to);
    delete[] to;
  }
}

const std::vector<std::uint8_t>& DcmtkStream(bool lossless) {
  static const std::vector<std::uint8_t> lossy_stream =
      DcmtkCodec(false)->Encode(CtFrame(), CtInfo(), Options(true))->bytes;
  static const std::vector<std::uint8_t> lossless_stream =
      DcmtkCodec(true)->Encode(CtFrame(), CtInfo(), Options(false))->bytes;
  return lossless ? lossless_stream : lossy_stream;
}

void WrapperDcmtkDecode(benchmark::State& state) {
  const bool lossless = state.range(0) != 0;
  const auto codec = DcmtkCodec(lossless);
  const auto& stream = DcmtkStream(lossless);
  for (auto _ : state) {
    auto decoded = codec->Decode(stream, CtInfo());
    if (!decoded.ok()) state.SkipWithError(decoded.error().message.c_str());
    benchmark::DoNotOptimize(decoded);
  }
}

void RawDcmtkDecode(benchmark::State& state) {
  const bool lossless = state.range(0) != 0;
  std::vector<Uint8> stream = DcmtkStream(lossless);
  for (auto _ : state) {
    const DJCodecParameter parameters(ECC_lossyYCbCr, lossless ? EDC_never : EDC_guessLossyOnly,
                                      EUC_never, EPC_colorByPixel);
    DJDecompressIJG12Bit decoder(parameters, OFFalse);
    std::unique_ptr<Uint8[]> pixels(new Uint8[512 * 512 * 2]);
    if (decoder.init().bad() || decoder
                                    .decode(stream.data(), static_cast<Uint32>(stream.size()),
                                            pixels.get(), 512 * 512 * 2, OFFalse)
                                    .bad()) {
      state.SkipWithError("DJDecompressIJG12Bit::decode failed");
    }
    benchmark::DoNotOptimize(pixels.get());
  }
}

BENCHMARK(WrapperBaselineEncode)->Name("Jpeg/Encode/Wrapper/4.50")->Unit(benchmark::kMicrosecond);
BENCHMARK(RawBaselineEncode)->Name("Jpeg/Encode/Raw/4.50")->Unit(benchmark::kMicrosecond);
BENCHMARK(WrapperBaselineDecode)->Name("Jpeg/Decode/Wrapper/4.50")->Unit(benchmark::kMicrosecond);
BENCHMARK(RawBaselineDecode)->Name("Jpeg/Decode/Raw/4.50")->Unit(benchmark::kMicrosecond);
BENCHMARK(WrapperDcmtkEncode)
    ->Name("Jpeg/Encode/Wrapper")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(RawDcmtkEncode)->Name("Jpeg/Encode/Raw")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);
BENCHMARK(WrapperDcmtkDecode)
    ->Name("Jpeg/Decode/Wrapper")
    ->Arg(0)
    ->Arg(1)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(RawDcmtkDecode)->Name("Jpeg/Decode/Raw")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  std::vector<conduit::bench::TimeRatio> ratios;
  const std::pair<const char*, const char*> cases[] = {{"/4.50", "4.50 baseline 8-bit"},
                                                       {"/0", "4.51 extended 12-bit"},
                                                       {"/1", "4.70 lossless SV1 12-bit"}};
  for (const std::string operation : {"Encode", "Decode"}) {
    for (const auto& [suffix, label] : cases) {
      ratios.push_back({"overhead " + operation + " " + label,
                        "Jpeg/" + operation + "/Wrapper" + suffix,
                        "Jpeg/" + operation + "/Raw" + suffix});
    }
  }
  return conduit::bench::RunBenchmarksAndPrintRatios(argc, argv, ratios);
}
