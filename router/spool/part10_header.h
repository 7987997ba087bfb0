// Builds the 128-byte preamble, "DICM" and File Meta Information group (PS3.10 7.1) written in
// front of the dataset bytes exactly as they arrived. The dataset itself is never re-encoded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "router/net/implementation_identity.h"

namespace conduit::spool {

// Names who wrote (0002,0102) PrivateInformation: the spool record.
inline constexpr std::string_view kPrivateInformationCreatorUid =
    "2.25.263021359236810995915724165750027048378.1";

// Room reserved for the spool record inside (0002,0102). The record is written when the
// instance is committed, into this fixed slot, so the meta group never changes length.
inline constexpr std::size_t kSpoolRecordCapacity = 8192;

struct Part10Identity {
  std::string sop_class_uid;        // from the C-STORE command's AffectedSOPClassUID
  std::string sop_instance_uid;     // from AffectedSOPInstanceUID
  std::string transfer_syntax_uid;  // the negotiated one: the dataset's own encoding
  std::string calling_ae;           // (0002,0016) source and (0002,0017) sending AE
  std::string called_ae;            // (0002,0018) receiving AE
};

struct Part10Header {
  std::vector<std::uint8_t> bytes;
  std::size_t record_offset = 0;  // file offset of the reserved spool-record slot, if any
};

// With `reserve_spool_record` false, the header of a file that leaves the router (an archive's
// copy): no (0002,0100)/(0002,0102), which would carry the router's private spool record.
Part10Header BuildPart10Header(const Part10Identity& identity, bool reserve_spool_record = true);

}  // namespace conduit::spool

#include <filesystem>

#include "codecs/result.h"

namespace conduit::spool {

// Where the dataset starts in a Part 10 file: after the preamble, "DICM" and the meta group,
// whose length (0002,0000) says how long it is (PS3.10 7.1). An error text for a file that is
// not Part 10 or cannot be read.
Result<std::uint64_t, std::string> ReadDatasetOffset(const std::filesystem::path& path);

}  // namespace conduit::spool
