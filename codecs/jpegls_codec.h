// JPEG-LS frame codecs on CharLS (PS3.5 A.4.3, 8.2.3; ISO/IEC 14495-1): Lossless
// (1.2.840.10008.1.2.4.80) and Near-Lossless (1.2.840.10008.1.2.4.81).
//
// Takes 1 or 3 samples of 2-16 bits stored (8 or 16 allocated); colour is coded sample-
// interleaved without a colour transform, so the photometric interpretation stays as given
// (PS3.5 Table 8.2.3-1 allows MONOCHROME1/2, PALETTE COLOR, RGB and YBR_FULL). JPEG-LS has no
// signed samples: the bit pattern masked to Bits Stored is coded as unsigned and sign-extended
// again on decode. Samples with bits set above Bits Stored are masked, not refused.
//
// Lossless always codes with NEAR = 0: options.lossy does not matter (a lossless syntax cannot
// be "too lossless"). Near-Lossless codes with NEAR = options.near_lossless (0 to
// min(255, (2^BitsStored - 1) / 2), ISO/IEC 14495-1 C.2.3) and is refused unless options.lossy
// is set, so that no route loses data without saying so. Every sample's error is at most NEAR,
// with one exception for signed samples: coded as unsigned bit patterns, the most negative and
// the most positive values are neighbours (0x800 and 0x7FF for 12 bits), and an error across
// that seam would turn -2048 (typical CT padding) into +2047. Signed samples are therefore
// clamped to [min + NEAR, max - NEAR] before coding, so those within NEAR of either extreme may
// be off by up to 2 x NEAR; all others stay within NEAR.
//
// Decode accepts any interleave mode and CharLS's HP colour transforms, and checks the frame
// header (width, height, components, precision P) against FrameInfo before decoding: P must lie
// in [Bits Stored, Bits Allocated] (some encoders write P = Bits Allocated; the samples are
// masked / sign-extended from Bits Stored either way). The codestream must end with EOI
// (trailing zero padding allowed): CharLS 2.4.1 spins for seconds on streams cut short.
#pragma once

#include <memory>

#include "codecs/frame_codec.h"

namespace conduit::codecs {

class JpegLsCodec final : public FrameCodec {
 public:
  enum class Mode { kLossless, kNearLossless };
  explicit JpegLsCodec(Mode mode) : mode_(mode) {}

  std::string_view transfer_syntax_uid() const override;
  std::optional<std::string> EncodeRefusal(const FrameInfo& info,
                                           const EncodeOptions& options) const override;
  Result<EncodedFrame, CodecError> Encode(std::span<const std::uint8_t> native,
                                          const FrameInfo& info,
                                          const EncodeOptions& options) const override;
  Result<DecodedFrame, CodecError> Decode(std::span<const std::uint8_t> encoded,
                                          const FrameInfo& info) const override;

 private:
  Mode mode_;
};

std::unique_ptr<FrameCodec> MakeJpegLsLosslessCodec();      // 1.2.840.10008.1.2.4.80
std::unique_ptr<FrameCodec> MakeJpegLsNearLosslessCodec();  // 1.2.840.10008.1.2.4.81

}  // namespace conduit::codecs
