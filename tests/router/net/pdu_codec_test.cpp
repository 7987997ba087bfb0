#include "router/net/pdu_codec.h"

#include <gtest/gtest.h>

#include <random>

namespace conduit::net {
namespace {

Bytes BodyOf(const Bytes& pdu) { return Bytes(pdu.begin() + kPduHeaderSize, pdu.end()); }

AssociateRq StorageRequest() {
  AssociateRq rq;
  rq.called_ae = "CONDUIT";
  rq.calling_ae = "MODALITY1";
  rq.application_context = std::string(kDicomApplicationContext);
  rq.max_pdu_length = 16384;
  rq.implementation_class_uid = "1.2.3.4";
  rq.implementation_version_name = "TEST_1";
  rq.presentation_contexts = {
      {1, "1.2.840.10008.5.1.4.1.1.2", {"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"}},
      {3, "1.2.840.10008.1.1", {"1.2.840.10008.1.2"}},
  };
  return rq;
}

TEST(PduCodecTest, AssociateRqRoundTrips) {
  const Bytes pdu = EncodeAssociateRq(StorageRequest());
  const PduHeader header = DecodePduHeader(std::span<const std::uint8_t, 6>(pdu.data(), 6));
  EXPECT_EQ(header.type, static_cast<std::uint8_t>(PduType::kAssociateRq));
  EXPECT_EQ(header.length, pdu.size() - kPduHeaderSize);
  auto parsed = ParseAssociateRq(BodyOf(pdu));
  ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
  EXPECT_EQ(parsed->called_ae, "CONDUIT");
  EXPECT_EQ(parsed->calling_ae, "MODALITY1");
  EXPECT_EQ(parsed->application_context, kDicomApplicationContext);
  EXPECT_EQ(parsed->max_pdu_length, 16384U);
  EXPECT_EQ(parsed->implementation_class_uid, "1.2.3.4");
  EXPECT_EQ(parsed->implementation_version_name, "TEST_1");
  ASSERT_EQ(parsed->presentation_contexts.size(), 2U);
  EXPECT_EQ(parsed->presentation_contexts[0].id, 1);
  EXPECT_EQ(parsed->presentation_contexts[0].abstract_syntax, "1.2.840.10008.5.1.4.1.1.2");
  EXPECT_EQ(parsed->presentation_contexts[0].transfer_syntaxes,
            (std::vector<std::string>{"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"}));
}

TEST(PduCodecTest, AssociateAcRoundTrips) {
  AssociateAc ac;
  ac.called_ae = "CONDUIT";
  ac.calling_ae = "MODALITY1";
  ac.max_pdu_length = 131072;
  ac.implementation_class_uid = "1.2.3";
  ac.presentation_contexts = {{1, ContextResult::kAcceptance, "1.2.840.10008.1.2.1"},
                              {3, ContextResult::kAbstractSyntaxNotSupported, ""}};
  auto parsed = ParseAssociateAc(BodyOf(EncodeAssociateAc(ac)));
  ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
  EXPECT_EQ(parsed->max_pdu_length, 131072U);
  ASSERT_EQ(parsed->presentation_contexts.size(), 2U);
  EXPECT_EQ(parsed->presentation_contexts[0].transfer_syntax, "1.2.840.10008.1.2.1");
  EXPECT_EQ(parsed->presentation_contexts[1].result, ContextResult::kAbstractSyntaxNotSupported);
}

TEST(PduCodecTest, AeTitlesAreTrimmedOfPadding) {
  AssociateRq rq = StorageRequest();
  rq.calling_ae = "  PADDED";  // leading spaces are not significant either (PS3.8 9.3.2)
  auto parsed = ParseAssociateRq(BodyOf(EncodeAssociateRq(rq)));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->calling_ae, "PADDED");
}

TEST(PduCodecTest, EveryTruncationOfAnAssociateRqIsRefused) {
  const Bytes body = BodyOf(EncodeAssociateRq(StorageRequest()));
  for (std::size_t length = 0; length < body.size(); ++length) {
    auto parsed = ParseAssociateRq(ByteView(body.data(), length));
    EXPECT_FALSE(parsed.ok()) << "accepted a request truncated to " << length << " bytes";
  }
}

TEST(PduCodecTest, ItemLengthPastTheEndIsRefused) {
  Bytes body = BodyOf(EncodeAssociateRq(StorageRequest()));
  // The application context item starts right after the 68 fixed bytes; inflate its length.
  body[68 + 2] = 0x7F;
  auto parsed = ParseAssociateRq(body);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().reason, AbortReason::kInvalidPduParameterValue);
}

TEST(PduCodecTest, EvenPresentationContextIdIsRefused) {
  AssociateRq rq = StorageRequest();
  rq.presentation_contexts[0].id = 2;
  EXPECT_FALSE(ParseAssociateRq(BodyOf(EncodeAssociateRq(rq))).ok());
}

TEST(PduCodecTest, RepeatedPresentationContextIdIsRefused) {
  AssociateRq rq = StorageRequest();
  rq.presentation_contexts[1].id = 1;
  EXPECT_FALSE(ParseAssociateRq(BodyOf(EncodeAssociateRq(rq))).ok());
}

TEST(PduCodecTest, NonUidAbstractSyntaxIsRefused) {
  AssociateRq rq = StorageRequest();
  rq.presentation_contexts[0].abstract_syntax = "../../etc/passwd";
  EXPECT_FALSE(ParseAssociateRq(BodyOf(EncodeAssociateRq(rq))).ok());
}

TEST(PduCodecTest, UnknownItemTypeIsAnUnrecognizedParameter) {
  Bytes body = BodyOf(EncodeAssociateRq(StorageRequest()));
  body.insert(body.end(), {0x7E, 0x00, 0x00, 0x00});
  auto parsed = ParseAssociateRq(body);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().reason, AbortReason::kUnrecognizedPduParameter);
}

TEST(PduCodecTest, RandomGarbageNeverCrashesTheParsers) {
  std::mt19937 random(12345);
  const Bytes valid = BodyOf(EncodeAssociateRq(StorageRequest()));
  for (int round = 0; round < 20000; ++round) {
    Bytes body = valid;
    // Mutate a few bytes of a valid request, or use pure noise of random length.
    if (round % 2 == 0) {
      for (int flips = 0; flips < 4; ++flips) body[random() % body.size()] = random() & 0xFF;
    } else {
      body.resize(random() % 512);
      for (auto& byte : body) byte = random() & 0xFF;
    }
    (void)ParseAssociateRq(body);
    (void)ParseAssociateAc(body);
    std::vector<Pdv> pdvs;
    (void)ParsePDataTf(body, pdvs);
    for (const Pdv& pdv : pdvs) {
      ASSERT_GE(pdv.data.data(), body.data());
      ASSERT_LE(pdv.data.data() + pdv.data.size(), body.data() + body.size());
    }
  }
}

TEST(PduCodecTest, PDataTfRoundTripsAndFragmentsToThePeerLimit) {
  Bytes data(10000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i);
  Bytes stream;
  AppendPDataTf(stream, 5, false, true, data, 4096);
  // Walk the PDUs: each variable field within 4096 bytes, fragments reassemble to the data.
  Bytes reassembled;
  std::size_t offset = 0;
  int pdus = 0;
  bool saw_last = false;
  while (offset < stream.size()) {
    const PduHeader header =
        DecodePduHeader(std::span<const std::uint8_t, 6>(stream.data() + offset, 6));
    EXPECT_EQ(header.type, static_cast<std::uint8_t>(PduType::kPDataTf));
    EXPECT_LE(header.length, 4096U);
    std::vector<Pdv> pdvs;
    ASSERT_FALSE(ParsePDataTf(ByteView(stream.data() + offset + 6, header.length), pdvs));
    ASSERT_EQ(pdvs.size(), 1U);
    EXPECT_EQ(pdvs[0].context_id, 5);
    EXPECT_FALSE(pdvs[0].is_command);
    EXPECT_FALSE(saw_last);
    saw_last = pdvs[0].is_last_fragment;
    reassembled.insert(reassembled.end(), pdvs[0].data.begin(), pdvs[0].data.end());
    offset += 6 + header.length;
    ++pdus;
  }
  EXPECT_TRUE(saw_last);
  EXPECT_EQ(pdus, 3);
  EXPECT_EQ(reassembled, data);
}

TEST(PduCodecTest, PDataTfRejectsMalformedPdvs) {
  std::vector<Pdv> pdvs;
  EXPECT_TRUE(ParsePDataTf(Bytes{}, pdvs)) << "empty P-DATA-TF";
  EXPECT_TRUE(ParsePDataTf(Bytes{0, 0, 0, 1, 1}, pdvs)) << "item shorter than its header";
  EXPECT_TRUE(ParsePDataTf(Bytes{0, 0, 0, 9, 1, 3, 0}, pdvs)) << "item past the end";
  EXPECT_TRUE(ParsePDataTf(Bytes{0, 0, 0, 2, 2, 3}, pdvs)) << "even context ID";
  EXPECT_TRUE(ParsePDataTf(Bytes{0, 0, 0, 2, 1, 0x13}, pdvs)) << "reserved control bits";
  EXPECT_FALSE(ParsePDataTf(Bytes{0, 0, 0, 2, 1, 3}, pdvs)) << "an empty last command PDV is fine";
}

TEST(PduCodecTest, ControlPdusHaveFixedBodies) {
  const Bytes rj =
      EncodeAssociateRj({RejectResult::kTransient, RejectSource::kServiceProviderPresentation,
                         reject_reason::kLocalLimitExceeded});
  EXPECT_EQ(rj, (Bytes{0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2}));
  auto parsed = ParseAssociateRj(BodyOf(rj));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->reason, reject_reason::kLocalLimitExceeded);
  EXPECT_EQ(EncodeAbort({AbortSource::kServiceProvider, AbortReason::kUnexpectedPdu}),
            (Bytes{0x07, 0, 0, 0, 0, 4, 0, 0, 2, 2}));
  EXPECT_FALSE(ParseAbort(Bytes{0, 0, 0}).ok());
  EXPECT_FALSE(ParseReleaseBody(BodyOf(EncodeReleaseRq())));
  EXPECT_TRUE(ParseReleaseBody(Bytes{0, 0}));
  EXPECT_FALSE(ParseAssociateRj(Bytes{0, 9, 1, 1}).ok()) << "result out of range";
}

}  // namespace
}  // namespace conduit::net
