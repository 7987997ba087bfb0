#include "rules/edit_distance.h"

#include <algorithm>
#include <vector>

namespace conduit::rules {

std::size_t EditDistance(std::string_view a, std::string_view b, bool ignore_ascii_case) {
  const auto same = [ignore_ascii_case](char x, char y) {
    return ignore_ascii_case ? (x | 0x20) == (y | 0x20) : x == y;
  };
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = previous[j - 1] + (same(a[i - 1], b[j - 1]) ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

}  // namespace conduit::rules
