// Every frame codec, by the transfer syntax it codes. The codecs are immutable and thread-safe,
// so one instance of each serves the whole process.
#pragma once

#include <string_view>
#include <vector>

#include "codecs/frame_codec.h"

namespace conduit::codecs {

// nullptr when no codec handles `transfer_syntax_uid` (uncompressed syntaxes have none).
const FrameCodec* FindFrameCodec(std::string_view transfer_syntax_uid);
// The UIDs that have a codec, for validating transcode profiles.
std::vector<std::string_view> CodedTransferSyntaxes();

}  // namespace conduit::codecs
