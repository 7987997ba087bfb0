#include "codecs/dcmtk_jpeg_codec.h"

// clang-format off
#include <dcmtk/config/osconfig.h>  // must come first in every DCMTK translation unit
// clang-format on
#include <dcmtk/dcmjpeg/djcparam.h>
#include <dcmtk/dcmjpeg/djdijg12.h>
#include <dcmtk/dcmjpeg/djdijg16.h>
#include <dcmtk/dcmjpeg/djdijg8.h>
#include <dcmtk/dcmjpeg/djeijg12.h>
#include <dcmtk/dcmjpeg/djeijg16.h>
#include <dcmtk/dcmjpeg/djeijg8.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

namespace conduit::codecs {
namespace {

// The IJG libraries read and write 12/16-bit samples in host order; native frames are
// little-endian, so this file relies on a little-endian host.
static_assert(std::endian::native == std::endian::little, "dcmtk_jpeg_codec assumes little-endian");

constexpr std::string_view kExtendedUid = "1.2.840.10008.1.2.4.51";
constexpr std::string_view kLosslessUid = "1.2.840.10008.1.2.4.57";
constexpr std::string_view kLosslessSv1Uid = "1.2.840.10008.1.2.4.70";
// JPEG frame headers hold 16-bit dimensions (ITU-T T.81 B.2.2); DCMTK's encoders take Uint16.
constexpr std::uint32_t kMaxJpegDimension = 65535;
// PS3.5 A.4.1 (Selection Value 1 for 1.2.840.10008.1.2.4.70; allowed for .57 too) and no point
// transform: a point transform would drop low bits, which is not lossless.
constexpr int kPredictor = 1;
constexpr int kPointTransform = 0;

// The IJG wrappers log warnings through DCMTK's global logger; codecs never log (only router/
// does), so the encoders are silenced and the decoders count warnings instead: IJG reports
// corrupt entropy-coded data as a warning and carries on with made-up samples.
template <typename Encoder>
class QuietEncoder final : public Encoder {
 public:
  using Encoder::Encoder;
  void emitMessage(void* /*arg*/, int /*msg_level*/) const override {}
};

template <typename Decoder>
class WarningCountingDecoder final : public Decoder {
 public:
  using Decoder::Decoder;
  void emitMessage(int msg_level) const override {
    if (msg_level < 0) ++warnings_;  // IJG: -1 is a warning, 0 and above are trace messages
  }
  int warnings() const { return warnings_; }

 private:
  mutable int warnings_ = 0;
};

// What the frame header (SOFn, ITU-T T.81 B.2.2) says. Parsed here rather than trusted to the
// IJG wrappers so that the library matching the precision is chosen and the geometry is checked
// against the dataset before any buffer is sized.
struct FrameHeader {
  std::uint8_t marker = 0;  // 0xC0..0xCF
  int precision = 0;
  std::uint32_t rows = 0;
  std::uint32_t columns = 0;
  int components = 0;
  std::size_t scan_data_offset = 0;  // where the first scan's entropy-coded data begins
};

Result<FrameHeader, CodecError> ParseFrameHeader(std::span<const std::uint8_t> bytes) {
  auto error = [](std::string what) { return CodecError{"JPEG codestream: " + std::move(what)}; };
  if (bytes.size() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8) return error("no SOI marker");
  std::size_t pos = 2;
  std::optional<FrameHeader> found;
  while (true) {
    if (pos >= bytes.size()) return error("ends before the first scan (SOS)");
    if (bytes[pos] != 0xFF) return error("no marker at offset " + std::to_string(pos));
    while (pos < bytes.size() && bytes[pos] == 0xFF) ++pos;  // fill bytes (T.81 B.1.1.2)
    if (pos >= bytes.size()) return error("ends before the first scan (SOS)");
    const std::uint8_t marker = bytes[pos++];
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // TEM, RSTn: no length
    if (marker == 0xD8 || marker == 0xD9) {
      constexpr char kHex[] = "0123456789ABCDEF";
      return error(std::string("marker 0xFF") + kHex[marker >> 4] + kHex[marker & 0xF] +
                   " before the first scan (SOS)");
    }
    if (pos + 2 > bytes.size()) return error("truncated in a marker segment");
    const std::size_t length = (std::size_t{bytes[pos]} << 8) | bytes[pos + 1];
    if (length < 2 || pos + length > bytes.size()) return error("truncated in a marker segment");
    const bool sof = !found && marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 &&
                     marker != 0xC8 && marker != 0xCC;  // DHT, JPG and DAC share the range
    if (sof) {
      if (length < 8) return error("frame header too short");
      FrameHeader header;
      header.marker = marker;
      header.precision = bytes[pos + 2];
      header.rows = (std::uint32_t{bytes[pos + 3]} << 8) | bytes[pos + 4];
      header.columns = (std::uint32_t{bytes[pos + 5]} << 8) | bytes[pos + 6];
      header.components = bytes[pos + 7];
      if (length < 8 + 3 * static_cast<std::size_t>(header.components)) {
        return error("frame header too short for its components");
      }
      found = header;
    }
    pos += length;
    if (marker == 0xDA) {  // SOS: entropy-coded data follows
      if (!found) return error("scan (SOS) before the frame header (SOF)");
      found->scan_data_offset = pos;
      return *found;
    }
  }
}

std::uint16_t Load16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
void Store16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}

// 8-bit samples for the 8-bit IJG library: the frame itself when it needs no masking.
const std::uint8_t* Samples8(std::span<const std::uint8_t> native, const FrameInfo& info,
                             std::size_t count, std::vector<std::uint8_t>& scratch) {
  const unsigned mask = (1U << info.bits_stored) - 1;
  if (info.bits_allocated == 8) {
    unsigned any = 0;
    for (std::size_t i = 0; i < count; ++i) any |= native[i];
    if ((any & ~mask) == 0) return native.data();
    scratch.resize(count);
    for (std::size_t i = 0; i < count; ++i)
      scratch[i] = static_cast<std::uint8_t>(native[i] & mask);
  } else {
    scratch.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      scratch[i] = static_cast<std::uint8_t>(Load16(&native[2 * i]) & mask);
    }
  }
  return scratch.data();
}

// 16-bit samples for the 12/16-bit IJG libraries: the frame itself when it is aligned and needs
// no masking (signed samples below 16 bits always do: their sign bits lie above BitsStored).
const std::uint16_t* Samples16(std::span<const std::uint8_t> native, const FrameInfo& info,
                               std::size_t count, std::vector<std::uint16_t>& scratch) {
  const unsigned mask = (1U << info.bits_stored) - 1;
  const bool aligned = reinterpret_cast<std::uintptr_t>(native.data()) % alignof(Uint16) == 0;
  if (aligned) {
    unsigned any = 0;
    if (info.bits_stored < 16) {
      for (std::size_t i = 0; i < count; ++i) any |= Load16(&native[2 * i]);
    }
    if ((any & ~mask) == 0) return reinterpret_cast<const std::uint16_t*>(native.data());
  }
  scratch.resize(count);
  std::memcpy(scratch.data(), native.data(), count * 2);
  if (info.bits_stored < 16) {
    for (auto& sample : scratch) sample = static_cast<std::uint16_t>(sample & mask);
  }
  return scratch.data();
}

template <typename Encoder, typename Sample, typename... EncoderArgs>
Result<std::vector<std::uint8_t>, CodecError> RunEncoder(const FrameInfo& info,
                                                         EP_Interpretation interpretation,
                                                         const Sample* samples,
                                                         EncoderArgs&&... encoder_args) {
  QuietEncoder<Encoder> encoder(std::forward<EncoderArgs>(encoder_args)...);
  Uint8* to = nullptr;
  Uint32 length = 0;
  // The encoders only read the frame (through jpeg_write_scanlines); their interface just
  // predates const.
  const OFCondition status = encoder.encode(
      static_cast<Uint16>(info.columns), static_cast<Uint16>(info.rows), interpretation,
      info.samples_per_pixel, const_cast<Sample*>(samples), to, length);
  const std::unique_ptr<Uint8[]> owned(to);
  if (status.bad() || to == nullptr) {
    return CodecError{std::string("JPEG encode (DCMTK IJG): ") + status.text()};
  }
  // DCMTK pads the codestream to even length after EOI; the transcoder pads, so drop it here.
  std::size_t size = length;
  if (size >= 3 && to[size - 1] == 0 && to[size - 2] == 0xD9 && to[size - 3] == 0xFF) --size;
  return std::vector<std::uint8_t>(to, to + size);
}

template <typename Decoder>
Result<EP_Interpretation, CodecError> RunDecoder(const DJCodecParameter& parameters,
                                                 std::span<const std::uint8_t> encoded,
                                                 std::size_t scan_data_offset, std::uint8_t* out,
                                                 std::size_t out_bytes) {
  WarningCountingDecoder<Decoder> decoder(parameters, /*isYBR=*/OFFalse);
  OFCondition status = decoder.init();
  if (status.bad()) return CodecError{std::string("JPEG decode (DCMTK IJG): ") + status.text()};
  // Fed in two parts, using the wrapper's suspension support: the markers up to the first
  // scan's data, then the rest. Warnings in the first part (e.g. "Invalid SOS parameters for
  // sequential JPEG", seen in real files) are harmless; in the second they mean corrupt
  // entropy-coded data ("Corrupt JPEG data: ..."), which IJG would hide behind made-up samples.
  // The decoder only reads the codestream; its interface just predates const.
  auto* data = const_cast<Uint8*>(encoded.data());
  status = decoder.decode(data, static_cast<Uint32>(scan_data_offset), out,
                          static_cast<Uint32>(out_bytes), /*isSigned=*/OFFalse);
  const int header_warnings = decoder.warnings();
  if (status == EJ_Suspension && scan_data_offset < encoded.size()) {
    status = decoder.decode(data + scan_data_offset,
                            static_cast<Uint32>(encoded.size() - scan_data_offset), out,
                            static_cast<Uint32>(out_bytes), /*isSigned=*/OFFalse);
  }
  if (status == EJ_Suspension) {
    return CodecError{"JPEG decode: truncated codestream (data ends before the frame does)"};
  }
  if (status.bad()) return CodecError{std::string("JPEG decode (DCMTK IJG): ") + status.text()};
  if (decoder.warnings() > header_warnings) {
    return CodecError{"JPEG decode: corrupt entropy-coded data (the IJG library reported " +
                      std::to_string(decoder.warnings() - header_warnings) + " warning(s))"};
  }
  return decoder.getDecompressedColorModel();
}

// Keeps decoded samples within BitsStored (FrameInfo's convention): a lossy process may
// overshoot an unsigned range (clamp); otherwise the bit pattern is masked and, for signed
// samples, sign-extended (the lossless processes code signed samples as their bit pattern).
struct SampleFix {
  unsigned mask;
  unsigned sign_bit;
  bool is_signed;
  bool clamp;

  std::uint16_t operator()(unsigned value) const {
    if (clamp) return static_cast<std::uint16_t>(std::min(value, mask));
    value &= mask;
    if (is_signed && (value & sign_bit) != 0) value |= ~mask;
    return static_cast<std::uint16_t>(value);
  }
};

bool ColourLabelOk(Photometric photometric) {
  return photometric == Photometric::kYbrFull422 || photometric == Photometric::kYbrFull ||
         photometric == Photometric::kRgb;
}

}  // namespace

std::string_view DcmtkJpegCodec::transfer_syntax_uid() const {
  switch (process_) {
    case DcmtkJpegProcess::kExtended:
      return kExtendedUid;
    case DcmtkJpegProcess::kLossless:
      return kLosslessUid;
    case DcmtkJpegProcess::kLosslessSv1:
      return kLosslessSv1Uid;
  }
  return kLosslessUid;
}

std::optional<std::string> DcmtkJpegCodec::EncodeRefusal(const FrameInfo& info,
                                                         const EncodeOptions& options) const {
  const std::string name = lossless() ? "JPEG lossless" : "JPEG extended";
  if (lossless() && options.lossy) {
    return name + " codes losslessly; the route asks for lossy: pick a lossy transfer syntax";
  }
  if (!lossless() && !options.lossy) {
    return name + " is lossy; the route must ask for lossy explicitly";
  }
  if (info.rows == 0 || info.columns == 0 || info.rows > kMaxJpegDimension ||
      info.columns > kMaxJpegDimension) {
    return name + " takes 1 to 65535 rows and columns, got " + std::to_string(info.rows) + "x" +
           std::to_string(info.columns);
  }
  if (info.bits_allocated != 8 && info.bits_allocated != 16) {
    return name + " takes BitsAllocated 8 or 16, got " + std::to_string(info.bits_allocated);
  }
  if (info.bits_stored == 0 || info.bits_stored > info.bits_allocated) {
    return name + ": BitsStored " + std::to_string(info.bits_stored) +
           " does not fit BitsAllocated " + std::to_string(info.bits_allocated);
  }
  if (info.samples_per_pixel == 1) {
    const bool ok = info.photometric == Photometric::kMonochrome1 ||
                    info.photometric == Photometric::kMonochrome2 ||
                    (lossless() && info.photometric == Photometric::kPaletteColor);
    if (!ok) {
      return name + " cannot code a one-sample " + std::string(PhotometricName(info.photometric)) +
             " frame";
    }
  } else if (info.samples_per_pixel == 3) {
    if (info.photometric != Photometric::kRgb && info.photometric != Photometric::kYbrFull) {
      return name + " codes colour from RGB or YBR_FULL only, not " +
             std::string(PhotometricName(info.photometric));
    }
  } else {
    return name + " takes 1 or 3 samples per pixel, got " + std::to_string(info.samples_per_pixel);
  }
  if (!lossless()) {
    if (info.bits_stored > 12) {
      return "JPEG extended takes at most 12-bit samples, got BitsStored " +
             std::to_string(info.bits_stored) + ": use a lossless or JPEG 2000 syntax";
    }
    // Lossy coding of a two's complement bit pattern would smear values across the wrap
    // between -1 and the largest positive value.
    if (info.is_signed) return "JPEG extended (lossy) takes unsigned samples only";
    if (info.samples_per_pixel == 3 && info.bits_stored > 8) {
      return "JPEG extended codes colour at 8 bits only, got BitsStored " +
             std::to_string(info.bits_stored);
    }
    if (options.quality < 1 || options.quality > 100) {
      return "JPEG extended quality must be 1-100, got " + std::to_string(options.quality);
    }
  }
  return std::nullopt;
}

Result<EncodedFrame, CodecError> DcmtkJpegCodec::Encode(std::span<const std::uint8_t> native,
                                                        const FrameInfo& info,
                                                        const EncodeOptions& options) const {
  if (auto refusal = EncodeRefusal(info, options)) return CodecError{*std::move(refusal)};
  if (native.size() != info.native_bytes()) {
    return CodecError{"JPEG encode: frame has " + std::to_string(native.size()) +
                      " bytes, expected " + std::to_string(info.native_bytes())};
  }
  const std::size_t count =
      static_cast<std::size_t>(info.rows) * info.columns * info.samples_per_pixel;
  const bool colour = info.samples_per_pixel == 3;
  // The JPEG stream only needs to know greyscale, RGB or YCbCr; DICOM carries the rest.
  const EP_Interpretation interpretation = !colour ? EPI_Monochrome2
                                           : info.photometric == Photometric::kYbrFull
                                               ? EPI_YBR_Full
                                               : EPI_RGB;
  // Lossless: ECC_lossyRGB keeps IJG from converting colour (RGB stays RGB, YBR_FULL stays
  // YBR_FULL) and no subsampling. Lossy colour: YCbCr with 4:2:2 chroma (PS3.5 8.2.1).
  const DJCodecParameter parameters(lossless() ? ECC_lossyRGB : ECC_lossyYCbCr,
                                    EDC_photometricInterpretation, EUC_never, EPC_colorByPixel,
                                    OFFalse, OFFalse, OFFalse, /*pOptimizeHuffman=*/OFFalse,
                                    /*pSmoothingFactor=*/0, /*pForcedBitDepth=*/0,
                                    /*pFragmentSize=*/0, OFTrue, lossless() ? ESS_444 : ESS_422);
  // The IJG library is built three times; pick the one matching the precision (T.81 allows 8
  // and 12 bits for the DCT processes, 2 to 16 for lossless).
  Result<std::vector<std::uint8_t>, CodecError> bytes = CodecError{};
  if (info.bits_stored <= 8) {
    std::vector<std::uint8_t> scratch;
    const std::uint8_t* samples = Samples8(native, info, count, scratch);
    bytes = lossless() ? RunEncoder<DJCompressIJG8Bit>(info, interpretation, samples, parameters,
                                                       EJM_lossless, kPredictor, kPointTransform)
                       : RunEncoder<DJCompressIJG8Bit>(info, interpretation, samples, parameters,
                                                       EJM_sequential,
                                                       static_cast<Uint8>(options.quality));
  } else {
    std::vector<std::uint16_t> scratch;
    const std::uint16_t* samples = Samples16(native, info, count, scratch);
    if (!lossless()) {
      bytes = RunEncoder<DJCompressIJG12Bit>(info, interpretation, samples, parameters,
                                             EJM_sequential, static_cast<Uint8>(options.quality));
    } else if (info.bits_stored <= 12) {
      bytes = RunEncoder<DJCompressIJG12Bit>(info, interpretation, samples, parameters,
                                             EJM_lossless, kPredictor, kPointTransform);
    } else {
      bytes = RunEncoder<DJCompressIJG16Bit>(info, interpretation, samples, parameters,
                                             EJM_lossless, kPredictor, kPointTransform);
    }
  }
  if (!bytes) return bytes.error();
  EncodedFrame frame;
  frame.bytes = std::move(bytes).value();
  frame.photometric = (colour && !lossless()) ? Photometric::kYbrFull422 : info.photometric;
  return frame;
}

Result<DecodedFrame, CodecError> DcmtkJpegCodec::Decode(std::span<const std::uint8_t> encoded,
                                                        const FrameInfo& info) const {
  const std::string name = lossless() ? "JPEG lossless" : "JPEG extended";
  if ((info.bits_allocated != 8 && info.bits_allocated != 16) || info.bits_stored == 0 ||
      info.bits_stored > info.bits_allocated) {
    return CodecError{name + " decode: unsupported BitsAllocated/BitsStored " +
                      std::to_string(info.bits_allocated) + "/" + std::to_string(info.bits_stored)};
  }
  if (info.samples_per_pixel != 1 && info.samples_per_pixel != 3) {
    return CodecError{name + " decode: 1 or 3 samples per pixel expected, the dataset says " +
                      std::to_string(info.samples_per_pixel)};
  }
  const bool colour = info.samples_per_pixel == 3;
  if (colour && !lossless() && !ColourLabelOk(info.photometric)) {
    return CodecError{name +
                      " decode: colour frames must be YBR_FULL_422, YBR_FULL or RGB, the "
                      "dataset says " +
                      std::string(PhotometricName(info.photometric))};
  }
  if (encoded.size() > std::numeric_limits<Uint32>::max() ||
      info.native_bytes() > std::numeric_limits<Uint32>::max()) {
    return CodecError{name + " decode: frame larger than 4 GiB"};
  }
  auto header = ParseFrameHeader(encoded);
  if (!header) return header.error();
  // SOF0/1/2: baseline, extended, progressive DCT (Huffman); SOF3: lossless (Huffman). The
  // hierarchical and arithmetic-coded processes are not in DCMTK's IJG build.
  const bool marker_ok =
      lossless() ? header->marker == 0xC3 : (header->marker >= 0xC0 && header->marker <= 0xC2);
  if (!marker_ok) {
    return CodecError{name + " decode: codestream uses frame type SOF" +
                      std::to_string(header->marker - 0xC0) + ", not one of this syntax"};
  }
  if (header->rows != info.rows || header->columns != info.columns ||
      header->components != info.samples_per_pixel) {
    return CodecError{name + " decode: codestream is " + std::to_string(header->columns) + "x" +
                      std::to_string(header->rows) + "x" + std::to_string(header->components) +
                      " (columns x rows x components), the dataset says " +
                      std::to_string(info.columns) + "x" + std::to_string(info.rows) + "x" +
                      std::to_string(info.samples_per_pixel)};
  }
  const int precision = header->precision;
  const bool precision_ok =
      lossless() ? (precision >= 2 && precision <= 16) : (precision == 8 || precision == 12);
  if (!precision_ok || precision > info.bits_allocated) {
    return CodecError{name + " decode: codestream precision " + std::to_string(precision) +
                      " does not fit BitsAllocated " + std::to_string(info.bits_allocated)};
  }

  const DJCodecParameter parameters(ECC_lossyYCbCr, lossless() ? EDC_never : EDC_guessLossyOnly,
                                    EUC_never, EPC_colorByPixel);
  const std::size_t count =
      static_cast<std::size_t>(info.rows) * info.columns * info.samples_per_pixel;
  DecodedFrame frame;
  frame.pixels.resize(info.native_bytes());
  std::vector<std::uint8_t> narrow;  // 8-bit decoder output for a 16-bit frame
  Result<EP_Interpretation, CodecError> model = CodecError{};
  if (precision <= 8) {
    std::uint8_t* out = frame.pixels.data();
    if (info.bits_allocated == 16) {
      narrow.resize(count);
      out = narrow.data();
    }
    model =
        RunDecoder<DJDecompressIJG8Bit>(parameters, encoded, header->scan_data_offset, out, count);
  } else if (precision <= 12) {
    model = RunDecoder<DJDecompressIJG12Bit>(parameters, encoded, header->scan_data_offset,
                                             frame.pixels.data(), frame.pixels.size());
  } else {
    model = RunDecoder<DJDecompressIJG16Bit>(parameters, encoded, header->scan_data_offset,
                                             frame.pixels.data(), frame.pixels.size());
  }
  if (!model) return model.error();

  const unsigned mask = (1U << info.bits_stored) - 1;
  const SampleFix fix{mask, 1U << (info.bits_stored - 1), info.is_signed,
                      /*clamp=*/!lossless() && !info.is_signed};
  // Only needed when the samples may reach beyond BitsStored or carry a sign to extend.
  const bool needs_fix = info.bits_stored < precision || (info.is_signed && info.bits_stored < 16);
  if (!narrow.empty()) {
    for (std::size_t i = 0; i < count; ++i) Store16(&frame.pixels[2 * i], fix(narrow[i]));
  } else if (needs_fix && info.bits_allocated == 8) {
    for (auto& sample : frame.pixels) sample = static_cast<std::uint8_t>(fix(sample));
  } else if (needs_fix) {
    for (std::size_t i = 0; i < count; ++i) {
      Store16(&frame.pixels[2 * i], fix(Load16(&frame.pixels[2 * i])));
    }
  }
  frame.photometric =
      colour && !lossless() && *model == EPI_RGB ? Photometric::kRgb : info.photometric;
  return frame;
}

std::unique_ptr<FrameCodec> MakeJpegExtendedCodec() {
  return std::make_unique<DcmtkJpegCodec>(DcmtkJpegProcess::kExtended);
}
std::unique_ptr<FrameCodec> MakeJpegLosslessCodec() {
  return std::make_unique<DcmtkJpegCodec>(DcmtkJpegProcess::kLossless);
}
std::unique_ptr<FrameCodec> MakeJpegLosslessSv1Codec() {
  return std::make_unique<DcmtkJpegCodec>(DcmtkJpegProcess::kLosslessSv1);
}

}  // namespace conduit::codecs
