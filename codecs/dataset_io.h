// Reading and writing a dataset (no meta header) in any registry transfer syntax with DCMTK,
// including those DCMTK 3.6.7 does not know (HTJ2K): their encoding rules are those of another
// encapsulated Explicit VR Little Endian syntax, so DCMTK parses and writes them under that
// stand-in; the real UID only ever appears in a meta header or a presentation context.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "codecs/result.h"

class DcmDataset;

namespace conduit::codecs {

// The dataset that starts `offset` bytes into `file` and is encoded in `transfer_syntax_uid`.
Result<std::unique_ptr<DcmDataset>, std::string> ReadDataset(const std::filesystem::path& file,
                                                             std::uint64_t offset,
                                                             std::string_view transfer_syntax_uid);

// `dataset` encoded in `transfer_syntax_uid`. For an encapsulated syntax the pixel data must
// already be in it (see TranscodePixelData); for an uncompressed one it must be native.
Result<std::vector<std::uint8_t>, std::string> WriteDataset(DcmDataset& dataset,
                                                            std::string_view transfer_syntax_uid);

}  // namespace conduit::codecs
