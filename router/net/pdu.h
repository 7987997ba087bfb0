// DICOM Upper Layer PDUs (PS3.8 section 9.3) as plain values. Parsing and encoding live in
// pdu_codec.h; nothing here touches a socket.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace conduit::net {

enum class PduType : std::uint8_t {
  kAssociateRq = 0x01,
  kAssociateAc = 0x02,
  kAssociateRj = 0x03,
  kPDataTf = 0x04,
  kReleaseRq = 0x05,
  kReleaseRp = 0x06,
  kAbort = 0x07,
};

inline constexpr std::size_t kPduHeaderSize = 6;  // type, reserved, 32-bit big-endian length
inline constexpr std::string_view kDicomApplicationContext = "1.2.840.10008.3.1.1.1";

struct PduHeader {
  std::uint8_t type = 0;  // raw, so that unknown types can be reported
  std::uint32_t length = 0;
};

// PS3.8 9.3.3.2: result/reason of one presentation context in an A-ASSOCIATE-AC.
enum class ContextResult : std::uint8_t {
  kAcceptance = 0,
  kUserRejection = 1,
  kNoReason = 2,
  kAbstractSyntaxNotSupported = 3,
  kTransferSyntaxesNotSupported = 4,
};

struct PresentationContextRq {
  std::uint8_t id = 0;
  std::string abstract_syntax;
  std::vector<std::string> transfer_syntaxes;
};

struct PresentationContextAc {
  std::uint8_t id = 0;
  ContextResult result = ContextResult::kNoReason;
  std::string transfer_syntax;  // meaningful only when accepted
};

// PS3.7 D.3.3.4. Parsed so that it can be answered; a storage SCP keeps the default roles.
struct RoleSelection {
  std::string sop_class_uid;
  bool scu_role = false;
  bool scp_role = false;
};

struct AssociateRq {
  std::uint16_t protocol_version = 1;
  std::string called_ae;   // trailing spaces removed
  std::string calling_ae;  // trailing spaces removed
  std::string application_context;
  std::vector<PresentationContextRq> presentation_contexts;
  std::uint32_t max_pdu_length = 0;  // 0: the requestor sets no limit
  std::string implementation_class_uid;
  std::string implementation_version_name;
  std::vector<RoleSelection> role_selections;
};

struct AssociateAc {
  std::string called_ae;
  std::string calling_ae;
  std::vector<PresentationContextAc> presentation_contexts;
  std::uint32_t max_pdu_length = 0;
  std::string implementation_class_uid;
  std::string implementation_version_name;
};

// PS3.8 9.3.4: the three fields of an A-ASSOCIATE-RJ.
enum class RejectResult : std::uint8_t { kPermanent = 1, kTransient = 2 };
enum class RejectSource : std::uint8_t {
  kServiceUser = 1,
  kServiceProviderAcse = 2,
  kServiceProviderPresentation = 3,
};
struct AssociateRj {
  RejectResult result = RejectResult::kPermanent;
  RejectSource source = RejectSource::kServiceUser;
  std::uint8_t reason = 1;
};
namespace reject_reason {
// source kServiceUser
inline constexpr std::uint8_t kNoReasonGiven = 1;
inline constexpr std::uint8_t kApplicationContextNotSupported = 2;
inline constexpr std::uint8_t kCallingAeNotRecognized = 3;
inline constexpr std::uint8_t kCalledAeNotRecognized = 7;
// source kServiceProviderAcse
inline constexpr std::uint8_t kProtocolVersionNotSupported = 2;
// source kServiceProviderPresentation
inline constexpr std::uint8_t kTemporaryCongestion = 1;
inline constexpr std::uint8_t kLocalLimitExceeded = 2;
}  // namespace reject_reason

// PS3.8 9.3.8: A-ABORT source and reason.
enum class AbortSource : std::uint8_t { kServiceUser = 0, kServiceProvider = 2 };
enum class AbortReason : std::uint8_t {
  kNotSpecified = 0,
  kUnrecognizedPdu = 1,
  kUnexpectedPdu = 2,
  kUnrecognizedPduParameter = 4,
  kUnexpectedPduParameter = 5,
  kInvalidPduParameterValue = 6,
};
struct Abort {
  AbortSource source = AbortSource::kServiceProvider;
  AbortReason reason = AbortReason::kNotSpecified;
};

// One presentation data value item of a P-DATA-TF (PS3.8 9.3.5.1, E.2). `data` points into the
// PDU body it was parsed from.
struct Pdv {
  std::uint8_t context_id = 0;
  bool is_command = false;
  bool is_last_fragment = false;
  std::span<const std::uint8_t> data;
};

}  // namespace conduit::net
