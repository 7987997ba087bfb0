#include "router/net/association_policy.h"

#include <gtest/gtest.h>

namespace conduit::net {
namespace {

constexpr const char* kCtImageStorage = "1.2.840.10008.5.1.4.1.1.2";
constexpr const char* kExplicitLe = "1.2.840.10008.1.2.1";
constexpr const char* kImplicitLe = "1.2.840.10008.1.2";
constexpr const char* kJpegLsLossless = "1.2.840.10008.1.2.4.80";

AssociateRq Request(std::vector<PresentationContextRq> contexts) {
  AssociateRq rq;
  rq.called_ae = "CONDUIT";
  rq.calling_ae = "CT1";
  rq.application_context = std::string(kDicomApplicationContext);
  rq.presentation_contexts = std::move(contexts);
  return rq;
}

AdmissionFacts Facts() {
  AdmissionFacts facts;
  facts.peer_address = "10.1.2.3";
  facts.associations_active = 1;
  facts.associations_from_peer = 1;
  return facts;
}

const Rejection& ExpectRejection(const std::variant<Acceptance, Rejection>& decision) {
  static const Rejection kNone{};
  if (!std::holds_alternative<Rejection>(decision)) {
    ADD_FAILURE() << "expected a rejection";
    return kNone;
  }
  return std::get<Rejection>(decision);
}

TEST(AssociationPolicyTest, AcceptsStorageWithTheSendersFirstSyntax) {
  AssociationPolicy policy{config::ListenerConfig{}};
  auto decision =
      policy.Decide(Request({{1, kCtImageStorage, {kJpegLsLossless, kExplicitLe}}}), Facts());
  ASSERT_TRUE(std::holds_alternative<Acceptance>(decision));
  const auto& acceptance = std::get<Acceptance>(decision);
  ASSERT_EQ(acceptance.contexts.size(), 1U);
  EXPECT_EQ(acceptance.contexts.at(1).transfer_syntax, kJpegLsLossless);
  EXPECT_EQ(acceptance.response.max_pdu_length, 131072U);
}

TEST(AssociationPolicyTest, ListedPreferenceFollowsOurOrder) {
  config::ListenerConfig config;
  config.transfer_syntax_preference = config::TransferSyntaxPreference::kListed;
  config.accepted_transfer_syntaxes = {kImplicitLe, kExplicitLe};
  AssociationPolicy policy{config};
  auto decision = policy.Decide(
      Request({{1, kCtImageStorage, {kJpegLsLossless, kExplicitLe, kImplicitLe}}}), Facts());
  ASSERT_TRUE(std::holds_alternative<Acceptance>(decision));
  EXPECT_EQ(std::get<Acceptance>(decision).contexts.at(1).transfer_syntax, kImplicitLe);
}

TEST(AssociationPolicyTest, RefusesContextsOneByOne) {
  config::ListenerConfig config;
  config.accepted_transfer_syntaxes = {kExplicitLe};
  AssociationPolicy policy{config};
  auto decision = policy.Decide(Request({{1, kCtImageStorage, {kJpegLsLossless}},
                                         {3, "1.2.840.10008.5.1.4.1.2.1.1", {kExplicitLe}},
                                         {5, "1.2.840.10008.1.1", {kImplicitLe}}}),
                                Facts());
  ASSERT_TRUE(std::holds_alternative<Acceptance>(decision));
  const auto& response = std::get<Acceptance>(decision).response;
  ASSERT_EQ(response.presentation_contexts.size(), 3U);
  EXPECT_EQ(response.presentation_contexts[0].result, ContextResult::kTransferSyntaxesNotSupported);
  // Patient Root Query/Retrieve FIND is not a storage class.
  EXPECT_EQ(response.presentation_contexts[1].result, ContextResult::kAbstractSyntaxNotSupported);
  // Verification is always accepted, in an uncompressed syntax.
  EXPECT_EQ(response.presentation_contexts[2].result, ContextResult::kAcceptance);
}

TEST(AssociationPolicyTest, SopClassPolicies) {
  const PresentationContextRq private_class{1, "1.2.3.999.1", {kExplicitLe}};
  config::ListenerConfig config;
  config.sop_class_policy = config::SopClassPolicy::kAny;
  auto any = AssociationPolicy{config}.Decide(Request({private_class}), Facts());
  EXPECT_EQ(std::get<Acceptance>(any).contexts.size(), 1U);
  config.sop_class_policy = config::SopClassPolicy::kListed;
  config.accepted_sop_classes = {kCtImageStorage};
  auto listed = AssociationPolicy{config}.Decide(
      Request({private_class, {3, kCtImageStorage, {kExplicitLe}}}), Facts());
  const auto& contexts = std::get<Acceptance>(listed).contexts;
  ASSERT_EQ(contexts.size(), 1U);
  EXPECT_TRUE(contexts.contains(3));
}

TEST(AssociationPolicyTest, RejectionReasonsFollowPs38) {
  config::ListenerConfig config;
  config.allowed_calling_aes = {"CT1"};
  config.allowed_networks = {*rules::Cidr::Parse("10.0.0.0/8")};
  config.max_associations = 4;
  config.max_associations_per_peer = 2;
  AssociationPolicy policy{config};
  const auto good = Request({{1, kCtImageStorage, {kExplicitLe}}});

  auto called = good;
  called.called_ae = "OTHER";
  const Rejection& wrong_called = ExpectRejection(policy.Decide(called, Facts()));
  EXPECT_EQ(wrong_called.response.result, RejectResult::kPermanent);
  EXPECT_EQ(wrong_called.response.source, RejectSource::kServiceUser);
  EXPECT_EQ(wrong_called.response.reason, reject_reason::kCalledAeNotRecognized);

  auto calling = good;
  calling.calling_ae = "INTRUDER";
  EXPECT_EQ(ExpectRejection(policy.Decide(calling, Facts())).response.reason,
            reject_reason::kCallingAeNotRecognized);

  auto context = good;
  context.application_context = "1.2.3";
  EXPECT_EQ(ExpectRejection(policy.Decide(context, Facts())).response.reason,
            reject_reason::kApplicationContextNotSupported);

  auto version = good;
  version.protocol_version = 2;
  const Rejection& wrong_version = ExpectRejection(policy.Decide(version, Facts()));
  EXPECT_EQ(wrong_version.response.source, RejectSource::kServiceProviderAcse);
  EXPECT_EQ(wrong_version.response.reason, reject_reason::kProtocolVersionNotSupported);

  AdmissionFacts outsider = Facts();
  outsider.peer_address = "192.168.1.1";
  EXPECT_EQ(ExpectRejection(policy.Decide(good, outsider)).reason_label, "network_not_allowed");

  AdmissionFacts busy = Facts();
  busy.associations_active = 5;
  const Rejection& too_many = ExpectRejection(policy.Decide(good, busy));
  EXPECT_EQ(too_many.response.result, RejectResult::kTransient);
  EXPECT_EQ(too_many.response.source, RejectSource::kServiceProviderPresentation);
  EXPECT_EQ(too_many.response.reason, reject_reason::kLocalLimitExceeded);

  AdmissionFacts busy_peer = Facts();
  busy_peer.associations_from_peer = 3;
  EXPECT_EQ(ExpectRejection(policy.Decide(good, busy_peer)).reason_label,
            "max_associations_per_peer");

  AdmissionFacts full = Facts();
  full.spool_has_room = false;
  const Rejection& spool_full = ExpectRejection(policy.Decide(good, full));
  EXPECT_EQ(spool_full.response.result, RejectResult::kTransient);
  EXPECT_EQ(spool_full.response.reason, reject_reason::kTemporaryCongestion);

  EXPECT_TRUE(std::holds_alternative<Acceptance>(policy.Decide(good, Facts())));
}

TEST(AssociationPolicyTest, CalledAeCheckCanBeTurnedOff) {
  config::ListenerConfig config;
  config.require_called_ae = false;
  auto rq = Request({{1, kCtImageStorage, {kExplicitLe}}});
  rq.called_ae = "ANYTHING";
  EXPECT_TRUE(std::holds_alternative<Acceptance>(AssociationPolicy{config}.Decide(rq, Facts())));
}

}  // namespace
}  // namespace conduit::net
