// One compressed transfer syntax's frame codec: native frame in, encoded frame out, and back.
// Codecs take and return buffers, hold no global state and report failures as values; the
// dataset transcoder (pixel data, fragments, attributes) is built on top of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codecs/result.h"

namespace conduit::codecs {

// PS3.3 C.7.6.3.1.2: what the samples of a frame mean.
enum class Photometric {
  kMonochrome1,
  kMonochrome2,
  kRgb,
  kYbrFull,
  kYbrFull422,  // two luma samples share one Cb/Cr pair: the JPEG baseline colour encoding
  kYbrIct,      // JPEG 2000 irreversible colour transform
  kYbrRct,      // JPEG 2000 reversible colour transform
  kPaletteColor,
};
std::string_view PhotometricName(Photometric photometric);           // "MONOCHROME2", ...
std::optional<Photometric> ParsePhotometric(std::string_view name);  // trailing spaces allowed

// One frame as DICOM describes it (PS3.3 C.7.6.3). Native frames passed to and returned by
// codecs are little-endian, bits_allocated / 8 bytes per sample, colour samples interleaved
// (R G B R G B ..., PlanarConfiguration 0), samples kept within bits_stored (signed ones sign-
// extended to the full width): the transcoder converts planar or big-endian data first.
struct FrameInfo {
  std::uint32_t rows = 0;
  std::uint32_t columns = 0;
  std::uint16_t samples_per_pixel = 1;  // 1 or 3
  std::uint16_t bits_allocated = 8;     // 8 or 16
  std::uint16_t bits_stored = 8;        // 1..bits_allocated
  bool is_signed = false;               // PixelRepresentation 1
  Photometric photometric = Photometric::kMonochrome2;

  std::size_t bytes_per_sample() const { return bits_allocated / 8; }
  std::size_t native_bytes() const {
    return static_cast<std::size_t>(rows) * columns * samples_per_pixel * bytes_per_sample();
  }
};

struct EncodeOptions {
  bool lossy = false;             // never lossy unless a route says so
  int quality = 90;               // JPEG baseline / extended lossy: 1-100
  double compression_ratio = 10;  // JPEG 2000 / HTJ2K lossy: target ratio of native to coded
  int near_lossless = 2;          // JPEG-LS near-lossless: NEAR, the largest sample error
};

struct EncodedFrame {
  std::vector<std::uint8_t> bytes;  // the codestream; even length is the transcoder's job
  // How DICOM must label the encoded frame: e.g. a colour JPEG baseline frame is YBR_FULL_422
  // whatever the input was; lossless codecs keep the input's interpretation.
  Photometric photometric = Photometric::kMonochrome2;
};

struct DecodedFrame {
  std::vector<std::uint8_t> pixels;  // native, as FrameInfo above describes
  // What the decoded samples are: e.g. JPEG baseline YBR_FULL_422 decodes to RGB.
  Photometric photometric = Photometric::kMonochrome2;
};

struct CodecError {
  std::string message;  // one line: what failed, for logs and dead-letter reasons
};

class FrameCodec {
 public:
  virtual ~FrameCodec() = default;
  virtual std::string_view transfer_syntax_uid() const = 0;
  // Why frames like `info` cannot be encoded with `options` (e.g. "JPEG baseline takes 8-bit
  // samples only"), or nullopt when they can.
  virtual std::optional<std::string> EncodeRefusal(const FrameInfo& info,
                                                   const EncodeOptions& options) const = 0;
  virtual Result<EncodedFrame, CodecError> Encode(std::span<const std::uint8_t> native,
                                                  const FrameInfo& info,
                                                  const EncodeOptions& options) const = 0;
  // `info` comes from the dataset (rows, columns, samples, bits, sign, photometric of the
  // encoded data); a codestream that disagrees with it is an error, never a crash.
  virtual Result<DecodedFrame, CodecError> Decode(std::span<const std::uint8_t> encoded,
                                                  const FrameInfo& info) const = 0;
};

}  // namespace conduit::codecs
