// Source-network matching on the evaluation path. rules::Cidr parses the peer's address text on
// every Contains call; a rule set with many `source:` conditions would parse it once per
// condition. IpNetwork holds a Cidr's network in binary, and the peer address is parsed once
// per evaluation into an IpAddress, so each condition is a masked compare.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "rules/cidr.h"

namespace conduit::rules {

struct IpAddress {
  bool is_v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // network order; IPv4 in the first four bytes
};

// "10.1.2.3", "fd00::1", "fe80::1%eth0" (the zone is ignored); an IPv4-mapped IPv6 address
// (::ffff:a.b.c.d, how a dual-stack socket reports IPv4 peers) becomes the IPv4 address, as
// Cidr::Contains treats it. nullopt when malformed.
std::optional<IpAddress> ParseIpAddress(std::string_view text);

class IpNetwork {
 public:
  // The network `cidr` describes; Cidr::Contains and IpNetwork::Contains agree.
  static IpNetwork Of(const Cidr& cidr);

  bool Contains(const IpAddress& address) const;

 private:
  IpAddress network_;
  unsigned prefix_length_ = 0;
};

}  // namespace conduit::rules
