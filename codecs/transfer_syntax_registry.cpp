#include "codecs/transfer_syntax_registry.h"

#include <array>

namespace conduit::codecs {
namespace {

constexpr auto kLE = ByteOrder::kLittleEndian;
constexpr auto kBE = ByteOrder::kBigEndian;

// PS3.6 Table A-1 and PS3.5 Section 10 / Annex A. Order matters: it is the listener's default
// preference when the configuration lists no syntaxes and asks for our order.
constexpr std::array kRegistry{
    // uid, name, explicit_vr, byte_order, encapsulated, lossy, deflated, retired
    TransferSyntax{"1.2.840.10008.1.2.1", "Explicit VR Little Endian", true, kLE, false, false,
                   false, false},
    TransferSyntax{"1.2.840.10008.1.2", "Implicit VR Little Endian", false, kLE, false, false,
                   false, false},
    TransferSyntax{"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", true, kLE, false,
                   false, true, false},
    TransferSyntax{"1.2.840.10008.1.2.2", "Explicit VR Big Endian", true, kBE, false, false, false,
                   true},
    TransferSyntax{"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", true, kLE, true, true,
                   false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", true, kLE, true, true,
                   false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", true,
                   kLE, true, false, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.70",
                   "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [SV1])",
                   true, kLE, true, false, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", true, kLE, true,
                   false, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression",
                   true, kLE, true, true, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", true,
                   kLE, true, false, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", true, kLE, true, true,
                   false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.201",
                   "High-Throughput JPEG 2000 Image Compression (Lossless Only)", true, kLE, true,
                   false, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.202",
                   "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
                   true, kLE, true, false, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", true,
                   kLE, true, true, false, false},
    TransferSyntax{"1.2.840.10008.1.2.5", "RLE Lossless", true, kLE, true, false, false, false},
    // Video syntaxes are lossy, fragment-encapsulated streams: stored and forwarded as received.
    TransferSyntax{"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", true, kLE, true,
                   true, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", true, kLE, true,
                   true, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", true,
                   kLE, true, true, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.103",
                   "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", true, kLE, true, true,
                   false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.104",
                   "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", true, kLE, true, true,
                   false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.105",
                   "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", true, kLE, true, true,
                   false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
                   true, kLE, true, true, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", true, kLE,
                   true, true, false, false},
    TransferSyntax{"1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", true, kLE,
                   true, true, false, false},
};

}  // namespace

std::span<const TransferSyntax> AllTransferSyntaxes() { return kRegistry; }

const TransferSyntax* FindTransferSyntax(std::string_view uid) {
  for (const TransferSyntax& syntax : kRegistry) {
    if (syntax.uid == uid) return &syntax;
  }
  return nullptr;
}

}  // namespace conduit::codecs
