// A folder destination: each instance becomes a Part 10 file at <path>/<key>, the key from the
// destination's key template. Written to a temporary name in the same directory, flushed, then
// renamed into place and the directory flushed, so that a reader (or a crash) never sees half a
// file; a retry simply replaces the file.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "router/forward/archive_sender.h"
#include "router/forward/object_key.h"

namespace conduit::forward {

class FolderSender final : public ArchiveSender {
 public:
  FolderSender(std::filesystem::path directory, KeyTemplate key_template);

  ArchiveDelivery Deliver(const std::vector<ArchiveObject>& objects) override;
  std::optional<std::string> Probe() override;

 private:
  // An error text, or nullopt when the file is durably in place.
  std::optional<std::string> Write(const ArchiveObject& object, const std::string& key) const;

  std::filesystem::path directory_;
  KeyTemplate key_template_;
};

}  // namespace conduit::forward
