// JPEG 2000 (OpenJPEG) and HTJ2K (OpenJPH encode, OpenJPEG decode) wrappers against the raw
// library calls doing the same work with the same parameters, on one 512x512 12-bit CT-like
// frame. The raw calls include what any caller must do: build the library's image from the
// native frame (or copy the decoded image back to a native frame), create the codec and the
// memory stream. Prints wrapper/raw CPU time ratios at the end ("overhead encode 4.90: 1.01").
#include <benchmark/benchmark.h>
#include <openjpeg.h>
#include <openjph/ojph_arch.h>
#include <openjph/ojph_codestream.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_params.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/codec_bench_support.h"
#include "codecs/htj2k_codec.h"
#include "codecs/jpeg2000_codec.h"

namespace {

using conduit::bench::CtInfo;
using conduit::codecs::EncodeOptions;
using conduit::codecs::FrameCodec;
using conduit::codecs::FrameInfo;

// Smooth anatomy (a body ellipse, bone, fat) plus Gaussian noise, as in the codec tests.
std::vector<std::uint8_t> MakeCtFrame() {
  const FrameInfo info = CtInfo();
  std::mt19937 random(42);
  std::normal_distribution<double> noise(0, 12);
  std::vector<std::uint8_t> frame(info.native_bytes());
  const double cx = 256, cy = 256;
  for (std::uint32_t y = 0, i = 0; y < 512; ++y) {
    for (std::uint32_t x = 0; x < 512; ++x, ++i) {
      const double dx = (x - cx) / 215.0, dy = (y - cy) / 180.0, r = dx * dx + dy * dy;
      double value = 24;
      if (r < 1) {
        value = 1040 + 60 * std::sin(x / 17.0) * std::cos(y / 23.0);
        if ((x - cx) * (x - cx) + (y - cy - 40) * (y - cy - 40) < 900) value = 1900;
        if (r > 0.85) value = 900;
      }
      const auto sample =
          static_cast<std::uint16_t>(std::clamp(value + noise(random), 0.0, 4095.0));
      frame[2 * i] = static_cast<std::uint8_t>(sample);
      frame[2 * i + 1] = static_cast<std::uint8_t>(sample >> 8);
    }
  }
  return frame;
}

const std::vector<std::uint8_t>& CtFrame() {
  static const std::vector<std::uint8_t> frame = MakeCtFrame();
  return frame;
}

// ---- raw OpenJPEG ------------------------------------------------------------------------------

struct Reader {
  const std::uint8_t* data;
  std::size_t size, position;
};
struct Writer {
  std::vector<std::uint8_t>* out;
  std::size_t position;
};

OPJ_SIZE_T ReadFn(void* buffer, OPJ_SIZE_T n, void* user) {
  auto* r = static_cast<Reader*>(user);
  if (r->position >= r->size) return static_cast<OPJ_SIZE_T>(-1);
  n = std::min<OPJ_SIZE_T>(n, r->size - r->position);
  std::memcpy(buffer, r->data + r->position, n);
  r->position += n;
  return n;
}
OPJ_OFF_T ReadSkipFn(OPJ_OFF_T n, void* user) {
  auto* r = static_cast<Reader*>(user);
  r->position = std::min<std::size_t>(r->size, r->position + n);
  return n;
}
OPJ_BOOL ReadSeekFn(OPJ_OFF_T n, void* user) {
  static_cast<Reader*>(user)->position = n;
  return OPJ_TRUE;
}
OPJ_SIZE_T WriteFn(void* buffer, OPJ_SIZE_T n, void* user) {
  auto* w = static_cast<Writer*>(user);
  if (w->position + n > w->out->size()) w->out->resize(w->position + n);
  std::memcpy(w->out->data() + w->position, buffer, n);
  w->position += n;
  return n;
}
OPJ_OFF_T WriteSkipFn(OPJ_OFF_T n, void* user) {
  auto* w = static_cast<Writer*>(user);
  w->position += n;
  if (w->position > w->out->size()) w->out->resize(w->position);
  return n;
}
OPJ_BOOL WriteSeekFn(OPJ_OFF_T n, void* user) {
  auto* w = static_cast<Writer*>(user);
  w->position = n;
  if (w->position > w->out->size()) w->out->resize(w->position);
  return OPJ_TRUE;
}
void Quiet(const char*, void*) {}

std::vector<std::uint8_t> RawOpenJpegEncode(const std::vector<std::uint8_t>& native, bool lossy,
                                            double ratio) {
  opj_image_cmptparm_t parameter;
  std::memset(&parameter, 0, sizeof(parameter));
  parameter.dx = parameter.dy = 1;
  parameter.w = parameter.h = 512;
  parameter.prec = 12;
  opj_image_t* image = opj_image_create(1, &parameter, OPJ_CLRSPC_GRAY);
  image->x1 = image->y1 = 512;
  for (std::size_t i = 0; i < 512 * 512; ++i) {
    image->comps[0].data[i] = native[2 * i] | native[2 * i + 1] << 8;
  }
  opj_cparameters_t p;
  opj_set_default_encoder_parameters(&p);
  p.tcp_numlayers = 1;
  p.cp_disto_alloc = 1;
  p.tcp_rates[0] = lossy ? static_cast<float>(ratio * 12 / 16) : 0;
  p.irreversible = lossy;
  p.numresolution = 6;
  opj_codec_t* codec = opj_create_compress(OPJ_CODEC_J2K);
  opj_set_error_handler(codec, Quiet, nullptr);
  opj_set_warning_handler(codec, Quiet, nullptr);
  opj_set_info_handler(codec, Quiet, nullptr);
  opj_setup_encoder(codec, &p, image);
  opj_codec_set_threads(codec, 0);
  std::vector<std::uint8_t> out;
  Writer writer{&out, 0};
  opj_stream_t* stream = opj_stream_create(64 * 1024, OPJ_FALSE);
  opj_stream_set_user_data(stream, &writer, nullptr);
  opj_stream_set_write_function(stream, WriteFn);
  opj_stream_set_skip_function(stream, WriteSkipFn);
  opj_stream_set_seek_function(stream, WriteSeekFn);
  opj_start_compress(codec, image, stream);
  opj_encode(codec, stream);
  opj_end_compress(codec, stream);
  opj_stream_destroy(stream);
  opj_destroy_codec(codec);
  opj_image_destroy(image);
  return out;
}

std::vector<std::uint8_t> RawOpenJpegDecode(const std::vector<std::uint8_t>& coded) {
  Reader reader{coded.data(), coded.size(), 0};
  opj_stream_t* stream = opj_stream_create(64 * 1024, OPJ_TRUE);
  opj_stream_set_user_data(stream, &reader, nullptr);
  opj_stream_set_user_data_length(stream, coded.size());
  opj_stream_set_read_function(stream, ReadFn);
  opj_stream_set_skip_function(stream, ReadSkipFn);
  opj_stream_set_seek_function(stream, ReadSeekFn);
  opj_codec_t* codec = opj_create_decompress(OPJ_CODEC_J2K);
  opj_set_error_handler(codec, Quiet, nullptr);
  opj_set_warning_handler(codec, Quiet, nullptr);
  opj_set_info_handler(codec, Quiet, nullptr);
  opj_dparameters_t p;
  opj_set_default_decoder_parameters(&p);
  opj_setup_decoder(codec, &p);
  opj_codec_set_threads(codec, 0);
  opj_image_t* image = nullptr;
  std::vector<std::uint8_t> native(512 * 512 * 2);
  if (opj_read_header(stream, codec, &image) && opj_decode(codec, stream, image) &&
      opj_end_decompress(codec, stream)) {
    const OPJ_INT32* plane = image->comps[0].data;
    for (std::size_t i = 0; i < 512 * 512; ++i) {
      native[2 * i] = static_cast<std::uint8_t>(plane[i]);
      native[2 * i + 1] = static_cast<std::uint8_t>(plane[i] >> 8);
    }
  }
  opj_image_destroy(image);
  opj_destroy_codec(codec);
  opj_stream_destroy(stream);
  return native;
}

// ---- raw OpenJPH
// ---------------------------------------------------------------------------------

std::vector<std::uint8_t> RawOpenJphEncode(const std::vector<std::uint8_t>& native, bool rpcl,
                                           float step) {
  ojph::codestream codestream;
  ojph::param_siz siz = codestream.access_siz();
  siz.set_image_extent(ojph::point(512, 512));
  siz.set_image_offset(ojph::point(0, 0));
  siz.set_tile_size(ojph::size(512, 512));
  siz.set_tile_offset(ojph::point(0, 0));
  siz.set_num_components(1);
  siz.set_component(0, ojph::point(1, 1), 12, false);
  ojph::param_cod cod = codestream.access_cod();
  cod.set_num_decomposition(5);
  cod.set_block_dims(64, 64);
  if (rpcl) cod.set_progression_order("RPCL");
  cod.set_color_transform(false);
  cod.set_reversible(step == 0);
  if (step != 0) codestream.access_qcd().set_irrev_quant(step);
  codestream.set_planar(false);
  ojph::mem_outfile out;
  out.open(512 * 512 + 4096);
  codestream.write_headers(&out);
  ojph::ui32 component = 0;
  ojph::line_buf* line = codestream.exchange(nullptr, component);
  for (std::size_t y = 0; y < 512; ++y) {
    const std::uint8_t* row = native.data() + y * 1024;
    for (std::size_t x = 0; x < 512; ++x) line->i32[x] = row[2 * x] | row[2 * x + 1] << 8;
    line = codestream.exchange(line, component);
  }
  codestream.flush();
  std::vector<std::uint8_t> coded(out.get_data(), out.get_data() + out.tell());
  codestream.close();
  return coded;
}

std::vector<std::uint8_t> RawOpenJphDecode(const std::vector<std::uint8_t>& coded) {
  ojph::codestream codestream;
  ojph::mem_infile in;
  in.open(coded.data(), coded.size());
  codestream.read_headers(&in);
  codestream.set_planar(false);
  codestream.create();
  std::vector<std::uint8_t> native(512 * 512 * 2);
  for (std::size_t y = 0; y < 512; ++y) {
    ojph::ui32 component = 0;
    const ojph::line_buf* line = codestream.pull(component);
    std::uint8_t* row = native.data() + y * 1024;
    for (std::size_t x = 0; x < 512; ++x) {
      row[2 * x] = static_cast<std::uint8_t>(line->i32[x]);
      row[2 * x + 1] = static_cast<std::uint8_t>(line->i32[x] >> 8);
    }
  }
  codestream.close();
  return native;
}

// The step our wrapper ends with for 4.203: the same search as htj2k_codec.cpp (first guess
// from the target bits per sample, then secant corrections), replayed with the raw encoder
// outside the timed loop, so that the raw encode uses the very same quantisation.
float SearchStep(const std::vector<std::uint8_t>& native, double ratio) {
  const double samples = 512.0 * 512, target = native.size() / ratio;
  double log2_step = std::clamp(-7.0 - 0.7 * 8 * target / samples, -20.0, -1.0);
  double previous_log2_step = 0, previous_size = 0, best_error = 1e9;
  float best = 0;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const float step = static_cast<float>(std::exp2(log2_step));
    const double size = static_cast<double>(RawOpenJphEncode(native, false, step).size());
    const double error = std::abs(std::log(size / target));
    if (error < best_error) best_error = error, best = step;
    if (std::abs(size / target - 1) <= 0.10) break;
    double slope = -1.3 * samples / 8;
    if (attempt > 0 && log2_step != previous_log2_step) {
      const double measured = (size - previous_size) / (log2_step - previous_log2_step);
      if (measured < slope / 8) slope = measured;
    }
    const double next = log2_step + std::clamp((target - size) / slope, -4.0, 4.0);
    previous_log2_step = log2_step;
    previous_size = size;
    log2_step = std::clamp(next, -20.0, -1.0);
    if (log2_step == previous_log2_step) break;
  }
  return best;
}

// ---- benchmarks
// ----------------------------------------------------------------------------------

struct Syntax {
  const char* name;
  std::unique_ptr<FrameCodec> codec;
  EncodeOptions options;
};

std::vector<Syntax>& Syntaxes() {
  static std::vector<Syntax> syntaxes = [] {
    EncodeOptions lossless, lossy;
    lossy.lossy = true;
    lossy.compression_ratio = 10;
    std::vector<Syntax> list;
    list.push_back({"4.90", conduit::codecs::MakeJpeg2000LosslessCodec(), lossless});
    list.push_back({"4.91", conduit::codecs::MakeJpeg2000Codec(), lossy});
    list.push_back({"4.201", conduit::codecs::MakeHtj2kLosslessCodec(), lossless});
    list.push_back({"4.202", conduit::codecs::MakeHtj2kLosslessRpclCodec(), lossless});
    list.push_back({"4.203", conduit::codecs::MakeHtj2kCodec(), lossy});
    return list;
  }();
  return syntaxes;
}

std::vector<std::uint8_t> RawEncode(const std::string& name, const std::vector<std::uint8_t>& f,
                                    float step) {
  if (name == "4.90") return RawOpenJpegEncode(f, false, 0);
  if (name == "4.91") return RawOpenJpegEncode(f, true, 10);
  return RawOpenJphEncode(f, name == "4.202", name == "4.203" ? step : 0);
}

void BM_WrapperEncode(benchmark::State& state, const Syntax* syntax) {
  const auto& frame = CtFrame();
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto encoded = syntax->codec->Encode(frame, CtInfo(), syntax->options);
    if (!encoded.ok()) state.SkipWithError(encoded.error().message.c_str());
    bytes = encoded.ok() ? encoded->bytes.size() : 0;
    benchmark::DoNotOptimize(bytes);
  }
  state.counters["ratio"] = static_cast<double>(frame.size()) / std::max<std::size_t>(bytes, 1);
}

void BM_RawEncode(benchmark::State& state, const Syntax* syntax) {
  const auto& frame = CtFrame();
  float step = 0;
  if (std::string(syntax->name) == "4.203") {
    step = SearchStep(frame, syntax->options.compression_ratio);
    auto wrapped = syntax->codec->Encode(frame, CtInfo(), syntax->options);
    if (wrapped->bytes != RawEncode(syntax->name, frame, step)) {
      state.SkipWithError("raw 4.203 encode differs from the wrapper's");
    }
  }
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto coded = RawEncode(syntax->name, frame, step);
    bytes = coded.size();
    benchmark::DoNotOptimize(coded.data());
  }
  state.counters["ratio"] = static_cast<double>(frame.size()) / std::max<std::size_t>(bytes, 1);
}

void BM_WrapperDecode(benchmark::State& state, const Syntax* syntax) {
  auto encoded = syntax->codec->Encode(CtFrame(), CtInfo(), syntax->options);
  for (auto _ : state) {
    auto decoded = syntax->codec->Decode(encoded->bytes, CtInfo());
    if (!decoded.ok()) state.SkipWithError(decoded.error().message.c_str());
    benchmark::DoNotOptimize(decoded);
  }
}

void BM_RawDecode(benchmark::State& state, const Syntax* syntax) {
  auto encoded = syntax->codec->Encode(CtFrame(), CtInfo(), syntax->options);
  for (auto _ : state) {
    auto native = RawOpenJpegDecode(encoded->bytes);
    benchmark::DoNotOptimize(native.data());
  }
}

// For the record: what decoding with OpenJPH would cost (we do not, see htj2k_codec.h).
void BM_RawOpenJphDecode(benchmark::State& state, const Syntax* syntax) {
  auto encoded = syntax->codec->Encode(CtFrame(), CtInfo(), syntax->options);
  for (auto _ : state) {
    auto native = RawOpenJphDecode(encoded->bytes);
    benchmark::DoNotOptimize(native.data());
  }
}

// Keeps each run's CPU time per iteration, by name, for the ratios printed at the end: all the
// work is single-threaded, and CPU time is far steadier than wall time on a shared machine.
class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration && run.iterations > 0) {
        times_[run.benchmark_name()] = run.cpu_accumulated_time / run.iterations;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double Time(const std::string& name) const {
    auto it = times_.find(name);
    return it == times_.end() ? 0 : it->second;
  }

 private:
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  for (Syntax& syntax : Syntaxes()) {
    const std::string name = syntax.name;
    benchmark::RegisterBenchmark(("encode/wrapper/" + name).c_str(), BM_WrapperEncode, &syntax)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("encode/raw/" + name).c_str(), BM_RawEncode, &syntax)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("decode/wrapper/" + name).c_str(), BM_WrapperDecode, &syntax)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("decode/raw/" + name).c_str(), BM_RawDecode, &syntax)
        ->Unit(benchmark::kMillisecond);
    if (name == "4.201") {
      benchmark::RegisterBenchmark("decode/raw_openjph/4.201", BM_RawOpenJphDecode, &syntax)
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  CollectingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  for (const Syntax& syntax : Syntaxes()) {
    for (const char* what : {"encode", "decode"}) {
      const double wrapper = reporter.Time(std::string(what) + "/wrapper/" + syntax.name);
      const double raw = reporter.Time(std::string(what) + "/raw/" + syntax.name);
      if (wrapper > 0 && raw > 0) {
        std::printf("overhead %s %s: %.3f (wrapper %.2f ms, raw %.2f ms)\n", what, syntax.name,
                    wrapper / raw, wrapper * 1e3, raw * 1e3);
      }
    }
  }
  const double openjph = reporter.Time("decode/raw_openjph/4.201");
  const double openjpeg = reporter.Time("decode/raw/4.201");
  if (openjph > 0 && openjpeg > 0) {
    std::printf("HTJ2K decode, OpenJPEG / OpenJPH time: %.2f\n", openjpeg / openjph);
  }
  benchmark::Shutdown();
  return 0;
}
