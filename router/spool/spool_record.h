// The durable record of one spooled instance: how it arrived and what routing needs from its
// header. It lives inside the instance's own Part 10 file, in (0002,0102) PrivateInformation, so
// the file and its record become durable with a single fdatasync and can never disagree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/association_facts.h"
#include "rules/rule_set.h"

namespace conduit::spool {

struct SpoolRecord {
  std::string spool_id;  // also the file name stem; never derived from DICOM values
  std::uint64_t association_id = 0;
  rules::AssociationFacts facts;
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string transfer_syntax_uid;
  std::string study_instance_uid;
  std::string series_instance_uid;
  std::string modality;
  std::uint64_t dataset_bytes = 0;
  // The routing decided when the instance arrived, kept so that a rules reload never changes
  // where an acknowledged instance goes. Edit targets are kept as written (target_text,
  // source_text); their parsed paths are not stored.
  std::uint64_t rules_generation = 0;  // 0: no rules were loaded
  std::vector<rules::Route> routes;
};

// "key=value" lines, the first one the format version; control characters in values are
// replaced, so a hostile attribute value cannot forge a line.
std::string SerializeSpoolRecord(const SpoolRecord& record);
// nullopt when the text is not a record of a version we understand.
std::optional<SpoolRecord> ParseSpoolRecord(std::string_view text);

}  // namespace conduit::spool
