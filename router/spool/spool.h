// The durable spool on disk:
//   <directory>/incoming/<id>.part   instances being received (never complete)
//   <directory>/instances/<id>.dcm   committed Part 10 files, each carrying its spool record
// Ids are generated here (time and a counter); no path is ever built from a DICOM value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "codecs/result.h"
#include "router/config/config.h"
#include "router/spool/incoming_instance.h"
#include "router/spool/part10_header.h"
#include "router/spool/spool_usage.h"
#include "rules/association_facts.h"

namespace conduit::spool {

struct RecoverySummary {
  std::uint64_t committed_instances = 0;
  std::uint64_t committed_bytes = 0;
  std::uint64_t removed_partial_files = 0;  // receptions cut short by a crash or kill
};

class Spool {
 public:
  explicit Spool(const config::SpoolConfig& config);  // creates the directories; throws on failure

  // Run once at startup, before the listener opens: drops files of receptions that never
  // completed (their senders were never told success) and counts what is committed.
  RecoverySummary Recover();

  // Creates the .part file and writes the Part 10 header. An error text when the file cannot
  // be created or written (disk full, permissions).
  Result<std::unique_ptr<IncomingInstance>, std::string> Begin(const Part10Identity& identity,
                                                               const rules::AssociationFacts& facts,
                                                               std::uint64_t association_id);

  SpoolUsage& usage() { return usage_; }
  const std::filesystem::path& incoming_directory() const { return incoming_directory_; }
  const std::filesystem::path& committed_directory() const { return committed_directory_; }

 private:
  std::string NextSpoolId();

  config::SpoolConfig config_;
  std::filesystem::path incoming_directory_;
  std::filesystem::path committed_directory_;
  SpoolUsage usage_;
  std::uint64_t id_counter_seed_;
};

}  // namespace conduit::spool
