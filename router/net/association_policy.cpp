#include "router/net/association_policy.h"

#include <algorithm>

#include "codecs/transfer_syntax_registry.h"
#include "router/dimse/storage_sop_classes.h"
#include "router/net/implementation_identity.h"

namespace conduit::net {
namespace {

Rejection Reject(RejectResult result, RejectSource source, std::uint8_t reason,
                 std::string_view label) {
  return Rejection{AssociateRj{result, source, reason}, label};
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool IsUncompressed(std::string_view uid) {
  const codecs::TransferSyntax* syntax = codecs::FindTransferSyntax(uid);
  return syntax != nullptr && !syntax->encapsulated && !syntax->deflated;
}

}  // namespace

AssociationPolicy::AssociationPolicy(const config::ListenerConfig& config) : config_(config) {
  accepted_transfer_syntaxes_ = config.accepted_transfer_syntaxes;
  if (accepted_transfer_syntaxes_.empty()) {
    for (const codecs::TransferSyntax& syntax : codecs::AllTransferSyntaxes()) {
      accepted_transfer_syntaxes_.emplace_back(syntax.uid);
    }
  }
}

bool AssociationPolicy::AcceptsAbstractSyntax(const std::string& uid) const {
  switch (config_.sop_class_policy) {
    case config::SopClassPolicy::kAny:
      return true;
    case config::SopClassPolicy::kListed:
      return Contains(config_.accepted_sop_classes, uid);
    case config::SopClassPolicy::kStandardStorage:
      return dimse::IsStandardStorageSopClass(uid);
  }
  return false;
}

PresentationContextAc AssociationPolicy::DecideContext(
    const PresentationContextRq& proposed) const {
  PresentationContextAc decided;
  decided.id = proposed.id;
  const bool verification = proposed.abstract_syntax == dimse::kVerificationSopClass;
  if (!verification && !AcceptsAbstractSyntax(proposed.abstract_syntax)) {
    decided.result = ContextResult::kAbstractSyntaxNotSupported;
    return decided;
  }
  // Verification carries no dataset: any uncompressed syntax will do.
  auto acceptable = [&](const std::string& uid) {
    return verification ? IsUncompressed(uid) : Contains(accepted_transfer_syntaxes_, uid);
  };
  const std::string* chosen = nullptr;
  if (config_.transfer_syntax_preference == config::TransferSyntaxPreference::kSender ||
      verification) {
    // The sender lists its own preference first; taking it keeps its encoding bit for bit.
    for (const std::string& uid : proposed.transfer_syntaxes) {
      if (acceptable(uid)) {
        chosen = &uid;
        break;
      }
    }
  } else {
    for (const std::string& uid : accepted_transfer_syntaxes_) {
      if (Contains(proposed.transfer_syntaxes, uid)) {
        chosen = &uid;
        break;
      }
    }
  }
  if (chosen == nullptr) {
    decided.result = ContextResult::kTransferSyntaxesNotSupported;
    return decided;
  }
  decided.result = ContextResult::kAcceptance;
  decided.transfer_syntax = *chosen;
  return decided;
}

std::variant<Acceptance, Rejection> AssociationPolicy::Decide(const AssociateRq& request,
                                                              const AdmissionFacts& facts) const {
  using enum RejectResult;
  using enum RejectSource;
  // PS3.8 9.3.2: bit 0 of the protocol version must be set.
  if ((request.protocol_version & 0x0001) == 0) {
    return Reject(kPermanent, kServiceProviderAcse, reject_reason::kProtocolVersionNotSupported,
                  "protocol_version");
  }
  if (request.application_context != kDicomApplicationContext) {
    return Reject(kPermanent, kServiceUser, reject_reason::kApplicationContextNotSupported,
                  "application_context");
  }
  if (config_.require_called_ae && request.called_ae != config_.ae_title) {
    return Reject(kPermanent, kServiceUser, reject_reason::kCalledAeNotRecognized,
                  "called_ae_unknown");
  }
  if (!config_.allowed_calling_aes.empty() &&
      !Contains(config_.allowed_calling_aes, request.calling_ae)) {
    return Reject(kPermanent, kServiceUser, reject_reason::kCallingAeNotRecognized,
                  "calling_ae_not_allowed");
  }
  if (!config_.allowed_networks.empty() &&
      std::none_of(
          config_.allowed_networks.begin(), config_.allowed_networks.end(),
          [&](const rules::Cidr& network) { return network.Contains(facts.peer_address); })) {
    // PS3.8 has no reason code for a source address; "no reason given" is the honest one.
    return Reject(kPermanent, kServiceUser, reject_reason::kNoReasonGiven, "network_not_allowed");
  }
  if (facts.associations_active > config_.max_associations) {
    return Reject(kTransient, kServiceProviderPresentation, reject_reason::kLocalLimitExceeded,
                  "max_associations");
  }
  if (facts.associations_from_peer > config_.max_associations_per_peer) {
    return Reject(kTransient, kServiceProviderPresentation, reject_reason::kLocalLimitExceeded,
                  "max_associations_per_peer");
  }
  if (!facts.spool_has_room) {
    return Reject(kTransient, kServiceProviderPresentation, reject_reason::kTemporaryCongestion,
                  "spool_full");
  }

  Acceptance acceptance;
  acceptance.response.called_ae = request.called_ae;
  acceptance.response.calling_ae = request.calling_ae;
  acceptance.response.max_pdu_length = config_.max_pdu_bytes;
  acceptance.response.implementation_class_uid = kImplementationClassUid;
  acceptance.response.implementation_version_name = kImplementationVersionName;
  for (const PresentationContextRq& proposed : request.presentation_contexts) {
    PresentationContextAc decided = DecideContext(proposed);
    if (decided.result == ContextResult::kAcceptance) {
      acceptance.contexts[proposed.id] = {proposed.abstract_syntax, decided.transfer_syntax};
    }
    acceptance.response.presentation_contexts.push_back(std::move(decided));
  }
  return acceptance;
}

}  // namespace conduit::net
