#include "rules/ip_network.h"

#include <gtest/gtest.h>

#include <optional>
#include <string_view>

#include "rules/cidr.h"

namespace conduit::rules {
namespace {

// IpNetwork is the evaluation-time form of Cidr: both must give the same answer everywhere.
TEST(IpNetworkTest, AgreesWithCidr) {
  const auto networks = {"10.0.0.0/8",    "192.168.16.0/20",   "192.168.1.7",
                         "0.0.0.0/0",     "fd00::/8",          "2001:db8::/32",
                         "::/0",          "fe80::/10",         "::ffff:10.0.0.0/104",
                         "::ffff:0:0/96", "2001:db8::1",       "10.1.2.3/32",
                         "172.16.0.0/12", "2001:db8:8000::/33"};
  const auto addresses = {"10.0.0.0",
                          "10.255.255.255",
                          "11.0.0.0",
                          "9.255.255.255",
                          "192.168.31.254",
                          "192.168.32.0",
                          "192.168.15.255",
                          "192.168.1.7",
                          "192.168.1.8",
                          "::ffff:10.1.2.3",
                          "::ffff:11.1.2.3",
                          "fd00::1",
                          "fe80::1%eth0",
                          "fe80::1",
                          "2001:db8::1",
                          "2001:db8::2",
                          "2001:db8:8000::1",
                          "2001:db8:7fff::1",
                          "::1",
                          "172.31.255.255",
                          "172.32.0.0",
                          "",
                          "not-an-address",
                          "10.1",
                          "1.2.3.4.5",
                          "::ffff:0:0",
                          "0.0.0.0"};
  for (const char* text : networks) {
    const std::optional<Cidr> cidr = Cidr::Parse(text);
    ASSERT_TRUE(cidr) << text;
    const IpNetwork network = IpNetwork::Of(*cidr);
    for (const char* address : addresses) {
      const std::optional<IpAddress> parsed = ParseIpAddress(address);
      EXPECT_EQ(parsed && network.Contains(*parsed), cidr->Contains(address))
          << text << " contains " << address;
    }
  }
}

TEST(IpNetworkTest, ParsesWithoutAllocatingAndRejectsLongText) {
  EXPECT_TRUE(ParseIpAddress("10.1.2.3"));
  EXPECT_TRUE(ParseIpAddress("fe80::1%a-very-long-interface-name-that-is-ignored"));
  EXPECT_FALSE(ParseIpAddress(std::string(100, '1')));
  EXPECT_FALSE(ParseIpAddress(""));
  const std::optional<IpAddress> mapped = ParseIpAddress("::ffff:10.1.2.3");
  ASSERT_TRUE(mapped);
  EXPECT_FALSE(mapped->is_v6);
  EXPECT_EQ(mapped->bytes[0], 10);
}

}  // namespace
}  // namespace conduit::rules
