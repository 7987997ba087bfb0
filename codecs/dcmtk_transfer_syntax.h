// The DCMTK transfer syntax a registry UID is parsed and written as (internal to codecs/).
#pragma once

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include <string_view>

namespace conduit::codecs {

// EXS_Unknown for a UID outside the registry. HTJ2K maps to JPEG 2000 Lossless, whose encoding
// rules (Explicit VR Little Endian, encapsulated pixel data) are the same.
E_TransferSyntax DcmtkTransferSyntax(std::string_view uid);

}  // namespace conduit::codecs
