#include "rules/ip_network.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>

namespace conduit::rules {
namespace {

constexpr std::size_t kMaxAddressText = 64;  // INET6_ADDRSTRLEN is 46
constexpr std::size_t kIpv4Bytes = 4;
// RFC 4291 2.5.5.2: ::ffff:a.b.c.d carries an IPv4 address in its last four bytes.
constexpr std::array<std::uint8_t, 12> kIpv4MappedPrefix = {0, 0, 0, 0, 0,    0,
                                                            0, 0, 0, 0, 0xff, 0xff};
constexpr unsigned kIpv4MappedPrefixBits = 96;

bool IsIpv4Mapped(const IpAddress& address) {
  return address.is_v6 &&
         std::equal(kIpv4MappedPrefix.begin(), kIpv4MappedPrefix.end(), address.bytes.begin());
}

IpAddress Unmapped(const IpAddress& address) {
  IpAddress ipv4;
  std::copy_n(address.bytes.begin() + kIpv4MappedPrefix.size(), kIpv4Bytes, ipv4.bytes.begin());
  return ipv4;
}

// Without unmapping: a network written as ::ffff:0:0/96 is an IPv6 network.
std::optional<IpAddress> ParseRaw(std::string_view text) {
  if (text.size() >= kMaxAddressText) {
    return std::nullopt;
  }
  // inet_pton wants a NUL-terminated string; a stack copy keeps this allocation-free.
  char terminated[kMaxAddressText];
  std::copy(text.begin(), text.end(), terminated);
  terminated[text.size()] = '\0';
  IpAddress address;
  if (inet_pton(AF_INET, terminated, address.bytes.data()) == 1) {
    return address;
  }
  if (inet_pton(AF_INET6, terminated, address.bytes.data()) == 1) {
    address.is_v6 = true;
    return address;
  }
  return std::nullopt;
}

}  // namespace

std::optional<IpAddress> ParseIpAddress(std::string_view text) {
  std::optional<IpAddress> address = ParseRaw(text.substr(0, text.find('%')));
  if (address && IsIpv4Mapped(*address)) {
    address = Unmapped(*address);
  }
  return address;
}

IpNetwork IpNetwork::Of(const Cidr& cidr) {
  // cidr.text() passed Cidr::Parse: an address, optionally "/prefix" in range, no host bits.
  const std::string_view text = cidr.text();
  const std::size_t slash = text.find('/');
  IpNetwork network;
  network.network_ = ParseRaw(text.substr(0, slash)).value_or(IpAddress{});
  network.prefix_length_ = network.network_.is_v6 ? 128 : 32;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    std::from_chars(digits.data(), digits.data() + digits.size(), network.prefix_length_);
  }
  if (IsIpv4Mapped(network.network_) && network.prefix_length_ >= kIpv4MappedPrefixBits) {
    network.network_ = Unmapped(network.network_);
    network.prefix_length_ -= kIpv4MappedPrefixBits;
  }
  return network;
}

bool IpNetwork::Contains(const IpAddress& address) const {
  if (address.is_v6 != network_.is_v6) {
    return false;
  }
  const unsigned whole_bytes = prefix_length_ / 8;
  const unsigned remaining_bits = prefix_length_ % 8;
  if (!std::equal(address.bytes.begin(), address.bytes.begin() + whole_bytes,
                  network_.bytes.begin())) {
    return false;
  }
  if (remaining_bits == 0) {
    return true;
  }
  const auto mask = static_cast<std::uint8_t>(0xFF << (8 - remaining_bits));
  return (address.bytes[whole_bytes] & mask) == network_.bytes[whole_bytes];
}

}  // namespace conduit::rules
