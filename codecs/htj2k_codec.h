// High-Throughput JPEG 2000 frame codecs (PS3.5 A.4.11, 8.2.4; ISO/IEC 15444-15): HTJ2K Lossless
// (1.2.840.10008.1.2.4.201), HTJ2K Lossless RPCL (1.2.840.10008.1.2.4.202) and HTJ2K
// (1.2.840.10008.1.2.4.203, lossy allowed). Encodes with OpenJPH 0.9.0, decodes with OpenJPEG 2.5.
//
// Encoding writes a bare codestream with HT code-blocks (64x64), one tile, up to five
// decomposition levels, precision = Bits Stored, signed natively; samples with bits set above
// Bits Stored are reduced to Bits Stored (masked, or sign-extended when signed), not refused.
// OpenJPH 0.9.0 codes 1-16 bit samples, signed or not, mono or RGB, reversibly without loss.
//   - Lossless (4.201, 4.202, and 4.203 without options.lossy): reversible 5-3 wavelet, RGB
//     through the reversible colour transform and labelled YBR_RCT.
//   - RPCL (4.202): RPCL progression order plus a TLM marker segment, which OpenJPH 0.9.0
//     cannot write: the codec inserts it into the main header itself.
//   - Lossy (4.203 with options.lossy): irreversible 9-7 wavelet, RGB through the irreversible
//     colour transform and labelled YBR_ICT. OpenJPH has no rate control, only a base
//     quantisation step, so the codec searches for the step that meets options.compression_ratio
//     (native bytes / coded bytes): a first guess log2(step) = -7 - 0.7 * (target bits per
//     sample), fitted on a 12-bit CT-like frame, then at most two secant corrections on
//     log2(step) until the size is within 10% of the target. One encode on CT-like frames
//     (ratios 5-20 land within 4%), three at most on unusual content, where the best of the
//     three is kept (it may miss the target by more than 10%).
//   YBR_FULL is coded without a colour transform; YBR_FULL_422 and lossy PALETTE COLOR are
//   refused.
//
// Decoding uses OpenJPEG (DecodeJpeg2000Codestream), not OpenJPH: OpenJPH 0.9.0 crashes, fails
// assertions (abort) or loops on corrupt codestreams (seen within a few hundred truncations and
// bit flips), while OpenJPEG is fuzzed upstream; OpenJPEG is about 2.2x slower (3.3 ms against
// 1.5 ms CPU for a 512x512 12-bit frame). The same checks against FrameInfo as for JPEG 2000.
//
// OpenJPH reports errors through process-wide message streams (configure_error is a no-op in
// 0.9.0) and then throws: on first use the codec points those streams at a sink that keeps the
// text per thread, so messages become CodecError text and never reach stdout/stderr.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "codecs/frame_codec.h"

namespace conduit::codecs {

inline constexpr std::string_view kHtj2kLosslessUid = "1.2.840.10008.1.2.4.201";
inline constexpr std::string_view kHtj2kLosslessRpclUid = "1.2.840.10008.1.2.4.202";
inline constexpr std::string_view kHtj2kUid = "1.2.840.10008.1.2.4.203";

class Htj2kCodec final : public FrameCodec {
 public:
  enum class Mode { kLossless, kLosslessRpcl, kLossyAllowed };
  explicit Htj2kCodec(Mode mode);

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

std::unique_ptr<FrameCodec> MakeHtj2kLosslessCodec();      // 1.2.840.10008.1.2.4.201
std::unique_ptr<FrameCodec> MakeHtj2kLosslessRpclCodec();  // 1.2.840.10008.1.2.4.202
std::unique_ptr<FrameCodec> MakeHtj2kCodec();              // 1.2.840.10008.1.2.4.203

}  // namespace conduit::codecs
