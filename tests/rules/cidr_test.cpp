#include "rules/cidr.h"

#include <gtest/gtest.h>

#include <optional>
#include <string_view>

namespace conduit::rules {
namespace {

Cidr ParseOrDie(std::string_view text) {
  std::optional<Cidr> cidr = Cidr::Parse(text);
  EXPECT_TRUE(cidr.has_value()) << text;
  return cidr.value_or(Cidr{});
}

TEST(CidrTest, KeepsTheTextAsWritten) {
  EXPECT_EQ(ParseOrDie("10.0.0.0/8").text(), "10.0.0.0/8");
  EXPECT_EQ(ParseOrDie("fd00::/8").text(), "fd00::/8");
}

TEST(CidrTest, Ipv4NetworkContainsItsAddressesOnly) {
  const Cidr network = ParseOrDie("10.0.0.0/8");
  EXPECT_TRUE(network.Contains("10.0.0.0"));
  EXPECT_TRUE(network.Contains("10.1.2.3"));
  EXPECT_TRUE(network.Contains("10.255.255.255"));
  EXPECT_FALSE(network.Contains("11.0.0.0"));
  EXPECT_FALSE(network.Contains("9.255.255.255"));
}

TEST(CidrTest, Ipv4PrefixNotOnAByteBoundary) {
  const Cidr network = ParseOrDie("192.168.16.0/20");
  EXPECT_TRUE(network.Contains("192.168.16.1"));
  EXPECT_TRUE(network.Contains("192.168.31.254"));
  EXPECT_FALSE(network.Contains("192.168.32.0"));
  EXPECT_FALSE(network.Contains("192.168.15.255"));
}

TEST(CidrTest, AddressWithoutPrefixIsASingleHost) {
  const Cidr host = ParseOrDie("192.168.1.7");
  EXPECT_TRUE(host.Contains("192.168.1.7"));
  EXPECT_FALSE(host.Contains("192.168.1.8"));

  const Cidr v6_host = ParseOrDie("2001:db8::7");
  EXPECT_TRUE(v6_host.Contains("2001:db8::7"));
  EXPECT_TRUE(v6_host.Contains("2001:0db8:0:0:0:0:0:7"));
  EXPECT_FALSE(v6_host.Contains("2001:db8::8"));
}

TEST(CidrTest, ZeroPrefixMatchesEveryAddressOfItsFamily) {
  const Cidr any_v4 = ParseOrDie("0.0.0.0/0");
  EXPECT_TRUE(any_v4.Contains("1.2.3.4"));
  EXPECT_TRUE(any_v4.Contains("255.255.255.255"));
  EXPECT_FALSE(any_v4.Contains("2001:db8::1"));

  const Cidr any_v6 = ParseOrDie("::/0");
  EXPECT_TRUE(any_v6.Contains("2001:db8::1"));
  EXPECT_TRUE(any_v6.Contains("::1"));
  EXPECT_FALSE(any_v6.Contains("1.2.3.4"));
}

TEST(CidrTest, Ipv6NetworkContainsItsAddressesOnly) {
  const Cidr network = ParseOrDie("fd00::/8");
  EXPECT_TRUE(network.Contains("fd00::1"));
  EXPECT_TRUE(network.Contains("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
  EXPECT_FALSE(network.Contains("fe00::1"));
  EXPECT_FALSE(network.Contains("fc00::1"));

  const Cidr site = ParseOrDie("2001:db8:abcd:0012::/63");
  EXPECT_TRUE(site.Contains("2001:db8:abcd:12::1"));
  EXPECT_TRUE(site.Contains("2001:db8:abcd:13:ffff::1"));
  EXPECT_FALSE(site.Contains("2001:db8:abcd:14::1"));
}

TEST(CidrTest, Ipv4MappedAddressMatchesIpv4Network) {
  const Cidr network = ParseOrDie("10.0.0.0/8");
  EXPECT_TRUE(network.Contains("::ffff:10.1.2.3"));
  EXPECT_TRUE(network.Contains("::FFFF:10.1.2.3"));
  EXPECT_TRUE(network.Contains("::ffff:a01:203"));  // the same address, written in hex
  EXPECT_FALSE(network.Contains("::ffff:11.1.2.3"));
  // Not mapped: an IPv6 address that merely ends in the same bytes.
  EXPECT_FALSE(network.Contains("::1:10.1.2.3"));
  EXPECT_FALSE(network.Contains("64:ff9b::10.1.2.3"));
}

TEST(CidrTest, Ipv4MappedNetworkIsTheIpv4Network) {
  const Cidr network = ParseOrDie("::ffff:10.0.0.0/104");
  EXPECT_TRUE(network.Contains("10.1.2.3"));
  EXPECT_TRUE(network.Contains("::ffff:10.1.2.3"));
  EXPECT_FALSE(network.Contains("11.1.2.3"));

  const Cidr host = ParseOrDie("::ffff:192.168.1.7");
  EXPECT_TRUE(host.Contains("192.168.1.7"));
  EXPECT_FALSE(host.Contains("192.168.1.8"));
}

TEST(CidrTest, IgnoresTheZoneOfALinkLocalAddress) {
  const Cidr link_local = ParseOrDie("fe80::/10");
  EXPECT_TRUE(link_local.Contains("fe80::1%eth0"));
  EXPECT_FALSE(ParseOrDie("fd00::/8").Contains("fe80::1%eth0"));
}

TEST(CidrTest, MalformedAddressIsNeverContained) {
  const Cidr any_v4 = ParseOrDie("0.0.0.0/0");
  const Cidr any_v6 = ParseOrDie("::/0");
  for (const std::string_view address : {"", "10.1.2", "10.1.2.3.4", "host.example", "10.1.2.3/32",
                                         " 10.1.2.3", "::g", "1:2:3:4:5:6:7:8:9"}) {
    EXPECT_FALSE(any_v4.Contains(address)) << address;
    EXPECT_FALSE(any_v6.Contains(address)) << address;
  }
}

TEST(CidrTest, AcceptsBoundaryPrefixLengths) {
  EXPECT_TRUE(Cidr::Parse("10.1.2.3/32").has_value());
  EXPECT_TRUE(Cidr::Parse("0.0.0.0/0").has_value());
  EXPECT_TRUE(Cidr::Parse("2001:db8::1/128").has_value());
  EXPECT_TRUE(Cidr::Parse("::/0").has_value());
}

TEST(CidrTest, RejectsMalformedText) {
  for (const std::string_view text : {
           "",
           "/8",
           "10.0.0.0/",
           "10.0.0.0/33",
           "10.0.0.0/-1",
           "10.0.0.0/+8",
           "10.0.0.0/8/8",
           "10.0.0.0/ 8",
           "10.0.0.0/8 ",
           " 10.0.0.0/8",
           "10.0.0.0/8a",
           "10.0.0.0/0008",  // not a length anyone means
           "10.0.0/8",
           "10.0.0.0.0/8",
           "256.0.0.0/8",
           "010.0.0.0/8",  // octal to inet_aton, decimal to others: ambiguous
           "10.0.0.0/255.0.0.0",
           "fd00::/129",
           "fd00:::/8",
           "fe80::1%eth0/64",
           "[fd00::]/8",
           "example.org/24",
           "any",
       }) {
    EXPECT_FALSE(Cidr::Parse(text).has_value()) << "'" << text << "'";
  }
}

TEST(CidrTest, RejectsAddressBitsAfterThePrefix) {
  EXPECT_FALSE(Cidr::Parse("10.1.2.3/8").has_value());
  EXPECT_FALSE(Cidr::Parse("192.168.1.1/24").has_value());
  EXPECT_FALSE(Cidr::Parse("fd00::1/8").has_value());
  EXPECT_FALSE(Cidr::Parse("::ffff:10.1.2.3/104").has_value());
  EXPECT_TRUE(Cidr::Parse("192.168.1.0/24").has_value());
}

}  // namespace
}  // namespace conduit::rules
