// RLE Lossless (1.2.840.10008.1.2.5), our own implementation of PS3.5 Annex G: a 64-byte header
// (segment count and 15 offsets, little-endian uint32) followed by one PackBits segment per byte
// plane: sample 0 most significant byte first, then its less significant byte, then sample 1...
// (G.2). Each row of a plane is coded separately (G.3.1) and each segment is padded to even
// length (G.5).
//
// Takes 1 or 3 samples of 8 or 16 bits allocated. Colour RLE is planar by nature; the codec
// still takes and returns interleaved frames and (de)interleaves itself; the photometric
// interpretation is kept. Samples are masked to Bits Stored before coding (bits above it are
// dropped, not refused); on decode, signed ones are sign-extended from Bits Stored and unsigned
// ones masked to it.
//
// Decode validates the header (segment count = samples x bytes per sample, offsets from 64
// upwards, increasing, within the buffer) and never writes past the frame. A segment that
// decodes to fewer bytes than rows x columns is an error. One that codes more (a stray pad byte
// decoded as a literal, a last run that overshoots) has the excess dropped, as pydicom and GDCM
// do, while the excess stays below min(rows, columns) bytes; a larger excess is an error, since
// a codestream with even one more row, or one more column, than the dataset says codes at least
// that much more. (RLE cannot tell rows from columns: a frame of the same pixel count with rows
// and columns swapped decodes.)
#pragma once

#include <memory>

#include "codecs/frame_codec.h"

namespace conduit::codecs {

class RleCodec final : public FrameCodec {
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

std::unique_ptr<FrameCodec> MakeRleLosslessCodec();  // 1.2.840.10008.1.2.5

}  // namespace conduit::codecs
