// The JPEG processes libjpeg-turbo cannot code, through DCMTK's dcmjpeg wrappers of the IJG
// library built for 8, 12 and 16 bits per sample:
// - JPEG Extended (Process 2 & 4), 1.2.840.10008.1.2.4.51: lossy, up to 12 bits, unsigned.
//   8-bit colour is coded as YCbCr with 4:2:2 chroma and labelled YBR_FULL_422 (PS3.5 8.2.1);
//   decoding turns it back into RGB. Colour above 8 bits is refused.
// - JPEG Lossless, Non-Hierarchical (Process 14), 1.2.840.10008.1.2.4.57, and its First-Order
//   Prediction subset (Selection Value 1), 1.2.840.10008.1.2.4.70: 1 to 16 bits, interpretation
//   unchanged (no colour transform). Both are encoded with predictor 1, point transform 0.
// Signed samples are coded as their bit pattern masked to BitsStored and sign-extended on decode
// (lossless only; the lossy process refuses them). Input bits above BitsStored are masked off.
#pragma once

#include <memory>

#include "codecs/frame_codec.h"

namespace conduit::codecs {

enum class DcmtkJpegProcess {
  kExtended,     // 1.2.840.10008.1.2.4.51
  kLossless,     // 1.2.840.10008.1.2.4.57
  kLosslessSv1,  // 1.2.840.10008.1.2.4.70
};

class DcmtkJpegCodec final : public FrameCodec {
 public:
  explicit DcmtkJpegCodec(DcmtkJpegProcess process) : process_(process) {}

  std::string_view transfer_syntax_uid() const override;
  std::optional<std::string> EncodeRefusal(const FrameInfo& info,
                                           const EncodeOptions& options) const override;
  Result<EncodedFrame, CodecError> Encode(std::span<const std::uint8_t> native,
                                          const FrameInfo& info,
                                          const EncodeOptions& options) const override;
  Result<DecodedFrame, CodecError> Decode(std::span<const std::uint8_t> encoded,
                                          const FrameInfo& info) const override;

 private:
  bool lossless() const { return process_ != DcmtkJpegProcess::kExtended; }

  DcmtkJpegProcess process_;
};

std::unique_ptr<FrameCodec> MakeJpegExtendedCodec();
std::unique_ptr<FrameCodec> MakeJpegLosslessCodec();
std::unique_ptr<FrameCodec> MakeJpegLosslessSv1Codec();

}  // namespace conduit::codecs
