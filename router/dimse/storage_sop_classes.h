// Whether a SOP Class UID is one of the standard's storage SOP classes (DCMTK's table, which
// follows PS3.4 Annex B and includes the non-patient storage classes).
#pragma once

#include <string>

namespace conduit::dimse {

inline constexpr const char* kVerificationSopClass = "1.2.840.10008.1.1";

bool IsStandardStorageSopClass(const std::string& uid);

}  // namespace conduit::dimse
