#include "codecs/frame_codec.h"

#include <array>
#include <utility>

namespace conduit::codecs {
namespace {

constexpr std::array<std::pair<Photometric, std::string_view>, 8> kNames = {{
    {Photometric::kMonochrome1, "MONOCHROME1"},
    {Photometric::kMonochrome2, "MONOCHROME2"},
    {Photometric::kRgb, "RGB"},
    {Photometric::kYbrFull, "YBR_FULL"},
    {Photometric::kYbrFull422, "YBR_FULL_422"},
    {Photometric::kYbrIct, "YBR_ICT"},
    {Photometric::kYbrRct, "YBR_RCT"},
    {Photometric::kPaletteColor, "PALETTE COLOR"},
}};

}  // namespace

std::string_view PhotometricName(Photometric photometric) {
  for (const auto& [value, name] : kNames) {
    if (value == photometric) return name;
  }
  return "MONOCHROME2";
}

std::optional<Photometric> ParsePhotometric(std::string_view name) {
  while (!name.empty() && (name.back() == ' ' || name.back() == '\0')) name.remove_suffix(1);
  for (const auto& [value, known] : kNames) {
    if (known == name) return value;
  }
  return std::nullopt;
}

}  // namespace conduit::codecs
