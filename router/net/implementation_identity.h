// How Conduit identifies itself in associations (PS3.7 D.3.3.2) and in the files it writes.
#pragma once

#include <string_view>

namespace conduit {

// A UUID-derived root (PS3.5 B.2): unique without a registered organisation root.
inline constexpr std::string_view kImplementationClassUid =
    "2.25.263021359236810995915724165750027048378";
inline constexpr std::string_view kImplementationVersionName = "CONDUIT_0_1";

}  // namespace conduit
