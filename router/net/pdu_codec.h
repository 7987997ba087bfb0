// Parse and encode Upper Layer PDUs (PS3.8 9.3). Bytes in, values or an error out: no sockets,
// no exceptions. Every length is checked against the bytes actually present.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codecs/result.h"
#include "router/net/pdu.h"

namespace conduit::net {

// Why a PDU was refused; `reason` goes into the A-ABORT we answer with.
struct PduError {
  AbortReason reason = AbortReason::kNotSpecified;
  std::string detail;
};

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

PduHeader DecodePduHeader(std::span<const std::uint8_t, kPduHeaderSize> header);

// Bodies exclude the 6-byte PDU header.
Result<AssociateRq, PduError> ParseAssociateRq(ByteView body);
Result<AssociateAc, PduError> ParseAssociateAc(ByteView body);
Result<AssociateRj, PduError> ParseAssociateRj(ByteView body);
Result<Abort, PduError> ParseAbort(ByteView body);
// Appends the PDVs of one P-DATA-TF body to `pdvs` (which then point into `body`).
std::optional<PduError> ParsePDataTf(ByteView body, std::vector<Pdv>& pdvs);
// A-RELEASE-RQ and -RP bodies are four reserved bytes.
std::optional<PduError> ParseReleaseBody(ByteView body);

// Encoders return whole PDUs, header included.
Bytes EncodeAssociateRq(const AssociateRq& rq);
Bytes EncodeAssociateAc(const AssociateAc& ac);
Bytes EncodeAssociateRj(const AssociateRj& rj);
Bytes EncodeAbort(const Abort& abort);
Bytes EncodeReleaseRq();
Bytes EncodeReleaseRp();

// Splits one DIMSE message part (a command set, or a dataset chunk) into P-DATA-TF PDUs whose
// variable field stays within `max_pdu_length` (the peer's limit; 0 = unlimited), one PDV each.
// `last` marks whether the final fragment ends the command set / dataset.
void AppendPDataTf(Bytes& out, std::uint8_t context_id, bool is_command, bool last, ByteView data,
                   std::uint32_t max_pdu_length);

}  // namespace conduit::net
