#include "rules/cidr.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstddef>

namespace conduit::rules {
namespace {

constexpr unsigned kIpv4Bits = 32;
constexpr unsigned kIpv6Bits = 128;
constexpr std::size_t kIpv4Bytes = 4;

// RFC 4291 2.5.5.2: ::ffff:a.b.c.d carries an IPv4 address in its last four bytes.
constexpr std::array<std::uint8_t, 12> kIpv4MappedPrefix = {0, 0, 0, 0, 0,    0,
                                                            0, 0, 0, 0, 0xff, 0xff};
constexpr unsigned kIpv4MappedPrefixBits = 96;

using AddressBytes = std::array<std::uint8_t, 16>;

// An address in network byte order. IPv4 uses the first four bytes of `bytes`, the rest are zero.
struct IpAddress {
  bool is_v6 = false;
  AddressBytes bytes{};
};

// inet_pton accepts only the canonical textual forms (no "10.1", no octal, no zone index),
// which is the strictness a configuration file wants.
std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  const std::string null_terminated(text);
  IpAddress address;
  if (inet_pton(AF_INET, null_terminated.c_str(), address.bytes.data()) == 1) {
    return address;
  }
  if (inet_pton(AF_INET6, null_terminated.c_str(), address.bytes.data()) == 1) {
    address.is_v6 = true;
    return address;
  }
  return std::nullopt;
}

bool IsIpv4Mapped(const IpAddress& address) {
  return address.is_v6 &&
         std::equal(kIpv4MappedPrefix.begin(), kIpv4MappedPrefix.end(), address.bytes.begin());
}

// A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; they must meet IPv4 rules.
IpAddress UnmapIpv4(const IpAddress& address) {
  IpAddress ipv4;
  std::copy_n(address.bytes.begin() + kIpv4MappedPrefix.size(), kIpv4Bytes, ipv4.bytes.begin());
  return ipv4;
}

// `bytes` with every bit after the first `prefix_length` cleared.
AddressBytes KeepPrefix(const AddressBytes& bytes, unsigned prefix_length) {
  AddressBytes masked = bytes;
  const unsigned whole_bytes = prefix_length / 8;
  const unsigned remaining_bits = prefix_length % 8;
  std::fill(masked.begin() + whole_bytes, masked.end(), 0);
  if (remaining_bits != 0) {
    masked[whole_bytes] =
        static_cast<std::uint8_t>(bytes[whole_bytes] & (0xff << (8 - remaining_bits)));
  }
  return masked;
}

}  // namespace

std::optional<Cidr> Cidr::Parse(std::string_view text) {
  const std::size_t slash = text.find('/');
  const std::string_view address_text = text.substr(0, slash);
  const std::optional<IpAddress> address = ParseIpAddress(address_text);
  if (!address) {
    return std::nullopt;
  }
  const unsigned max_prefix = address->is_v6 ? kIpv6Bits : kIpv4Bits;
  unsigned prefix_length = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view prefix_text = text.substr(slash + 1);
    // Digits only: from_chars stops at the first non-digit and would read "8abc" as 8.
    if (prefix_text.empty() || prefix_text.size() > 3 ||
        !std::all_of(prefix_text.begin(), prefix_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
    std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix_length);
    if (prefix_length > max_prefix) {
      return std::nullopt;
    }
  }
  // "10.1.2.3/8" is most likely a typo for a single host or for 10.0.0.0/8; silently widening
  // an admission rule to the whole network is the unsafe reading, so reject it.
  if (KeepPrefix(address->bytes, prefix_length) != address->bytes) {
    return std::nullopt;
  }

  Cidr cidr;
  cidr.text_ = std::string(text);
  if (IsIpv4Mapped(*address) && prefix_length >= kIpv4MappedPrefixBits) {
    // "::ffff:10.0.0.0/104" is the IPv4 network 10.0.0.0/8 spelt in IPv6.
    cidr.is_v6_ = false;
    cidr.network_ = UnmapIpv4(*address).bytes;
    cidr.prefix_length_ = prefix_length - kIpv4MappedPrefixBits;
  } else {
    cidr.is_v6_ = address->is_v6;
    cidr.network_ = address->bytes;
    cidr.prefix_length_ = prefix_length;
  }
  return cidr;
}

bool Cidr::Contains(std::string_view address_text) const {
  // A link-local peer may be reported with its zone ("fe80::1%eth0"); the zone names the local
  // interface and says nothing about which network the address belongs to.
  address_text = address_text.substr(0, address_text.find('%'));
  std::optional<IpAddress> address = ParseIpAddress(address_text);
  if (!address) {
    return false;
  }
  if (IsIpv4Mapped(*address)) {
    address = UnmapIpv4(*address);
  }
  if (address->is_v6 != is_v6_) {
    return false;
  }
  return KeepPrefix(address->bytes, prefix_length_) == network_;
}

}  // namespace conduit::rules
