#include "router/dimse/command_set.h"

#include <algorithm>
#include <string_view>

namespace conduit::dimse {
namespace {

// Element numbers within group 0000 (PS3.7 E.1-1).
constexpr std::uint16_t kCommandGroupLength = 0x0000;
constexpr std::uint16_t kAffectedSopClassUid = 0x0002;
constexpr std::uint16_t kCommandField = 0x0100;
constexpr std::uint16_t kMessageId = 0x0110;
constexpr std::uint16_t kMessageIdBeingRespondedTo = 0x0120;
constexpr std::uint16_t kPriority = 0x0700;
constexpr std::uint16_t kCommandDataSetType = 0x0800;
constexpr std::uint16_t kStatus = 0x0900;
constexpr std::uint16_t kErrorComment = 0x0902;
constexpr std::uint16_t kAffectedSopInstanceUid = 0x1000;
constexpr std::uint16_t kMoveOriginatorAe = 0x1030;
constexpr std::uint16_t kMoveOriginatorMessageId = 0x1031;

constexpr std::size_t kMaxErrorCommentLength = 64;  // LO

std::uint16_t LoadU16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t LoadU32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
}

std::string TrimValue(std::span<const std::uint8_t> value) {
  std::string_view text(reinterpret_cast<const char*>(value.data()), value.size());
  while (!text.empty() && (text.back() == '\0' || text.back() == ' ')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  return std::string(text);
}

void PutU16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}
void PutU32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void PutElementHeader(std::vector<std::uint8_t>& out, std::uint16_t element, std::uint32_t length) {
  PutU16(out, 0x0000);
  PutU16(out, element);
  PutU32(out, length);
}
void PutUs(std::vector<std::uint8_t>& out, std::uint16_t element, std::uint16_t value) {
  PutElementHeader(out, element, 2);
  PutU16(out, value);
}
// Values have even length (PS3.5 7.1.1): UIDs pad with NUL, text with a space.
void PutText(std::vector<std::uint8_t>& out, std::uint16_t element, std::string_view text,
             char pad) {
  const std::size_t padded = text.size() + (text.size() % 2);
  PutElementHeader(out, element, static_cast<std::uint32_t>(padded));
  out.insert(out.end(), text.begin(), text.end());
  if (padded != text.size()) out.push_back(static_cast<std::uint8_t>(pad));
}

}  // namespace

Result<CommandSet, std::string> ParseCommandSet(std::span<const std::uint8_t> bytes) {
  CommandSet command;
  bool has_command_field = false;
  bool has_data_set_type = false;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    if (bytes.size() - offset < 8) return std::string("truncated element header in command set");
    const std::uint8_t* header = bytes.data() + offset;
    const std::uint16_t group = LoadU16(header);
    const std::uint16_t element = LoadU16(header + 2);
    const std::uint32_t length = LoadU32(header + 4);
    offset += 8;
    if (group != 0x0000) return std::string("command set holds an element outside group 0000");
    if (length > bytes.size() - offset) {
      return std::string("command element length runs past the end of the command set");
    }
    const auto value = bytes.subspan(offset, length);
    offset += length;

    auto read_us = [&](std::optional<std::uint16_t>& target) -> bool {
      if (length != 2) return false;
      target = LoadU16(value.data());
      return true;
    };
    std::optional<std::uint16_t> us;
    switch (element) {
      case kCommandField:
        if (!read_us(us)) return std::string("CommandField is not 2 bytes");
        command.command_field = *us;
        has_command_field = true;
        break;
      case kCommandDataSetType:
        if (!read_us(us)) return std::string("CommandDataSetType is not 2 bytes");
        command.data_set_type = *us;
        has_data_set_type = true;
        break;
      case kMessageId:
        if (!read_us(command.message_id)) return std::string("MessageID is not 2 bytes");
        break;
      case kMessageIdBeingRespondedTo:
        if (!read_us(command.message_id_being_responded_to)) {
          return std::string("MessageIDBeingRespondedTo is not 2 bytes");
        }
        break;
      case kPriority:
        if (!read_us(command.priority)) return std::string("Priority is not 2 bytes");
        break;
      case kStatus:
        if (!read_us(command.status)) return std::string("Status is not 2 bytes");
        break;
      case kMoveOriginatorMessageId:
        if (!read_us(command.move_originator_message_id)) {
          return std::string("MoveOriginatorMessageID is not 2 bytes");
        }
        break;
      case kAffectedSopClassUid:
        command.affected_sop_class_uid = TrimValue(value);
        break;
      case kAffectedSopInstanceUid:
        command.affected_sop_instance_uid = TrimValue(value);
        break;
      case kErrorComment:
        command.error_comment = TrimValue(value);
        break;
      case kMoveOriginatorAe:
        command.move_originator_ae = TrimValue(value);
        break;
      default:
        // Group length and elements of other services: not needed to answer C-STORE/C-ECHO.
        break;
    }
  }
  if (!has_command_field) return std::string("command set without CommandField (0000,0100)");
  if (!has_data_set_type) {
    return std::string("command set without CommandDataSetType (0000,0800)");
  }
  return command;
}

std::vector<std::uint8_t> EncodeCommandSet(const CommandSet& command) {
  std::vector<std::uint8_t> elements;
  elements.reserve(256);
  if (!command.affected_sop_class_uid.empty()) {
    PutText(elements, kAffectedSopClassUid, command.affected_sop_class_uid, '\0');
  }
  PutUs(elements, kCommandField, command.command_field);
  if (command.message_id) PutUs(elements, kMessageId, *command.message_id);
  if (command.message_id_being_responded_to) {
    PutUs(elements, kMessageIdBeingRespondedTo, *command.message_id_being_responded_to);
  }
  if (command.priority) PutUs(elements, kPriority, *command.priority);
  PutUs(elements, kCommandDataSetType, command.data_set_type);
  if (command.status) PutUs(elements, kStatus, *command.status);
  if (!command.error_comment.empty()) {
    PutText(elements, kErrorComment,
            std::string_view(command.error_comment).substr(0, kMaxErrorCommentLength), ' ');
  }
  if (!command.affected_sop_instance_uid.empty()) {
    PutText(elements, kAffectedSopInstanceUid, command.affected_sop_instance_uid, '\0');
  }
  // Elements go in ascending tag order (PS3.5 7.1); a C-STORE from a C-MOVE carries these two.
  if (!command.move_originator_ae.empty()) {
    PutText(elements, kMoveOriginatorAe, command.move_originator_ae, ' ');
  }
  if (command.move_originator_message_id) {
    PutUs(elements, kMoveOriginatorMessageId, *command.move_originator_message_id);
  }

  std::vector<std::uint8_t> out;
  out.reserve(elements.size() + 12);
  PutElementHeader(out, kCommandGroupLength, 4);
  PutU32(out, static_cast<std::uint32_t>(elements.size()));
  out.insert(out.end(), elements.begin(), elements.end());
  return out;
}

CommandSet MakeResponse(const CommandSet& request, std::uint16_t status,
                        std::string error_comment) {
  CommandSet response;
  response.command_field = request.command_field | command_field::kResponseBit;
  response.message_id_being_responded_to = request.message_id.value_or(0);
  response.affected_sop_class_uid = request.affected_sop_class_uid;
  response.affected_sop_instance_uid = request.affected_sop_instance_uid;
  response.data_set_type = kNoDataSet;
  response.status = status;
  response.error_comment = std::move(error_comment);
  return response;
}

}  // namespace conduit::dimse
