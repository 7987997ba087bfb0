// Re-encodes a spooled instance's dataset for a destination when it cannot be streamed from the
// spool as it is: the route has edits, or the destination accepted only another uncompressed
// transfer syntax. Compressed targets are the transcoding pipeline's job.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "codecs/result.h"
#include "rules/rule_set.h"

namespace conduit::forward {

// Whether EncodeDataset can write a dataset stored in `stored_uid` in `target_uid`: the same
// syntax (edits only), or between the uncompressed little-endian syntaxes.
bool CanEncode(const std::string& stored_uid, const std::string& target_uid);

// The dataset (no meta header) of the Part 10 `file`, with `edits` applied, in `target_uid`.
Result<std::vector<std::uint8_t>, std::string> EncodeDataset(
    const std::filesystem::path& file, const std::string& target_uid,
    const std::vector<rules::TagEdit>& edits);

}  // namespace conduit::forward
