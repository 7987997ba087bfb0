// An IPv4 or IPv6 network in CIDR notation, for admission checks on source addresses.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace conduit::rules {

class Cidr {
 public:
  // "10.0.0.0/8", "192.168.1.7" (a /32), "fd00::/8". nullopt when malformed.
  static std::optional<Cidr> Parse(std::string_view text);

  // `address` is a textual IPv4 or IPv6 address (IPv4-mapped IPv6 counts as IPv4).
  bool Contains(std::string_view address) const;

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  bool is_v6_ = false;
  std::array<std::uint8_t, 16> network_{};
  unsigned prefix_length_ = 0;
};

}  // namespace conduit::rules
