#include "codecs/htj2k_codec.h"

#include <openjph/ojph_arch.h>
#include <openjph/ojph_codestream.h>
#include <openjph/ojph_file.h>
#include <openjph/ojph_mem.h>
#include <openjph/ojph_message.h>
#include <openjph/ojph_params.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "codecs/jpeg2000_codec.h"
#include "codecs/sample_bits.h"

namespace conduit::codecs {
namespace {

constexpr std::uint32_t kMaxDecompositions = 5;
constexpr std::size_t kMaxMessage = 512;
// Lossy step search: accept a size within this fraction of the target, try at most this often.
constexpr double kRateTolerance = 0.10;
constexpr int kMaxLossyAttempts = 3;
// Assumed fall of the coded size per doubling of the step, in bits per sample, and the first
// guess log2(step) = -7 - 0.7 * target bits per sample: both fitted on a 512x512 12-bit CT-like
// frame (noise sigma 12) between 0.8 and 4 bits per sample; the secant step adapts to others.
constexpr double kBitsPerOctave = 1.3;
constexpr double kMinLog2Step = -20;
constexpr double kMaxLog2Step = -1;

CodecError Fail(std::string message) { return CodecError{std::move(message)}; }

// OpenJPH 0.9.0 prints every message to a process-wide FILE* and throws after an error;
// configure_error() does nothing and a null stream crashes. So the streams point at a sink whose
// writes land in the writing thread's buffer, which Encode reads when OpenJPH throws. Each
// message is written in several pieces ending with '\n': the buffer keeps the latest message.
thread_local std::string t_openjph_message;

ssize_t SinkWrite(void*, const char* buffer, std::size_t size) {
  std::string& message = t_openjph_message;
  if (!message.empty() && message.back() == '\n') message.clear();
  message.append(buffer, std::min(size, kMaxMessage - std::min(kMaxMessage, message.size())));
  return static_cast<ssize_t>(size);
}

bool InstallOpenJphSink() {
  static const bool installed = [] {
    cookie_io_functions_t functions{nullptr, &SinkWrite, nullptr, nullptr};
    FILE* sink = fopencookie(nullptr, "w", functions);
    if (sink == nullptr) return false;
    std::setvbuf(sink, nullptr, _IONBF, 0);  // write in the calling thread, at once
    ojph::set_error_stream(sink);
    ojph::set_warning_stream(sink);
    ojph::set_info_stream(sink);
    return true;
  }();
  return installed;
}

std::string LastOpenJphMessage() {
  std::string message = t_openjph_message;
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return message;
}

std::optional<std::string> CommonRefusal(const FrameInfo& info) {
  if (info.rows == 0 || info.columns == 0) return "HTJ2K needs a non-empty frame";
  if (info.samples_per_pixel != 1 && info.samples_per_pixel != 3) {
    return "HTJ2K codes 1 or 3 samples per pixel";
  }
  if (info.bits_allocated != 8 && info.bits_allocated != 16) {
    return "HTJ2K takes 8 or 16 bits allocated";
  }
  if (info.bits_stored < 1 || info.bits_stored > info.bits_allocated) {
    return "HTJ2K needs 1 <= bits stored <= bits allocated";
  }
  if (info.photometric == Photometric::kYbrFull422) {
    return "HTJ2K cannot code YBR_FULL_422 (PS3.5 8.2.4): convert to RGB first";
  }
  if (info.photometric == Photometric::kYbrIct || info.photometric == Photometric::kYbrRct) {
    return "HTJ2K input must be decoded samples, not YBR_ICT/YBR_RCT";
  }
  return std::nullopt;
}

std::uint32_t DecompositionsFor(std::uint32_t columns, std::uint32_t rows) {
  const std::uint32_t smallest = std::min(columns, rows);
  std::uint32_t levels = 0;
  while (levels < kMaxDecompositions && (std::uint32_t{2} << levels) <= smallest) ++levels;
  return levels;
}

struct Settings {
  bool reversible = true;
  bool rpcl = false;
  bool colour_transform = false;
  float step = 0;  // irreversible base quantisation step (relative to the sample range)
};

// OpenJPH's line for one component of a row: `width` samples from sample index `first` on, every
// `stride`-th (the components are interleaved), masked to BitsStored and sign-extended:
// (v ^ sign) - sign, with sign 0 for unsigned samples. Grey rows go in fixed-size blocks, which
// GCC 12 at -O2 vectorises (a plain loop stays scalar and cost 5% of the encode).
template <typename Sample>
void FillLine(const std::uint8_t* samples, std::size_t first, std::uint32_t stride,
              std::uint32_t width, std::uint32_t mask, std::uint32_t sign, ojph::si32* line) {
  const auto cut = [mask, sign](std::uint32_t value) {
    return static_cast<ojph::si32>((value & mask) ^ sign) - static_cast<ojph::si32>(sign);
  };
  const std::uint8_t* from = samples + first * sizeof(Sample);
  std::uint32_t x = 0;
  if (stride == 1) {
    constexpr std::uint32_t kBlock = 64;
    for (; x + kBlock <= width; x += kBlock) {
      Sample block[kBlock];
      ojph::si32 values[kBlock];
      std::memcpy(block, from + std::size_t{x} * sizeof(Sample), sizeof block);
      for (std::uint32_t i = 0; i < kBlock; ++i) values[i] = cut(block[i]);
      std::memcpy(line + x, values, sizeof values);
    }
  }
  for (; x < width; ++x) {
    Sample value;
    std::memcpy(&value, from + std::size_t{x} * stride * sizeof(Sample), sizeof value);
    line[x] = cut(value);
  }
}

// One OpenJPH encode; OpenJPH reports failure by throwing (see InstallOpenJphSink).
Result<std::vector<std::uint8_t>, CodecError> EncodeOnce(std::span<const std::uint8_t> native,
                                                         const FrameInfo& info,
                                                         const Settings& settings) {
  const std::uint32_t components = info.samples_per_pixel;
  const std::uint32_t width = info.columns;
  const bool wide = info.bits_allocated == 16;
  const std::uint32_t mask = sample_bits::LowBitsMask(info.bits_stored);
  const std::uint32_t sign = info.is_signed ? std::uint32_t{1} << (info.bits_stored - 1) : 0;
  const std::uint8_t* bytes = native.data();
  t_openjph_message.clear();
  try {
    ojph::codestream codestream;
    ojph::param_siz siz = codestream.access_siz();
    siz.set_image_extent(ojph::point(width, info.rows));
    siz.set_image_offset(ojph::point(0, 0));
    siz.set_tile_size(ojph::size(width, info.rows));
    siz.set_tile_offset(ojph::point(0, 0));
    siz.set_num_components(components);
    for (std::uint32_t c = 0; c < components; ++c) {
      siz.set_component(c, ojph::point(1, 1), info.bits_stored, info.is_signed);
    }
    ojph::param_cod cod = codestream.access_cod();
    cod.set_num_decomposition(DecompositionsFor(width, info.rows));
    cod.set_block_dims(64, 64);
    if (settings.rpcl) cod.set_progression_order("RPCL");  // PS3.5 A.4.11
    cod.set_color_transform(settings.colour_transform);
    cod.set_reversible(settings.reversible);
    if (!settings.reversible) codestream.access_qcd().set_irrev_quant(settings.step);
    codestream.set_planar(false);

    ojph::mem_outfile out;
    out.open(info.native_bytes() / 2 + 4096);
    codestream.write_headers(&out);
    ojph::ui32 component = 0;
    ojph::line_buf* line = codestream.exchange(nullptr, component);
    for (std::uint32_t row = 0; row < info.rows; ++row) {
      for (std::uint32_t c = 0; c < components; ++c) {
        if (line == nullptr || component >= components || line->size < width) {
          return Fail("HTJ2K encode: OpenJPH asked for an unexpected line");
        }
        const std::size_t first = (static_cast<std::size_t>(row) * width) * components + component;
        if (wide) {
          FillLine<std::uint16_t>(bytes, first, components, width, mask, sign, line->i32);
        } else {
          FillLine<std::uint8_t>(bytes, first, components, width, mask, sign, line->i32);
        }
        line = codestream.exchange(line, component);
      }
    }
    codestream.flush();
    // close() releases the memory file: copy the codestream out first.
    std::vector<std::uint8_t> coded(out.get_data(), out.get_data() + out.tell());
    codestream.close();
    return coded;
  } catch (const std::exception& e) {
    const std::string message = LastOpenJphMessage();
    return Fail("HTJ2K encode failed: " + (message.empty() ? std::string(e.what()) : message));
  } catch (...) {
    const std::string message = LastOpenJphMessage();
    return Fail("HTJ2K encode failed: " + (message.empty() ? "OpenJPH error" : message));
  }
}

std::uint32_t ReadBig(const std::vector<std::uint8_t>& b, std::size_t at, int bytes) {
  std::uint32_t value = 0;
  for (int i = 0; i < bytes; ++i) value = value << 8 | b[at + i];
  return value;
}

// Adds a TLM marker segment (ISO/IEC 15444-1 A.7.1) listing every tile-part's length, just
// before the first SOT: recommended for HTJ2K Lossless RPCL (PS3.5 A.4.11) and not written by
// OpenJPH 0.9.0. The codestream is OpenJPH's own output; any surprise is an error.
bool InsertTlm(std::vector<std::uint8_t>& codestream) {
  const std::size_t size = codestream.size();
  if (size < 4 || codestream[0] != 0xFF || codestream[1] != 0x4F) return false;
  std::size_t at = 2;
  while (at + 4 <= size && !(codestream[at] == 0xFF && codestream[at + 1] == 0x90)) {
    if (codestream[at] != 0xFF) return false;
    at += 2 + ReadBig(codestream, at + 2, 2);  // marker + segment (length includes itself)
  }
  const std::size_t first_sot = at;
  std::vector<std::pair<std::uint16_t, std::uint32_t>> parts;  // tile index, tile-part length
  while (at + 12 <= size && codestream[at] == 0xFF && codestream[at + 1] == 0x90) {
    const std::uint16_t tile = static_cast<std::uint16_t>(ReadBig(codestream, at + 4, 2));
    std::uint32_t length = ReadBig(codestream, at + 6, 4);
    if (length == 0) length = static_cast<std::uint32_t>(size - 2 - at);  // up to EOC
    if (length < 14 || at + length > size) return false;
    parts.emplace_back(tile, length);
    at += length;
  }
  if (parts.empty() || at + 2 != size || codestream[at] != 0xFF || codestream[at + 1] != 0xD9) {
    return false;
  }
  const std::size_t segment = 4 + 6 * parts.size();  // Ltlm Ztlm Stlm + (Ttlm16 Ptlm32)s
  if (segment > 0xFFFF) return false;
  std::vector<std::uint8_t> tlm = {
      0xFF, 0x55, static_cast<std::uint8_t>(segment >> 8), static_cast<std::uint8_t>(segment),
      0x00, 0x60};  // Ztlm 0; Stlm: ST=2 (16-bit Ttlm), SP=1 (32-bit)
  for (const auto& [tile, length] : parts) {
    for (int shift : {8, 0}) tlm.push_back(static_cast<std::uint8_t>(tile >> shift));
    for (int shift : {24, 16, 8, 0}) tlm.push_back(static_cast<std::uint8_t>(length >> shift));
  }
  codestream.insert(codestream.begin() + static_cast<std::ptrdiff_t>(first_sot), tlm.begin(),
                    tlm.end());
  return true;
}

}  // namespace

Htj2kCodec::Htj2kCodec(Mode mode) : mode_(mode) {}

std::string_view Htj2kCodec::transfer_syntax_uid() const {
  switch (mode_) {
    case Mode::kLossless:
      return kHtj2kLosslessUid;
    case Mode::kLosslessRpcl:
      return kHtj2kLosslessRpclUid;
    case Mode::kLossyAllowed:
      break;
  }
  return kHtj2kUid;
}

std::optional<std::string> Htj2kCodec::EncodeRefusal(const FrameInfo& info,
                                                     const EncodeOptions& options) const {
  if (auto refusal = CommonRefusal(info)) return refusal;
  if (options.lossy) {
    if (mode_ != Mode::kLossyAllowed) {
      return "HTJ2K Lossless (" + std::string(transfer_syntax_uid()) + ") cannot code lossy";
    }
    if (info.photometric == Photometric::kPaletteColor) {
      return "lossy HTJ2K would corrupt PALETTE COLOR indices";
    }
    if (!(options.compression_ratio > 1.0)) {
      return "lossy HTJ2K needs a compression ratio above 1";
    }
  }
  return std::nullopt;
}

Result<EncodedFrame, CodecError> Htj2kCodec::Encode(std::span<const std::uint8_t> native,
                                                    const FrameInfo& info,
                                                    const EncodeOptions& options) const {
  if (auto refusal = EncodeRefusal(info, options)) return Fail(*refusal);
  if (native.size() != info.native_bytes()) {
    return Fail("HTJ2K encode: frame is " + std::to_string(native.size()) + " bytes, expected " +
                std::to_string(info.native_bytes()));
  }
  if (!InstallOpenJphSink()) return Fail("HTJ2K encode: cannot redirect OpenJPH's messages");

  Settings settings;
  settings.reversible = !options.lossy;
  settings.rpcl = mode_ == Mode::kLosslessRpcl;
  // PS3.5 8.2.4: RGB goes through RCT (reversible) or ICT (irreversible), labelled to match.
  settings.colour_transform = info.samples_per_pixel == 3 && info.photometric == Photometric::kRgb;

  EncodedFrame frame;
  frame.photometric = settings.colour_transform
                          ? (settings.reversible ? Photometric::kYbrRct : Photometric::kYbrIct)
                          : info.photometric;
  if (settings.reversible) {
    auto coded = EncodeOnce(native, info, settings);
    if (!coded) return coded.error();
    frame.bytes = std::move(*coded);
    if (settings.rpcl && !InsertTlm(frame.bytes)) {
      return Fail("HTJ2K encode: unexpected OpenJPH codestream layout, cannot add TLM");
    }
    return frame;
  }

  // Lossy: search log2(step) for the target size (see the header).
  const double samples = static_cast<double>(info.rows) * info.columns * info.samples_per_pixel;
  const double target = static_cast<double>(info.native_bytes()) / options.compression_ratio;
  const double target_bits_per_sample = 8 * target / samples;
  double log2_step = std::clamp(-7.0 - 0.7 * target_bits_per_sample, kMinLog2Step, kMaxLog2Step);
  double previous_log2_step = 0;
  double previous_size = 0;
  double best_error = 0;
  for (int attempt = 0; attempt < kMaxLossyAttempts; ++attempt) {
    settings.step = static_cast<float>(std::exp2(log2_step));
    auto coded = EncodeOnce(native, info, settings);
    if (!coded) return coded.error();
    const double size = static_cast<double>(coded->size());
    const double error = std::abs(std::log(size / target));
    if (frame.bytes.empty() || error < best_error) {
      frame.bytes = std::move(*coded);
      best_error = error;
    }
    if (std::abs(size / target - 1) <= kRateTolerance) break;
    // Bytes per octave of step: assumed at first, then measured (secant) when it makes sense.
    double slope = -kBitsPerOctave * samples / 8;
    if (attempt > 0 && log2_step != previous_log2_step) {
      const double measured = (size - previous_size) / (log2_step - previous_log2_step);
      if (measured < slope / 8) slope = measured;  // falling, and not absurdly flat
    }
    const double next =
        log2_step + std::clamp((target - size) / slope, -4.0, 4.0);  // at most 16x per try
    previous_log2_step = log2_step;
    previous_size = size;
    log2_step = std::clamp(next, kMinLog2Step, kMaxLog2Step);
    if (log2_step == previous_log2_step) break;
  }
  return frame;
}

Result<DecodedFrame, CodecError> Htj2kCodec::Decode(std::span<const std::uint8_t> encoded,
                                                    const FrameInfo& info) const {
  return DecodeJpeg2000Codestream(encoded, info);
}

std::unique_ptr<FrameCodec> MakeHtj2kLosslessCodec() {
  return std::make_unique<Htj2kCodec>(Htj2kCodec::Mode::kLossless);
}

std::unique_ptr<FrameCodec> MakeHtj2kLosslessRpclCodec() {
  return std::make_unique<Htj2kCodec>(Htj2kCodec::Mode::kLosslessRpcl);
}

std::unique_ptr<FrameCodec> MakeHtj2kCodec() {
  return std::make_unique<Htj2kCodec>(Htj2kCodec::Mode::kLossyAllowed);
}

}  // namespace conduit::codecs
