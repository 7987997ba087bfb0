// Internal to the frame codecs (no public header includes it): the Bits Stored arithmetic and
// the frame checks that every codec taking native 8/16-bit frames repeats.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "codecs/frame_codec.h"

namespace conduit::codecs::sample_bits {

// The low `bits` set: what survives of a sample within Bits Stored. 32 is allowed so callers
// need not special-case a full-width container.
constexpr std::uint32_t LowBitsMask(int bits) { return bits >= 32 ? ~0u : (1u << bits) - 1u; }

// A two's-complement value of `bits` bits (already masked to them) widened to 32 bits.
constexpr std::int32_t SignExtend(std::uint32_t masked, int bits) {
  const auto sign = static_cast<std::int32_t>(1u << (bits - 1));
  return (static_cast<std::int32_t>(masked) ^ sign) - sign;
}

// PS3.5 Table 8.2.3-1 for a native frame (YBR_FULL_422 native data is subsampled: not a frame
// this interface carries).
inline bool PhotometricFitsNativeFrame(const FrameInfo& info) {
  if (info.samples_per_pixel == 1) {
    return info.photometric == Photometric::kMonochrome1 ||
           info.photometric == Photometric::kMonochrome2 ||
           info.photometric == Photometric::kPaletteColor;
  }
  return info.photometric == Photometric::kRgb || info.photometric == Photometric::kYbrFull;
}

// Why `codec` cannot take a frame of this size, sample count or container, if it cannot: 1 to
// 65535 rows and columns (DICOM US), 1 or 3 samples, 8 or 16 bits allocated.
inline std::optional<std::string> LayoutRefusal(const FrameInfo& info, std::string_view codec) {
  const std::string name(codec);
  if (info.rows == 0 || info.columns == 0) return name + " needs at least one row and one column";
  if (info.rows > 65535 || info.columns > 65535) {
    return name + " frames here are at most 65535 rows and columns (DICOM US)";
  }
  if (info.samples_per_pixel != 1 && info.samples_per_pixel != 3) {
    return name + " takes 1 or 3 samples per pixel, not " + std::to_string(info.samples_per_pixel);
  }
  if (info.bits_allocated != 8 && info.bits_allocated != 16) {
    return name + " takes 8 or 16 bits allocated, not " + std::to_string(info.bits_allocated);
  }
  return std::nullopt;
}

inline std::optional<std::string> PhotometricRefusal(const FrameInfo& info,
                                                     std::string_view codec) {
  if (PhotometricFitsNativeFrame(info)) return std::nullopt;
  return std::string(codec) + " does not take " + std::string(PhotometricName(info.photometric)) +
         " with " + std::to_string(info.samples_per_pixel) + " samples per pixel";
}

}  // namespace conduit::codecs::sample_bits
