// Decides, from an A-ASSOCIATE-RQ and what is known about its sender, whether to accept the
// association and which presentation contexts with which transfer syntax (PS3.8 9.3.3, PS3.7
// D.3.3). Pure logic: no sockets, no clocks, so every rule here is unit-tested.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "router/config/config.h"
#include "router/net/pdu.h"

namespace conduit::net {

struct AdmissionFacts {
  std::string peer_address;
  std::uint32_t associations_active = 0;     // including this one
  std::uint32_t associations_from_peer = 0;  // including this one
  bool spool_has_room = true;
};

struct AcceptedContext {
  std::string abstract_syntax;
  std::string transfer_syntax;
};

struct Acceptance {
  AssociateAc response;
  std::map<std::uint8_t, AcceptedContext> contexts;  // only the accepted ones, by context ID
};

struct Rejection {
  AssociateRj response;
  std::string_view reason_label;  // for metrics and logs, e.g. "calling_ae_not_allowed"
};

class AssociationPolicy {
 public:
  explicit AssociationPolicy(const config::ListenerConfig& config);

  std::variant<Acceptance, Rejection> Decide(const AssociateRq& request,
                                             const AdmissionFacts& facts) const;

 private:
  PresentationContextAc DecideContext(const PresentationContextRq& proposed) const;
  bool AcceptsAbstractSyntax(const std::string& uid) const;

  config::ListenerConfig config_;
  std::vector<std::string> accepted_transfer_syntaxes_;  // in our preference order
};

}  // namespace conduit::net
