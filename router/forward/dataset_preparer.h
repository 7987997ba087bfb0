// Makes the dataset a destination gets when the spooled bytes cannot be streamed as they are:
// the route edits it, the destination accepted only another uncompressed syntax, or the route
// (or the destination) needs another encoding, which the codecs produce. Runs on the transcode
// pool, never on a network thread. A result that needed a codec is spooled durably under
// <spool>/transcoded/ before it is sent, so a retry sends it again without transcoding again;
// cheaper ones (edits, Explicit <-> Implicit VR) are redone in memory. Prepare is CPU work;
// Persist, the durable write of a transcoded result, is disk work on its own threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "codecs/dataset_transcoder.h"
#include "codecs/result.h"
#include "router/config/config.h"
#include "router/forward/queued_instance.h"

namespace conduit::forward {

// Whether an instance stored in `stored_uid` can be sent in `target_uid`: as it is, converted
// between uncompressed syntaxes, or through the codecs (decoding what is stored and, for a
// compressed target, encoding it). Lossy targets only through a profile that says lossy.
bool CanProduce(const std::string& stored_uid, const std::string& target_uid,
                const config::TranscodeProfile* profile);

struct PreparedDataset {
  std::string transfer_syntax_uid;
  std::string sop_instance_uid;                       // new when the transcode was lossy
  std::filesystem::path file;                         // a spooled transcoded Part 10 file, or empty
  std::uint64_t dataset_offset = 0;                   // in `file`
  std::uint64_t dataset_bytes = 0;                    // in `file`
  std::vector<std::uint8_t> bytes;                    // the dataset itself when it is not spooled
  std::optional<codecs::TranscodeOutcome> transcode;  // when a codec ran (not when reused)
  bool needs_persisting = false;                      // a codec ran: Persist() before sending
};

class DatasetPreparer {
 public:
  explicit DatasetPreparer(std::filesystem::path spool_directory);

  // For `destination`, in `target_uid`; `profile` is the route's transcode profile, if any.
  Result<PreparedDataset, std::string> Prepare(const QueuedInstance& item,
                                               const std::string& destination,
                                               const std::string& target_uid,
                                               const config::TranscodeProfile* profile) const;
  // Writes a transcoded dataset durably (Part 10 file, fdatasync, rename) and points `prepared`
  // at it, releasing the memory. Separate from Prepare so that the CPU pool's workers do not
  // wait for the disk. An error leaves `prepared` in memory, still sendable.
  std::optional<std::string> Persist(const QueuedInstance& item, const std::string& destination,
                                     PreparedDataset& prepared) const;
  // Removes the transcoded files of a spooled instance (all its destinations are done).
  void Forget(const std::string& spool_id, const std::vector<std::string>& destinations) const;
  // At startup: removes transcoded files whose instance is no longer in the spool.
  void RemoveOrphans(const std::function<bool(const std::string& spool_id)>& is_spooled) const;

 private:
  std::filesystem::path TranscodedPath(const std::string& spool_id,
                                       const std::string& destination) const;

  std::filesystem::path directory_;  // <spool>/transcoded
  std::filesystem::path uid_map_;    // <spool>/lossy-uids.tsv: original -> new SOP Instance UIDs
};

}  // namespace conduit::forward
