#include "codecs/codec_registry.h"

#include <memory>

#include "codecs/dcmtk_jpeg_codec.h"
#include "codecs/htj2k_codec.h"
#include "codecs/jpeg2000_codec.h"
#include "codecs/jpeg_baseline_codec.h"
#include "codecs/jpegls_codec.h"
#include "codecs/rle_codec.h"

namespace conduit::codecs {
namespace {

// Built once, on first use; immutable afterwards.
const std::vector<std::unique_ptr<FrameCodec>>& AllCodecs() {
  static const std::vector<std::unique_ptr<FrameCodec>> codecs = [] {
    std::vector<std::unique_ptr<FrameCodec>> made;
    made.push_back(MakeJpegBaselineCodec());
    made.push_back(MakeJpegExtendedCodec());
    made.push_back(MakeJpegLosslessCodec());
    made.push_back(MakeJpegLosslessSv1Codec());
    made.push_back(MakeJpegLsLosslessCodec());
    made.push_back(MakeJpegLsNearLosslessCodec());
    made.push_back(MakeJpeg2000LosslessCodec());
    made.push_back(MakeJpeg2000Codec());
    made.push_back(MakeHtj2kLosslessCodec());
    made.push_back(MakeHtj2kLosslessRpclCodec());
    made.push_back(MakeHtj2kCodec());
    made.push_back(MakeRleLosslessCodec());
    return made;
  }();
  return codecs;
}

}  // namespace

const FrameCodec* FindFrameCodec(std::string_view transfer_syntax_uid) {
  for (const auto& codec : AllCodecs()) {
    if (codec->transfer_syntax_uid() == transfer_syntax_uid) return codec.get();
  }
  return nullptr;
}

std::vector<std::string_view> CodedTransferSyntaxes() {
  std::vector<std::string_view> uids;
  for (const auto& codec : AllCodecs()) uids.push_back(codec->transfer_syntax_uid());
  return uids;
}

}  // namespace conduit::codecs
