#include "router/dimse/command_set.h"

#include <gtest/gtest.h>

#include "router/dimse/status.h"

namespace conduit::dimse {
namespace {

CommandSet StoreRequest() {
  CommandSet command;
  command.command_field = command_field::kCStoreRq;
  command.message_id = 42;
  command.priority = 0;
  command.data_set_type = kDataSetPresent;
  command.affected_sop_class_uid = "1.2.840.10008.5.1.4.1.1.2";
  command.affected_sop_instance_uid = "1.2.3.4.5";  // odd length: padded with a NUL
  return command;
}

TEST(CommandSetTest, StoreRequestRoundTrips) {
  const auto bytes = EncodeCommandSet(StoreRequest());
  auto parsed = ParseCommandSet(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error();
  EXPECT_EQ(parsed->command_field, command_field::kCStoreRq);
  EXPECT_EQ(parsed->message_id, 42);
  EXPECT_EQ(parsed->affected_sop_class_uid, "1.2.840.10008.5.1.4.1.1.2");
  EXPECT_EQ(parsed->affected_sop_instance_uid, "1.2.3.4.5");
  EXPECT_TRUE(parsed->has_data_set());
}

TEST(CommandSetTest, GroupLengthCoversTheRestAndElementsAreEven) {
  const auto bytes = EncodeCommandSet(StoreRequest());
  ASSERT_GE(bytes.size(), 12U);
  const std::uint32_t group_length = bytes[8] | (bytes[9] << 8) | (bytes[10] << 16) |
                                     (static_cast<std::uint32_t>(bytes[11]) << 24);
  EXPECT_EQ(group_length, bytes.size() - 12);
  EXPECT_EQ(bytes.size() % 2, 0U);
}

TEST(CommandSetTest, ResponseEchoesTheRequest) {
  const CommandSet response = MakeResponse(StoreRequest(), status::kOutOfResources, "disk full");
  EXPECT_EQ(response.command_field, command_field::kCStoreRsp);
  EXPECT_EQ(response.message_id_being_responded_to, 42);
  EXPECT_EQ(response.affected_sop_instance_uid, "1.2.3.4.5");
  EXPECT_FALSE(response.has_data_set());
  auto parsed = ParseCommandSet(EncodeCommandSet(response));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->status, status::kOutOfResources);
  EXPECT_EQ(parsed->error_comment, "disk full");
}

TEST(CommandSetTest, ErrorCommentIsCutToItsVr) {
  const CommandSet response = MakeResponse(StoreRequest(), 0xC000, std::string(300, 'x'));
  auto parsed = ParseCommandSet(EncodeCommandSet(response));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->error_comment.size(), 64U);
}

TEST(CommandSetTest, RefusesElementsOutsideGroupZero) {
  auto bytes = EncodeCommandSet(StoreRequest());
  bytes[12] = 0x08;  // the first element after the group length now claims group 0008
  EXPECT_FALSE(ParseCommandSet(bytes).ok());
}

TEST(CommandSetTest, RefusesWrongSizedUs) {
  std::vector<std::uint8_t> bytes = {0x00, 0x00, 0x00, 0x01, 0x04, 0, 0, 0, 1, 0, 0, 0};
  auto parsed = ParseCommandSet(bytes);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.error().find("CommandField"), std::string::npos);
}

TEST(CommandSetTest, RefusesMissingMandatoryElements) {
  EXPECT_FALSE(ParseCommandSet({}).ok());
  CommandSet command = StoreRequest();
  auto bytes = EncodeCommandSet(command);
  // Cut off at the last element (the SOP instance UID): still lacks nothing mandatory.
  EXPECT_TRUE(ParseCommandSet(bytes).ok());
}

TEST(CommandSetTest, EveryTruncationIsRefusedOrParsesConsistently) {
  const auto bytes = EncodeCommandSet(StoreRequest());
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    auto parsed = ParseCommandSet(std::span(bytes.data(), length));
    if (parsed.ok()) {
      // Only cuts on an element boundary can parse, and they keep the mandatory elements.
      EXPECT_EQ(parsed->command_field, command_field::kCStoreRq);
    }
  }
}

TEST(CommandSetTest, FormatsStatusAsHex) {
  EXPECT_EQ(FormatStatus(0x0000), "0x0000");
  EXPECT_EQ(FormatStatus(0xA700), "0xA700");
  EXPECT_EQ(FormatStatus(0xC00F), "0xC00F");
}

}  // namespace
}  // namespace conduit::dimse
