// Rewrites a dataset's pixel data from one transfer syntax to another, frame by frame, through
// the frame codecs: native or encapsulated in, native or encapsulated out (one fragment per
// frame, with a Basic Offset Table), and the Image Pixel attributes that go with it. Lossy
// output follows PS3.3 C.7.6.1.1.5: Lossy Image Compression "01", the ratio and method appended,
// and a new SOP Instance UID (the caller logs the mapping).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "codecs/frame_codec.h"
#include "codecs/result.h"

class DcmDataset;

namespace conduit::codecs {

struct TranscodeOutcome {
  std::size_t frames = 0;
  std::uint64_t native_bytes = 0;   // of all frames, decoded
  std::uint64_t encoded_bytes = 0;  // of all frames, as written (native: = native_bytes)
  bool lossy = false;               // this transcode lost information
  std::string original_sop_instance_uid;
  std::string sop_instance_uid;  // new when lossy, else the original
  double decode_seconds = 0;
  double encode_seconds = 0;
};

// Errors that start with this say the target codec does not take such images (bit depth,
// samples, lossy option), as opposed to a failure (a corrupt frame, an inconsistent dataset).
inline constexpr std::string_view kRefusedPrefix = "refused: ";

// Lossy output only when options.lossy; a lossy-only target syntax without it is refused. A
// lossy result gets a new SOP Instance UID under 2.25 (PS3.5 B.2: from a random UUID).
Result<TranscodeOutcome, std::string> TranscodePixelData(DcmDataset& dataset,
                                                         std::string_view source_uid,
                                                         std::string_view target_uid,
                                                         const EncodeOptions& options);

// "2.25." and a random 128-bit number in decimal: unique without a registered root.
std::string NewUuidDerivedUid();

}  // namespace conduit::codecs
