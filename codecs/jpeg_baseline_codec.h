// JPEG Baseline (Process 1), 1.2.840.10008.1.2.4.50, with libjpeg-turbo's TurboJPEG API: 8-bit
// lossy only. Monochrome frames become greyscale JPEG and keep their interpretation; RGB frames
// are coded as YCbCr with 4:2:2 chroma subsampling and labelled YBR_FULL_422 (PS3.5 8.2.1,
// PS3.3 C.7.6.3.1.2). Decoding turns any colour frame back into RGB.
#pragma once

#include <memory>

#include "codecs/frame_codec.h"

namespace conduit::codecs {

class JpegBaselineCodec final : public FrameCodec {
 public:
  std::string_view transfer_syntax_uid() const override;
  std::optional<std::string> EncodeRefusal(const FrameInfo& info,
                                           const EncodeOptions& options) const override;
  Result<EncodedFrame, CodecError> Encode(std::span<const std::uint8_t> native,
                                          const FrameInfo& info,
                                          const EncodeOptions& options) const override;
  Result<DecodedFrame, CodecError> Decode(std::span<const std::uint8_t> encoded,
                                          const FrameInfo& info) const override;
};

std::unique_ptr<FrameCodec> MakeJpegBaselineCodec();

}  // namespace conduit::codecs
