#include "router/net/pdu_codec.h"

#include <algorithm>
#include <set>
#include <string_view>

namespace conduit::net {
namespace {

// PS3.8 9.3.2, 9.3.3: item types inside A-ASSOCIATE-RQ/AC.
constexpr std::uint8_t kApplicationContextItem = 0x10;
constexpr std::uint8_t kPresentationContextRqItem = 0x20;
constexpr std::uint8_t kPresentationContextAcItem = 0x21;
constexpr std::uint8_t kAbstractSyntaxSubItem = 0x30;
constexpr std::uint8_t kTransferSyntaxSubItem = 0x40;
constexpr std::uint8_t kUserInformationItem = 0x50;
constexpr std::uint8_t kMaxLengthSubItem = 0x51;
constexpr std::uint8_t kImplementationClassUidSubItem = 0x52;
constexpr std::uint8_t kRoleSelectionSubItem = 0x54;
constexpr std::uint8_t kImplementationVersionNameSubItem = 0x55;

constexpr std::size_t kAssociateFixedFieldsSize = 68;  // version, reserved, 2 AEs, 32 reserved
constexpr std::size_t kAeTitleSize = 16;
constexpr std::size_t kMaxUidLength = 64;
constexpr std::size_t kMaxImplementationVersionNameLength = 16;

PduError Invalid(std::string detail) {
  return PduError{AbortReason::kInvalidPduParameterValue, std::move(detail)};
}

// A bounds-checked big-endian reader over a byte span.
class ByteReader {
 public:
  explicit ByteReader(ByteView bytes) : bytes_(bytes) {}
  std::size_t remaining() const { return bytes_.size() - position_; }
  bool empty() const { return remaining() == 0; }

  bool ReadU8(std::uint8_t& value) {
    if (remaining() < 1) return false;
    value = bytes_[position_++];
    return true;
  }
  bool ReadU16(std::uint16_t& value) {
    if (remaining() < 2) return false;
    value = static_cast<std::uint16_t>((bytes_[position_] << 8) | bytes_[position_ + 1]);
    position_ += 2;
    return true;
  }
  bool ReadU32(std::uint32_t& value) {
    if (remaining() < 4) return false;
    value = (std::uint32_t{bytes_[position_]} << 24) |
            (std::uint32_t{bytes_[position_ + 1]} << 16) |
            (std::uint32_t{bytes_[position_ + 2]} << 8) | std::uint32_t{bytes_[position_ + 3]};
    position_ += 4;
    return true;
  }
  bool ReadSpan(std::size_t length, ByteView& out) {
    if (remaining() < length) return false;
    out = bytes_.subspan(position_, length);
    position_ += length;
    return true;
  }

 private:
  ByteView bytes_;
  std::size_t position_ = 0;
};

std::string_view AsChars(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// UIDs may be padded with a NUL (PS3.5 9.1); some implementations pad with spaces.
std::string TrimUid(ByteView bytes) {
  std::string_view text = AsChars(bytes);
  while (!text.empty() && (text.back() == '\0' || text.back() == ' ')) text.remove_suffix(1);
  return std::string(text);
}

// PS3.8 9.3.2: leading and trailing spaces of an AE title are not significant.
std::string TrimAe(ByteView bytes) {
  std::string_view text = AsChars(bytes);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\0')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  return std::string(text);
}

bool IsValidUid(std::string_view uid) {
  if (uid.empty() || uid.size() > kMaxUidLength) return false;
  return std::all_of(uid.begin(), uid.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

struct Item {
  std::uint8_t type = 0;
  ByteView value;
};

// Reads one item or sub-item header (type, reserved, 16-bit length) and its value.
std::optional<PduError> ReadItem(ByteReader& reader, Item& item) {
  std::uint8_t reserved = 0;
  std::uint16_t length = 0;
  if (!reader.ReadU8(item.type) || !reader.ReadU8(reserved) || !reader.ReadU16(length)) {
    return Invalid("truncated item header");
  }
  if (!reader.ReadSpan(length, item.value)) {
    return Invalid("item 0x" + std::to_string(item.type) + " length " + std::to_string(length) +
                   " runs past the end of its PDU");
  }
  return std::nullopt;
}

std::optional<PduError> ReadUidItem(const Item& item, std::string& uid, std::string_view what) {
  uid = TrimUid(item.value);
  if (!IsValidUid(uid)) return Invalid(std::string(what) + " is not a valid UID");
  return std::nullopt;
}

std::optional<PduError> ParsePresentationContextRq(ByteView value, PresentationContextRq& context) {
  ByteReader reader(value);
  std::uint8_t reserved = 0;
  if (!reader.ReadU8(context.id) || !reader.ReadU8(reserved) || !reader.ReadU8(reserved) ||
      !reader.ReadU8(reserved)) {
    return Invalid("truncated presentation context item");
  }
  // PS3.8 9.3.2.2: presentation context IDs are odd integers between 1 and 255.
  if (context.id % 2 == 0) return Invalid("presentation context ID is even");
  bool has_abstract_syntax = false;
  while (!reader.empty()) {
    Item sub_item;
    if (auto error = ReadItem(reader, sub_item)) return error;
    if (sub_item.type == kAbstractSyntaxSubItem) {
      if (has_abstract_syntax) return Invalid("two abstract syntaxes in one presentation context");
      if (auto error = ReadUidItem(sub_item, context.abstract_syntax, "abstract syntax")) {
        return error;
      }
      has_abstract_syntax = true;
    } else if (sub_item.type == kTransferSyntaxSubItem) {
      std::string uid;
      if (auto error = ReadUidItem(sub_item, uid, "transfer syntax")) return error;
      context.transfer_syntaxes.push_back(std::move(uid));
    } else {
      return PduError{AbortReason::kUnrecognizedPduParameter,
                      "unknown sub-item in presentation context"};
    }
  }
  if (!has_abstract_syntax) return Invalid("presentation context without abstract syntax");
  if (context.transfer_syntaxes.empty()) {
    return Invalid("presentation context without transfer syntax");
  }
  return std::nullopt;
}

std::optional<PduError> ParsePresentationContextAc(ByteView value, PresentationContextAc& context) {
  ByteReader reader(value);
  std::uint8_t reserved = 0;
  std::uint8_t result = 0;
  if (!reader.ReadU8(context.id) || !reader.ReadU8(reserved) || !reader.ReadU8(result) ||
      !reader.ReadU8(reserved)) {
    return Invalid("truncated presentation context item");
  }
  if (result > static_cast<std::uint8_t>(ContextResult::kTransferSyntaxesNotSupported)) {
    return Invalid("presentation context result out of range");
  }
  context.result = static_cast<ContextResult>(result);
  while (!reader.empty()) {
    Item sub_item;
    if (auto error = ReadItem(reader, sub_item)) return error;
    if (sub_item.type != kTransferSyntaxSubItem) {
      return PduError{AbortReason::kUnrecognizedPduParameter,
                      "unknown sub-item in accepted presentation context"};
    }
    context.transfer_syntax = TrimUid(sub_item.value);
  }
  if (context.result == ContextResult::kAcceptance && !IsValidUid(context.transfer_syntax)) {
    return Invalid("accepted presentation context without a valid transfer syntax");
  }
  return std::nullopt;
}

struct UserInformation {
  std::uint32_t max_pdu_length = 0;
  std::string implementation_class_uid;
  std::string implementation_version_name;
  std::vector<RoleSelection> role_selections;
};

std::optional<PduError> ParseUserInformation(ByteView value, UserInformation& info) {
  ByteReader reader(value);
  while (!reader.empty()) {
    Item sub_item;
    if (auto error = ReadItem(reader, sub_item)) return error;
    switch (sub_item.type) {
      case kMaxLengthSubItem: {
        ByteReader length_reader(sub_item.value);
        if (sub_item.value.size() != 4 || !length_reader.ReadU32(info.max_pdu_length)) {
          return Invalid("maximum length sub-item is not 4 bytes");
        }
        break;
      }
      case kImplementationClassUidSubItem:
        info.implementation_class_uid = TrimUid(sub_item.value);
        break;
      case kImplementationVersionNameSubItem:
        if (sub_item.value.size() > kMaxImplementationVersionNameLength) {
          return Invalid("implementation version name longer than 16 bytes");
        }
        info.implementation_version_name = TrimAe(sub_item.value);
        break;
      case kRoleSelectionSubItem: {
        ByteReader role_reader(sub_item.value);
        std::uint16_t uid_length = 0;
        ByteView uid;
        std::uint8_t scu = 0;
        std::uint8_t scp = 0;
        if (!role_reader.ReadU16(uid_length) || !role_reader.ReadSpan(uid_length, uid) ||
            !role_reader.ReadU8(scu) || !role_reader.ReadU8(scp)) {
          return Invalid("truncated role selection sub-item");
        }
        info.role_selections.push_back({TrimUid(uid), scu != 0, scp != 0});
        break;
      }
      default:
        // Asynchronous operations window, extended negotiation, user identity and future
        // sub-items: not used by a storage SCP; PS3.7 D.3.3 lets the acceptor ignore them.
        break;
    }
  }
  return std::nullopt;
}

// The fields shared by A-ASSOCIATE-RQ and -AC.
struct AssociateFixedFields {
  std::uint16_t protocol_version = 0;
  std::string called_ae;
  std::string calling_ae;
};

std::optional<PduError> ReadFixedFields(ByteReader& reader, AssociateFixedFields& fields) {
  std::uint16_t reserved = 0;
  ByteView called;
  ByteView calling;
  ByteView reserved_block;
  if (!reader.ReadU16(fields.protocol_version) || !reader.ReadU16(reserved) ||
      !reader.ReadSpan(kAeTitleSize, called) || !reader.ReadSpan(kAeTitleSize, calling) ||
      !reader.ReadSpan(32, reserved_block)) {
    return Invalid("A-ASSOCIATE PDU shorter than its fixed fields");
  }
  fields.called_ae = TrimAe(called);
  fields.calling_ae = TrimAe(calling);
  return std::nullopt;
}

// Big-endian writers over a growing byte vector.
void PutU8(Bytes& out, std::uint8_t value) { out.push_back(value); }
void PutU16(Bytes& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value));
}
void PutU32(Bytes& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(value >> shift));
}
void PutBytes(Bytes& out, std::string_view text) {
  out.insert(out.end(), text.begin(), text.end());
}
void PutPaddedAe(Bytes& out, std::string_view ae) {
  std::string padded(ae.substr(0, kAeTitleSize));
  padded.resize(kAeTitleSize, ' ');
  PutBytes(out, padded);
}
void PutItem(Bytes& out, std::uint8_t type, std::string_view value) {
  PutU8(out, type);
  PutU8(out, 0);
  PutU16(out, static_cast<std::uint16_t>(value.size()));
  PutBytes(out, value);
}
// Starts an item whose length is patched by EndItem once its content is written.
std::size_t BeginItem(Bytes& out, std::uint8_t type) {
  PutU8(out, type);
  PutU8(out, 0);
  PutU16(out, 0);
  return out.size();
}
void EndItem(Bytes& out, std::size_t content_start) {
  const auto length = static_cast<std::uint16_t>(out.size() - content_start);
  out[content_start - 2] = static_cast<std::uint8_t>(length >> 8);
  out[content_start - 1] = static_cast<std::uint8_t>(length);
}
std::size_t BeginPdu(Bytes& out, PduType type) {
  PutU8(out, static_cast<std::uint8_t>(type));
  PutU8(out, 0);
  PutU32(out, 0);
  return out.size();
}
void EndPdu(Bytes& out, std::size_t body_start) {
  const auto length = static_cast<std::uint32_t>(out.size() - body_start);
  for (int i = 0; i < 4; ++i) {
    out[body_start - 4 + i] = static_cast<std::uint8_t>(length >> (24 - 8 * i));
  }
}

void PutFixedFields(Bytes& out, std::string_view called_ae, std::string_view calling_ae) {
  PutU16(out, 1);  // protocol version 1 (PS3.8 9.3.2)
  PutU16(out, 0);
  PutPaddedAe(out, called_ae);
  PutPaddedAe(out, calling_ae);
  out.insert(out.end(), 32, 0);
}

void PutUserInformation(Bytes& out, std::uint32_t max_pdu_length, std::string_view class_uid,
                        std::string_view version_name) {
  const std::size_t start = BeginItem(out, kUserInformationItem);
  PutU8(out, kMaxLengthSubItem);
  PutU8(out, 0);
  PutU16(out, 4);
  PutU32(out, max_pdu_length);
  PutItem(out, kImplementationClassUidSubItem, class_uid);
  if (!version_name.empty()) PutItem(out, kImplementationVersionNameSubItem, version_name);
  EndItem(out, start);
}

}  // namespace

PduHeader DecodePduHeader(std::span<const std::uint8_t, kPduHeaderSize> header) {
  PduHeader decoded;
  decoded.type = header[0];
  decoded.length = (std::uint32_t{header[2]} << 24) | (std::uint32_t{header[3]} << 16) |
                   (std::uint32_t{header[4]} << 8) | std::uint32_t{header[5]};
  return decoded;
}

Result<AssociateRq, PduError> ParseAssociateRq(ByteView body) {
  ByteReader reader(body);
  AssociateFixedFields fields;
  if (auto error = ReadFixedFields(reader, fields)) return *error;
  AssociateRq rq;
  rq.protocol_version = fields.protocol_version;
  rq.called_ae = std::move(fields.called_ae);
  rq.calling_ae = std::move(fields.calling_ae);
  bool has_user_information = false;
  std::set<std::uint8_t> context_ids;
  while (!reader.empty()) {
    Item item;
    if (auto error = ReadItem(reader, item)) return *error;
    switch (item.type) {
      case kApplicationContextItem:
        rq.application_context = TrimUid(item.value);
        break;
      case kPresentationContextRqItem: {
        PresentationContextRq context;
        if (auto error = ParsePresentationContextRq(item.value, context)) return *error;
        if (!context_ids.insert(context.id).second) {
          return Invalid("presentation context ID " + std::to_string(context.id) + " repeated");
        }
        rq.presentation_contexts.push_back(std::move(context));
        break;
      }
      case kUserInformationItem: {
        UserInformation info;
        if (auto error = ParseUserInformation(item.value, info)) return *error;
        rq.max_pdu_length = info.max_pdu_length;
        rq.implementation_class_uid = std::move(info.implementation_class_uid);
        rq.implementation_version_name = std::move(info.implementation_version_name);
        rq.role_selections = std::move(info.role_selections);
        has_user_information = true;
        break;
      }
      default:
        return PduError{AbortReason::kUnrecognizedPduParameter,
                        "unknown item type " + std::to_string(item.type) + " in A-ASSOCIATE-RQ"};
    }
  }
  if (rq.application_context.empty()) return Invalid("A-ASSOCIATE-RQ without application context");
  if (rq.presentation_contexts.empty()) {
    return Invalid("A-ASSOCIATE-RQ without presentation contexts");
  }
  // PS3.7 D.3.3.1: the maximum length sub-item is mandatory.
  if (!has_user_information) return Invalid("A-ASSOCIATE-RQ without user information");
  return rq;
}

Result<AssociateAc, PduError> ParseAssociateAc(ByteView body) {
  ByteReader reader(body);
  AssociateFixedFields fields;
  if (auto error = ReadFixedFields(reader, fields)) return *error;
  AssociateAc ac;
  ac.called_ae = std::move(fields.called_ae);
  ac.calling_ae = std::move(fields.calling_ae);
  while (!reader.empty()) {
    Item item;
    if (auto error = ReadItem(reader, item)) return *error;
    if (item.type == kPresentationContextAcItem) {
      PresentationContextAc context;
      if (auto error = ParsePresentationContextAc(item.value, context)) return *error;
      ac.presentation_contexts.push_back(std::move(context));
    } else if (item.type == kUserInformationItem) {
      UserInformation info;
      if (auto error = ParseUserInformation(item.value, info)) return *error;
      ac.max_pdu_length = info.max_pdu_length;
      ac.implementation_class_uid = std::move(info.implementation_class_uid);
      ac.implementation_version_name = std::move(info.implementation_version_name);
    } else if (item.type != kApplicationContextItem) {
      return PduError{AbortReason::kUnrecognizedPduParameter,
                      "unknown item type " + std::to_string(item.type) + " in A-ASSOCIATE-AC"};
    }
  }
  return ac;
}

Result<AssociateRj, PduError> ParseAssociateRj(ByteView body) {
  if (body.size() != 4) return Invalid("A-ASSOCIATE-RJ body is not 4 bytes");
  if (body[1] < 1 || body[1] > 2 || body[2] < 1 || body[2] > 3) {
    return Invalid("A-ASSOCIATE-RJ result or source out of range");
  }
  return AssociateRj{static_cast<RejectResult>(body[1]), static_cast<RejectSource>(body[2]),
                     body[3]};
}

Result<Abort, PduError> ParseAbort(ByteView body) {
  if (body.size() != 4) return Invalid("A-ABORT body is not 4 bytes");
  // Source 1 is reserved; anything else is reported as a provider abort (PS3.8 9.3.8).
  const auto source = body[2] == 0 ? AbortSource::kServiceUser : AbortSource::kServiceProvider;
  return Abort{source, static_cast<AbortReason>(body[3])};
}

std::optional<PduError> ParsePDataTf(ByteView body, std::vector<Pdv>& pdvs) {
  ByteReader reader(body);
  if (reader.empty()) return Invalid("P-DATA-TF without any PDV");
  while (!reader.empty()) {
    std::uint32_t item_length = 0;
    if (!reader.ReadU32(item_length)) return Invalid("truncated PDV item length");
    // The item length covers the context ID and the message control header (PS3.8 9.3.5.1).
    if (item_length < 2) return Invalid("PDV item shorter than its header");
    ByteView item;
    if (!reader.ReadSpan(item_length, item))
      return Invalid("PDV item runs past the end of its PDU");
    const std::uint8_t control = item[1];
    if ((control & 0xFC) != 0) return Invalid("PDV message control header has reserved bits set");
    if (item[0] % 2 == 0) return Invalid("PDV carries an even presentation context ID");
    pdvs.push_back(Pdv{item[0], (control & 0x01) != 0, (control & 0x02) != 0, item.subspan(2)});
  }
  return std::nullopt;
}

std::optional<PduError> ParseReleaseBody(ByteView body) {
  if (body.size() != 4) return Invalid("A-RELEASE body is not 4 bytes");
  return std::nullopt;
}

Bytes EncodeAssociateRq(const AssociateRq& rq) {
  Bytes out;
  const std::size_t body = BeginPdu(out, PduType::kAssociateRq);
  PutFixedFields(out, rq.called_ae, rq.calling_ae);
  PutItem(out, kApplicationContextItem,
          rq.application_context.empty() ? kDicomApplicationContext : rq.application_context);
  for (const PresentationContextRq& context : rq.presentation_contexts) {
    const std::size_t start = BeginItem(out, kPresentationContextRqItem);
    PutU8(out, context.id);
    out.insert(out.end(), 3, 0);
    PutItem(out, kAbstractSyntaxSubItem, context.abstract_syntax);
    for (const std::string& syntax : context.transfer_syntaxes) {
      PutItem(out, kTransferSyntaxSubItem, syntax);
    }
    EndItem(out, start);
  }
  PutUserInformation(out, rq.max_pdu_length, rq.implementation_class_uid,
                     rq.implementation_version_name);
  EndPdu(out, body);
  return out;
}

Bytes EncodeAssociateAc(const AssociateAc& ac) {
  Bytes out;
  const std::size_t body = BeginPdu(out, PduType::kAssociateAc);
  PutFixedFields(out, ac.called_ae, ac.calling_ae);
  PutItem(out, kApplicationContextItem, kDicomApplicationContext);
  for (const PresentationContextAc& context : ac.presentation_contexts) {
    const std::size_t start = BeginItem(out, kPresentationContextAcItem);
    PutU8(out, context.id);
    PutU8(out, 0);
    PutU8(out, static_cast<std::uint8_t>(context.result));
    PutU8(out, 0);
    // PS3.8 9.3.3.2: not significant when the context is not accepted, but some requestors
    // expect the sub-item to be present; Implicit VR Little Endian is a harmless filler.
    const bool accepted = context.result == ContextResult::kAcceptance;
    PutItem(out, kTransferSyntaxSubItem, accepted ? context.transfer_syntax : "1.2.840.10008.1.2");
    EndItem(out, start);
  }
  PutUserInformation(out, ac.max_pdu_length, ac.implementation_class_uid,
                     ac.implementation_version_name);
  EndPdu(out, body);
  return out;
}

Bytes EncodeAssociateRj(const AssociateRj& rj) {
  return Bytes{static_cast<std::uint8_t>(PduType::kAssociateRj),
               0,
               0,
               0,
               0,
               4,
               0,
               static_cast<std::uint8_t>(rj.result),
               static_cast<std::uint8_t>(rj.source),
               rj.reason};
}

Bytes EncodeAbort(const Abort& abort) {
  return Bytes{static_cast<std::uint8_t>(PduType::kAbort),
               0,
               0,
               0,
               0,
               4,
               0,
               0,
               static_cast<std::uint8_t>(abort.source),
               static_cast<std::uint8_t>(abort.reason)};
}

Bytes EncodeReleaseRq() {
  return Bytes{static_cast<std::uint8_t>(PduType::kReleaseRq), 0, 0, 0, 0, 4, 0, 0, 0, 0};
}

Bytes EncodeReleaseRp() {
  return Bytes{static_cast<std::uint8_t>(PduType::kReleaseRp), 0, 0, 0, 0, 4, 0, 0, 0, 0};
}

void AppendPDataTf(Bytes& out, std::uint8_t context_id, bool is_command, bool last, ByteView data,
                   std::uint32_t max_pdu_length) {
  // A PDV item adds 4 bytes of length and 2 of header to its data within the PDU's variable field.
  constexpr std::size_t kPdvOverhead = 6;
  const std::size_t max_fragment =
      max_pdu_length == 0 ? data.size() : std::max<std::size_t>(max_pdu_length - kPdvOverhead, 1);
  std::size_t offset = 0;
  do {
    const std::size_t fragment = std::min(max_fragment, data.size() - offset);
    const bool final_fragment = offset + fragment == data.size();
    const std::size_t body = BeginPdu(out, PduType::kPDataTf);
    PutU32(out, static_cast<std::uint32_t>(fragment + 2));
    PutU8(out, context_id);
    PutU8(out, static_cast<std::uint8_t>((is_command ? 0x01 : 0x00) |
                                         (last && final_fragment ? 0x02 : 0x00)));
    out.insert(out.end(), data.begin() + static_cast<std::ptrdiff_t>(offset),
               data.begin() + static_cast<std::ptrdiff_t>(offset + fragment));
    EndPdu(out, body);
    offset += fragment;
  } while (offset < data.size());
}

}  // namespace conduit::net
