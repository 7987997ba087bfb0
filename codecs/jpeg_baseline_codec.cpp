#include "codecs/jpeg_baseline_codec.h"

#include <turbojpeg.h>

#include <string>
#include <utility>

namespace conduit::codecs {
namespace {

constexpr std::string_view kJpegBaselineUid = "1.2.840.10008.1.2.4.50";
// JPEG frame headers hold 16-bit dimensions (ITU-T T.81 B.2.2).
constexpr std::uint32_t kMaxJpegDimension = 65535;

// A TurboJPEG handle per call: handles are not thread-safe and codecs keep no mutable state.
struct TjHandleDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};
using TjHandle = std::unique_ptr<void, TjHandleDeleter>;

struct TjBufferDeleter {
  void operator()(unsigned char* buffer) const { tjFree(buffer); }
};

CodecError TjError(std::string_view what, void* handle) {
  std::string message = "JPEG baseline ";
  message += what;
  message += ": ";
  message += handle != nullptr ? tjGetErrorStr2(handle) : "cannot create a TurboJPEG handle";
  return CodecError{std::move(message)};
}

}  // namespace

std::string_view JpegBaselineCodec::transfer_syntax_uid() const { return kJpegBaselineUid; }

std::optional<std::string> JpegBaselineCodec::EncodeRefusal(const FrameInfo& info,
                                                            const EncodeOptions& options) const {
  if (!options.lossy) return "JPEG baseline is lossy; the route must ask for lossy explicitly";
  if (info.bits_allocated != 8 || info.bits_stored != 8) {
    return "JPEG baseline takes 8-bit samples only (BitsAllocated 8, BitsStored 8), got " +
           std::to_string(info.bits_allocated) + "/" + std::to_string(info.bits_stored);
  }
  // PS3.5 8.2.1: the JPEG baseline process codes unsigned samples.
  if (info.is_signed) return "JPEG baseline takes unsigned samples only";
  if (info.rows == 0 || info.columns == 0 || info.rows > kMaxJpegDimension ||
      info.columns > kMaxJpegDimension) {
    return "JPEG baseline takes 1 to 65535 rows and columns, got " + std::to_string(info.rows) +
           "x" + std::to_string(info.columns);
  }
  if (info.samples_per_pixel == 1) {
    if (info.photometric != Photometric::kMonochrome1 &&
        info.photometric != Photometric::kMonochrome2) {
      return "JPEG baseline codes one-sample frames only as MONOCHROME1/MONOCHROME2, not " +
             std::string(PhotometricName(info.photometric));
    }
  } else if (info.samples_per_pixel == 3) {
    if (info.photometric != Photometric::kRgb) {
      return "JPEG baseline codes colour frames from RGB only, not " +
             std::string(PhotometricName(info.photometric));
    }
  } else {
    return "JPEG baseline takes 1 or 3 samples per pixel, got " +
           std::to_string(info.samples_per_pixel);
  }
  if (options.quality < 1 || options.quality > 100) {
    return "JPEG baseline quality must be 1-100, got " + std::to_string(options.quality);
  }
  return std::nullopt;
}

Result<EncodedFrame, CodecError> JpegBaselineCodec::Encode(std::span<const std::uint8_t> native,
                                                           const FrameInfo& info,
                                                           const EncodeOptions& options) const {
  if (auto refusal = EncodeRefusal(info, options)) return CodecError{*std::move(refusal)};
  if (native.size() != info.native_bytes()) {
    return CodecError{"JPEG baseline encode: frame has " + std::to_string(native.size()) +
                      " bytes, expected " + std::to_string(info.native_bytes())};
  }
  const bool colour = info.samples_per_pixel == 3;
  TjHandle handle(tjInitCompress());
  if (!handle) return TjError("encode", nullptr);
  unsigned char* jpeg = nullptr;
  unsigned long jpeg_size = 0;  // NOLINT(runtime/int): TurboJPEG's type
  // PS3.5 8.2.1: colour is coded as YCbCr with 4:2:2 chroma, hence YBR_FULL_422 below.
  const int status =
      tjCompress2(handle.get(), native.data(), static_cast<int>(info.columns),
                  /*pitch=*/0, static_cast<int>(info.rows), colour ? TJPF_RGB : TJPF_GRAY, &jpeg,
                  &jpeg_size, colour ? TJSAMP_422 : TJSAMP_GRAY, options.quality, /*flags=*/0);
  std::unique_ptr<unsigned char, TjBufferDeleter> owned(jpeg);
  if (status != 0) return TjError("encode", handle.get());
  EncodedFrame frame;
  frame.bytes.assign(jpeg, jpeg + jpeg_size);
  frame.photometric = colour ? Photometric::kYbrFull422 : info.photometric;
  return frame;
}

Result<DecodedFrame, CodecError> JpegBaselineCodec::Decode(std::span<const std::uint8_t> encoded,
                                                           const FrameInfo& info) const {
  if (info.bits_allocated != 8 || info.bits_stored == 0 || info.bits_stored > 8) {
    return CodecError{"JPEG baseline decodes to 8-bit samples; the dataset says BitsAllocated " +
                      std::to_string(info.bits_allocated) + ", BitsStored " +
                      std::to_string(info.bits_stored)};
  }
  if (info.samples_per_pixel != 1 && info.samples_per_pixel != 3) {
    return CodecError{"JPEG baseline decode: 1 or 3 samples per pixel expected, the dataset says " +
                      std::to_string(info.samples_per_pixel)};
  }
  const bool colour = info.samples_per_pixel == 3;
  if (colour && info.photometric != Photometric::kYbrFull422 &&
      info.photometric != Photometric::kYbrFull && info.photometric != Photometric::kRgb) {
    return CodecError{
        "JPEG baseline decode: colour frames must be YBR_FULL_422, YBR_FULL or RGB, "
        "the dataset says " +
        std::string(PhotometricName(info.photometric))};
  }
  if (encoded.empty()) return CodecError{"JPEG baseline decode: empty codestream"};
  TjHandle handle(tjInitDecompress());
  if (!handle) return TjError("decode", nullptr);
  int width = 0;
  int height = 0;
  int subsampling = 0;
  int colorspace = 0;
  if (tjDecompressHeader3(handle.get(), encoded.data(), encoded.size(), &width, &height,
                          &subsampling, &colorspace) != 0) {
    return TjError("decode header", handle.get());
  }
  if (static_cast<std::uint32_t>(width) != info.columns ||
      static_cast<std::uint32_t>(height) != info.rows) {
    return CodecError{"JPEG baseline decode: codestream is " + std::to_string(width) + "x" +
                      std::to_string(height) + " (columns x rows), the dataset says " +
                      std::to_string(info.columns) + "x" + std::to_string(info.rows)};
  }
  const int components = colorspace == TJCS_GRAY                                ? 1
                         : (colorspace == TJCS_RGB || colorspace == TJCS_YCbCr) ? 3
                                                                                : 4;
  if (components != info.samples_per_pixel) {
    return CodecError{"JPEG baseline decode: codestream has " + std::to_string(components) +
                      " components, the dataset says " + std::to_string(info.samples_per_pixel) +
                      " samples per pixel"};
  }
  DecodedFrame frame;
  frame.pixels.resize(info.native_bytes());
  if (tjDecompress2(handle.get(), encoded.data(), encoded.size(), frame.pixels.data(), width,
                    /*pitch=*/0, height, colour ? TJPF_RGB : TJPF_GRAY, /*flags=*/0) != 0) {
    // libjpeg reports corrupt entropy-coded data and truncation as warnings and fills the rest
    // of the frame with grey: a router must not pass that on as the image. Other warnings
    // (e.g. "Invalid SOS parameters for sequential JPEG", seen in real files) are harmless.
    const std::string_view message = tjGetErrorStr2(handle.get());
    if (tjGetErrorCode(handle.get()) != TJERR_WARNING || message.starts_with("Corrupt JPEG data") ||
        message.starts_with("Premature end of JPEG file")) {
      return TjError("decode", handle.get());
    }
  }
  // A BitsStored below 8 is legal for the baseline process' 8-bit samples; the coding error
  // may overshoot it, so clamp to keep the samples within BitsStored.
  // Signed samples (never produced by Encode) are read as DICOM stores them: the bit pattern,
  // sign-extended from BitsStored.
  if (info.bits_stored < 8) {
    const unsigned max_value = (1U << info.bits_stored) - 1;
    const unsigned sign_bit = 1U << (info.bits_stored - 1);
    for (auto& sample : frame.pixels) {
      if (!info.is_signed) {
        sample = static_cast<std::uint8_t>(sample > max_value ? max_value : sample);
      } else {
        const unsigned bits = sample & max_value;
        sample = static_cast<std::uint8_t>((bits & sign_bit) != 0 ? (bits | ~max_value) : bits);
      }
    }
  }
  frame.photometric = colour ? Photometric::kRgb : info.photometric;
  return frame;
}

std::unique_ptr<FrameCodec> MakeJpegBaselineCodec() {
  return std::make_unique<JpegBaselineCodec>();
}

}  // namespace conduit::codecs
