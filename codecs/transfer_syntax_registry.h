// Conduit's own transfer-syntax registry. DCMTK 3.6.7 lacks the HTJ2K UIDs, and the listener,
// spool and (later) the transcoder all need the same facts about each syntax.
#pragma once

#include <optional>
#include <span>
#include <string_view>

namespace conduit::codecs {

enum class ByteOrder { kLittleEndian, kBigEndian };

struct TransferSyntax {
  std::string_view uid;
  std::string_view name;  // as in PS3.6 Table A-1
  bool explicit_vr;
  ByteOrder byte_order;
  bool encapsulated;  // pixel data in fragments (compressed)
  bool lossy;
  bool deflated;  // the whole dataset is deflated (PS3.5 A.5)
  bool retired;
};

// Every transfer syntax Conduit knows, uncompressed first, then compressed.
std::span<const TransferSyntax> AllTransferSyntaxes();

// nullptr when the UID is not in the registry.
const TransferSyntax* FindTransferSyntax(std::string_view uid);

namespace uid {
inline constexpr std::string_view kImplicitVrLittleEndian = "1.2.840.10008.1.2";
inline constexpr std::string_view kExplicitVrLittleEndian = "1.2.840.10008.1.2.1";
inline constexpr std::string_view kDeflatedExplicitVrLittleEndian = "1.2.840.10008.1.2.1.99";
inline constexpr std::string_view kExplicitVrBigEndian = "1.2.840.10008.1.2.2";
}  // namespace uid

}  // namespace conduit::codecs
