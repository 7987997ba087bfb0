// DIMSE command sets (PS3.7 section 9, E.1): group 0000 elements, always Implicit VR Little
// Endian. Parse from the bytes of a reassembled command, encode for responses and requests.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codecs/result.h"

namespace conduit::dimse {

namespace command_field {
inline constexpr std::uint16_t kCStoreRq = 0x0001;
inline constexpr std::uint16_t kCStoreRsp = 0x8001;
inline constexpr std::uint16_t kCEchoRq = 0x0030;
inline constexpr std::uint16_t kCEchoRsp = 0x8030;
inline constexpr std::uint16_t kResponseBit = 0x8000;
}  // namespace command_field

// PS3.7 E.1: CommandDataSetType 0x0101 means "no data set"; any other value means one follows.
inline constexpr std::uint16_t kNoDataSet = 0x0101;
inline constexpr std::uint16_t kDataSetPresent = 0x0000;

struct CommandSet {
  std::uint16_t command_field = 0;
  std::optional<std::uint16_t> message_id;
  std::optional<std::uint16_t> message_id_being_responded_to;
  std::string affected_sop_class_uid;
  std::string affected_sop_instance_uid;
  std::optional<std::uint16_t> priority;
  std::uint16_t data_set_type = kNoDataSet;
  std::optional<std::uint16_t> status;
  std::string error_comment;
  std::string move_originator_ae;
  std::optional<std::uint16_t> move_originator_message_id;

  bool has_data_set() const { return data_set_type != kNoDataSet; }
};

// Refuses anything outside group 0000, lengths past the end, and known elements of the wrong
// size; a command without CommandField or CommandDataSetType is refused too.
Result<CommandSet, std::string> ParseCommandSet(std::span<const std::uint8_t> bytes);

std::vector<std::uint8_t> EncodeCommandSet(const CommandSet& command);

// The response to `request` with `status`, echoing what PS3.7 9.3 requires.
CommandSet MakeResponse(const CommandSet& request, std::uint16_t status,
                        std::string error_comment = {});

}  // namespace conduit::dimse
