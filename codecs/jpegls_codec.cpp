#include "codecs/jpegls_codec.h"

#include <charls/charls.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <system_error>
#include <utility>

#include "codecs/sample_bits.h"

namespace conduit::codecs {
namespace {

constexpr std::string_view kLosslessUid = "1.2.840.10008.1.2.4.80";
constexpr std::string_view kNearLosslessUid = "1.2.840.10008.1.2.4.81";

// Native frames are little-endian and CharLS reads and writes host-order samples.
static_assert(std::endian::native == std::endian::little, "native frames are little-endian");

template <typename T>
T Load(const std::uint8_t* bytes, std::size_t index) {
  T value;
  std::memcpy(&value, bytes + index * sizeof(T), sizeof(T));
  return value;
}

template <typename T>
void Store(std::uint8_t* bytes, std::size_t index, T value) {
  std::memcpy(bytes + index * sizeof(T), &value, sizeof(T));
}

// True when no sample has a bit set outside `mask`: the frame can go to CharLS as it is.
template <typename T>
bool FitsMask(std::span<const std::uint8_t> samples, std::uint32_t mask) {
  const std::size_t count = samples.size() / sizeof(T);
  T all = 0;
  for (std::size_t i = 0; i < count; ++i) all |= Load<T>(samples.data(), i);
  return (all & ~static_cast<T>(mask)) == 0;
}

// Native container samples `In` to CharLS samples `Out` (1 byte up to 8 bits, 2 above), keeping
// the low `bits`: JPEG-LS has no signed samples, so a signed sample's bit pattern within Bits
// Stored is coded as unsigned (DICOM practice, as for JPEG lossless). `clamp_near` > 0 first
// clamps signed samples to [min + NEAR, max - NEAR]: in the unsigned bit patterns the signed
// extremes are neighbours (0x7FF, 0x800 for 12 bits), and a near-lossless error across that
// seam would turn the most negative sample into the most positive one.
template <typename In, typename Out>
void CopyMasked(std::span<const std::uint8_t> in, std::uint8_t* out, int bits, int clamp_near) {
  const std::size_t count = in.size() / sizeof(In);
  const std::uint32_t mask = sample_bits::LowBitsMask(bits);
  if (clamp_near == 0) {
    for (std::size_t i = 0; i < count; ++i) {
      Store<Out>(out, i, static_cast<Out>(Load<In>(in.data(), i) & mask));
    }
    return;
  }
  const std::int32_t sign = 1 << (bits - 1);
  const std::int32_t low = -sign + clamp_near;
  const std::int32_t high = sign - 1 - clamp_near;
  for (std::size_t i = 0; i < count; ++i) {
    const std::int32_t value =
        std::clamp(sample_bits::SignExtend(Load<In>(in.data(), i) & mask, bits), low, high);
    Store<Out>(out, i, static_cast<Out>(static_cast<std::uint32_t>(value) & mask));
  }
}

// CharLS samples `In` to native container samples `Out`, masked to Bits Stored and, when signed,
// sign-extended from it. `in` and `out` may be the same buffer when In and Out are the same.
// `plane_stride` != 0 reads planar input (component c of pixel p at c * plane_stride + p) and
// writes interleaved output.
template <typename In, typename Out>
void ToNative(const std::uint8_t* in, std::uint8_t* out, std::size_t pixels, std::size_t components,
              bool planar, int bits_stored, bool is_signed) {
  const std::uint32_t mask = sample_bits::LowBitsMask(bits_stored);
  for (std::size_t p = 0; p < pixels; ++p) {
    for (std::size_t c = 0; c < components; ++c) {
      const std::size_t source = planar ? c * pixels + p : p * components + c;
      const std::uint32_t masked = Load<In>(in, source) & mask;
      const std::int32_t value = is_signed ? sample_bits::SignExtend(masked, bits_stored)
                                           : static_cast<std::int32_t>(masked);
      Store<Out>(out, p * components + c, static_cast<Out>(static_cast<std::uint32_t>(value)));
    }
  }
}

std::optional<std::string> FrameRefusal(const FrameInfo& info) {
  if (auto refusal = sample_bits::LayoutRefusal(info, "JPEG-LS")) return refusal;
  if (info.bits_stored < 2 || info.bits_stored > info.bits_allocated) {
    return "JPEG-LS takes 2 to 16 bits stored within bits allocated, not " +
           std::to_string(info.bits_stored) + " of " + std::to_string(info.bits_allocated);
  }
  return sample_bits::PhotometricRefusal(info, "JPEG-LS");
}

}  // namespace

std::string_view JpegLsCodec::transfer_syntax_uid() const {
  return mode_ == Mode::kLossless ? kLosslessUid : kNearLosslessUid;
}

std::optional<std::string> JpegLsCodec::EncodeRefusal(const FrameInfo& info,
                                                      const EncodeOptions& options) const {
  if (auto refusal = FrameRefusal(info)) return refusal;
  if (mode_ == Mode::kNearLossless) {
    if (!options.lossy) {
      return "JPEG-LS near-lossless is lossy: the route must allow lossy compression";
    }
    // ISO/IEC 14495-1 C.2.3: NEAR <= min(255, MAXVAL / 2).
    const int limit =
        std::min<int>(255, static_cast<int>(sample_bits::LowBitsMask(info.bits_stored) / 2));
    if (options.near_lossless < 0 || options.near_lossless > limit) {
      return "JPEG-LS NEAR must be 0 to " + std::to_string(limit) + " for " +
             std::to_string(info.bits_stored) + "-bit samples, not " +
             std::to_string(options.near_lossless);
    }
  }
  return std::nullopt;
}

Result<EncodedFrame, CodecError> JpegLsCodec::Encode(std::span<const std::uint8_t> native,
                                                     const FrameInfo& info,
                                                     const EncodeOptions& options) const {
  if (auto refusal = EncodeRefusal(info, options)) return CodecError{"JPEG-LS: " + *refusal};
  if (native.size() != info.native_bytes()) {
    return CodecError{"JPEG-LS encode: frame is " + std::to_string(native.size()) +
                      " bytes, expected " + std::to_string(info.native_bytes())};
  }
  const int precision = info.bits_stored;
  const std::uint32_t mask = sample_bits::LowBitsMask(precision);
  const std::size_t coded_bytes = precision > 8 ? 2 : 1;
  const std::size_t samples = native.size() / info.bytes_per_sample();

  // CharLS takes 1-byte samples up to 8 bits and 2-byte ones above; it rejects values above
  // 2^P - 1, so anything outside Bits Stored is masked here (a copy only when needed).
  const int clamp_near = mode_ == Mode::kNearLossless && info.is_signed ? options.near_lossless : 0;
  std::vector<std::uint8_t> scratch;
  std::span<const std::uint8_t> source = native;
  if (info.bytes_per_sample() == 2) {
    if (coded_bytes == 1) {
      scratch.resize(samples);
      CopyMasked<std::uint16_t, std::uint8_t>(native, scratch.data(), precision, clamp_near);
      source = scratch;
    } else if (clamp_near > 0 || !FitsMask<std::uint16_t>(native, mask)) {
      scratch.resize(native.size());
      CopyMasked<std::uint16_t, std::uint16_t>(native, scratch.data(), precision, clamp_near);
      source = scratch;
    }
  } else if (clamp_near > 0 || !FitsMask<std::uint8_t>(native, mask)) {
    scratch.resize(native.size());
    CopyMasked<std::uint8_t, std::uint8_t>(native, scratch.data(), precision, clamp_near);
    source = scratch;
  }

  try {
    charls::jpegls_encoder encoder;
    encoder.frame_info({info.columns, info.rows, precision, info.samples_per_pixel})
        .interleave_mode(info.samples_per_pixel == 3 ? charls::interleave_mode::sample
                                                     : charls::interleave_mode::none)
        .near_lossless(mode_ == Mode::kNearLossless ? options.near_lossless : 0);
    EncodedFrame encoded;
    // CharLS's estimate is the native size plus headers, but incompressible data (noise)
    // codes bigger than that: Golomb codes and the bit stuffed after every 0xFF byte add up to
    // about an eighth more (found with random 8-bit frames). A quarter more covers it.
    const std::size_t estimate = encoder.estimated_destination_size();
    encoded.bytes.resize(estimate + estimate / 4 + 4096);
    encoder.destination(encoded.bytes.data(), encoded.bytes.size());
    encoded.bytes.resize(encoder.encode(source.data(), source.size()));
    encoded.photometric = info.photometric;
    return encoded;
  } catch (const charls::jpegls_error& error) {
    return CodecError{std::string("JPEG-LS encode failed: ") + error.what()};
  } catch (const std::bad_alloc&) {
    return CodecError{"JPEG-LS encode failed: out of memory"};
  }
}

Result<DecodedFrame, CodecError> JpegLsCodec::Decode(std::span<const std::uint8_t> encoded,
                                                     const FrameInfo& info) const {
  if (auto refusal = FrameRefusal(info)) return CodecError{"JPEG-LS decode: " + *refusal};
  // ISO/IEC 14495-1 Annex D: the codestream ends with EOI (DICOM may add a pad byte, PS3.5
  // A.4). Checked first because CharLS 2.4.1, fed a stream cut inside its scan, spins for
  // seconds before failing (cf. team-charls/charls PR #334, an endless loop on invalid input,
  // fixed after 2.4.1); with EOI present it fails fast.
  std::size_t end = encoded.size();
  while (end > 0 && encoded[end - 1] == 0) --end;
  if (end < 2 || encoded[end - 2] != 0xFF || encoded[end - 1] != 0xD9) {
    return CodecError{"JPEG-LS decode: codestream of " + std::to_string(encoded.size()) +
                      " bytes does not end with EOI (truncated?)"};
  }
  encoded = encoded.first(end);
  try {
    charls::jpegls_decoder decoder;
    decoder.source(encoded.data(), encoded.size());
    std::error_code ec;
    decoder.read_spiff_header(ec);
    if (!ec) decoder.read_header(ec);
    if (ec) return CodecError{"JPEG-LS decode: bad header: " + ec.message()};

    // Everything that sizes the output is checked against the dataset before decoding.
    const charls::frame_info& frame = decoder.frame_info();
    if (frame.width != info.columns || frame.height != info.rows ||
        frame.component_count != static_cast<int>(info.samples_per_pixel)) {
      return CodecError{"JPEG-LS decode: codestream is " + std::to_string(frame.width) + "x" +
                        std::to_string(frame.height) + "x" + std::to_string(frame.component_count) +
                        ", dataset says " + std::to_string(info.columns) + "x" +
                        std::to_string(info.rows) + "x" + std::to_string(info.samples_per_pixel)};
    }
    const int precision = frame.bits_per_sample;
    if (precision < info.bits_stored || precision > info.bits_allocated) {
      return CodecError{"JPEG-LS decode: codestream precision " + std::to_string(precision) +
                        " does not fit Bits Stored " + std::to_string(info.bits_stored) +
                        " / Bits Allocated " + std::to_string(info.bits_allocated)};
    }
    const std::size_t coded_bytes = precision > 8 ? 2 : 1;
    const std::size_t pixels = static_cast<std::size_t>(info.rows) * info.columns;
    const std::size_t components = info.samples_per_pixel;
    const std::size_t coded_size = pixels * components * coded_bytes;
    if (decoder.destination_size() != coded_size) {
      return CodecError{"JPEG-LS decode: codestream needs " +
                        std::to_string(decoder.destination_size()) + " bytes, expected " +
                        std::to_string(coded_size)};
    }
    // Interleave mode none codes colour planes one after the other: CharLS returns them planar.
    const bool planar =
        components > 1 && decoder.interleave_mode() == charls::interleave_mode::none;

    DecodedFrame decoded;
    decoded.photometric = info.photometric;
    decoded.pixels.resize(info.native_bytes());
    const bool same_container = coded_bytes == info.bytes_per_sample();
    const int container_bits = static_cast<int>(info.bytes_per_sample()) * 8;
    if (same_container && !planar) {
      decoder.decode(decoded.pixels.data(), decoded.pixels.size());
      // CharLS returns samples within P bits: only a precision above Bits Stored (to mask) or
      // signed samples narrower than the container (to sign-extend) need another pass.
      const bool fix =
          precision > info.bits_stored || (info.is_signed && info.bits_stored < container_bits);
      if (fix) {
        std::uint8_t* data = decoded.pixels.data();
        if (coded_bytes == 1) {
          ToNative<std::uint8_t, std::uint8_t>(data, data, pixels, components, false,
                                               info.bits_stored, info.is_signed);
        } else {
          ToNative<std::uint16_t, std::uint16_t>(data, data, pixels, components, false,
                                                 info.bits_stored, info.is_signed);
        }
      }
      return decoded;
    }
    std::vector<std::uint8_t> coded(coded_size);
    decoder.decode(coded.data(), coded.size());
    std::uint8_t* out = decoded.pixels.data();
    if (coded_bytes == 1 && info.bytes_per_sample() == 1) {
      ToNative<std::uint8_t, std::uint8_t>(coded.data(), out, pixels, components, planar,
                                           info.bits_stored, info.is_signed);
    } else if (coded_bytes == 1) {
      ToNative<std::uint8_t, std::uint16_t>(coded.data(), out, pixels, components, planar,
                                            info.bits_stored, info.is_signed);
    } else {
      ToNative<std::uint16_t, std::uint16_t>(coded.data(), out, pixels, components, planar,
                                             info.bits_stored, info.is_signed);
    }
    return decoded;
  } catch (const charls::jpegls_error& error) {
    return CodecError{std::string("JPEG-LS decode failed: ") + error.what()};
  } catch (const std::bad_alloc&) {
    return CodecError{"JPEG-LS decode failed: out of memory"};
  }
}

std::unique_ptr<FrameCodec> MakeJpegLsLosslessCodec() {
  return std::make_unique<JpegLsCodec>(JpegLsCodec::Mode::kLossless);
}

std::unique_ptr<FrameCodec> MakeJpegLsNearLosslessCodec() {
  return std::make_unique<JpegLsCodec>(JpegLsCodec::Mode::kNearLossless);
}

}  // namespace conduit::codecs
