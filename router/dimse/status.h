// DIMSE status codes used by Conduit (PS3.7 Annex C, PS3.4 B.2.3 for C-STORE).
#pragma once

#include <cstdint>
#include <string>

namespace conduit::dimse {

namespace status {
inline constexpr std::uint16_t kSuccess = 0x0000;
// PS3.7 C.5: general failures.
inline constexpr std::uint16_t kSopClassNotSupported = 0x0122;
inline constexpr std::uint16_t kUnrecognizedOperation = 0x0211;
// PS3.4 B.2.3: C-STORE specific.
inline constexpr std::uint16_t kOutOfResources = 0xA700;
inline constexpr std::uint16_t kDataSetDoesNotMatchSopClass = 0xA900;
inline constexpr std::uint16_t kCannotUnderstand = 0xC000;
}  // namespace status

// "0x0000" style, for metrics labels and logs.
inline std::string FormatStatus(std::uint16_t code) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string text = "0x0000";
  for (int i = 0; i < 4; ++i) text[2 + i] = kHex[(code >> (12 - 4 * i)) & 0xF];
  return text;
}

}  // namespace conduit::dimse
