// Levenshtein distance, to suggest what a misspelt key or keyword was meant to be.
#pragma once

#include <cstddef>
#include <string_view>

namespace conduit::rules {

// `ignore_ascii_case`: 'a' and 'A' count as the same letter.
std::size_t EditDistance(std::string_view a, std::string_view b, bool ignore_ascii_case = false);

}  // namespace conduit::rules
