// JPEG 2000 frame codecs on OpenJPEG 2.5 (PS3.5 A.4.4, 8.2.4; ISO/IEC 15444-1): Lossless Only
// (1.2.840.10008.1.2.4.90) and JPEG 2000 (1.2.840.10008.1.2.4.91, lossy allowed).
//
// Encoding writes a bare J2K codestream (no JP2 boxes, PS3.5 A.4.4) with one quality layer and
// one tile. Samples are coded at precision = Bits Stored, signed natively when PixelRepresentation
// is 1; samples with bits set above Bits Stored are reduced to Bits Stored (masked, or sign-
// extended from Bits Stored when signed), not refused.
//   - Lossless (4.90, and 4.91 without options.lossy): reversible 5-3 wavelet. Three-sample RGB
//     frames use the reversible colour transform and are labelled YBR_RCT.
//   - Lossy (4.91 with options.lossy): irreversible 9-7 wavelet, rate from
//     options.compression_ratio (native bytes / coded bytes). RGB frames use the irreversible
//     colour transform and are labelled YBR_ICT.
//   Other three-sample interpretations (YBR_FULL) are coded without a colour transform and keep
//   their label; YBR_FULL_422 and lossy PALETTE COLOR are refused (PS3.5 8.2.4).
//
// Decoding accepts a J2K codestream (or, leniently, a JP2 file) for either syntax and checks its
// size, components, precision (1..Bits Allocated; samples are then reduced to Bits Stored) and
// signedness against FrameInfo before decoding; OpenJPEG undoes RCT/ICT itself, so YBR_RCT /
// YBR_ICT frames decode to RGB. OpenJPEG's messages go into the CodecError text, never stderr.
// Every call runs on the calling thread only (the pipeline parallelises across frames).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "codecs/frame_codec.h"

namespace conduit::codecs {

inline constexpr std::string_view kJpeg2000LosslessUid = "1.2.840.10008.1.2.4.90";
inline constexpr std::string_view kJpeg2000Uid = "1.2.840.10008.1.2.4.91";

class Jpeg2000Codec final : public FrameCodec {
 public:
  enum class Mode { kLosslessOnly, kLossyAllowed };
  explicit Jpeg2000Codec(Mode mode) : mode_(mode) {}

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

std::unique_ptr<FrameCodec> MakeJpeg2000LosslessCodec();  // 1.2.840.10008.1.2.4.90
std::unique_ptr<FrameCodec> MakeJpeg2000Codec();          // 1.2.840.10008.1.2.4.91

// Decodes one JPEG 2000 codestream (Part 1 or HTJ2K, Part 15) with OpenJPEG and validates it
// against `info` as described above: shared by the JPEG 2000 and HTJ2K codecs.
Result<DecodedFrame, CodecError> DecodeJpeg2000Codestream(std::span<const std::uint8_t> encoded,
                                                          const FrameInfo& info);

}  // namespace conduit::codecs
