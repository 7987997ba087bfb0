#include "codecs/jpeg2000_codec.h"

#include <openjpeg.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "codecs/sample_bits.h"

namespace conduit::codecs {
namespace {

// Enough for any main header; OpenJPEG reads tile data larger than this straight into place.
constexpr OPJ_SIZE_T kStreamChunk = 64 * 1024;
// A frame split into more tiles than this is hostile, not a medical image: refuse it before
// OpenJPEG allocates per-tile structures.
constexpr std::uint64_t kMaxTiles = 4096;
constexpr int kMaxResolutions = 6;  // 5 decomposition levels, OpenJPEG's default

CodecError Fail(std::string message) { return CodecError{std::move(message)}; }

// Collects OpenJPEG's first error message (they end in '\n') for the CodecError text.
struct Messages {
  std::string error;
  static void OnError(const char* text, void* client) {
    auto* self = static_cast<Messages*>(client);
    if (!self->error.empty() || text == nullptr) return;
    self->error = text;
    while (!self->error.empty() && (self->error.back() == '\n' || self->error.back() == ' ')) {
      self->error.pop_back();
    }
  }
  static void Ignore(const char*, void*) {}
  std::string Describe(std::string_view what) const {
    std::string text(what);
    if (!error.empty()) text += ": " + error;
    return text;
  }
};

void RouteMessages(opj_codec_t* codec, Messages& messages) {
  opj_set_error_handler(codec, &Messages::OnError, &messages);
  opj_set_warning_handler(codec, &Messages::Ignore, nullptr);
  opj_set_info_handler(codec, &Messages::Ignore, nullptr);
}

// OpenJPEG objects, released whatever path a call takes.
struct CodecDeleter {
  void operator()(opj_codec_t* codec) const { opj_destroy_codec(codec); }
};
struct StreamDeleter {
  void operator()(opj_stream_t* stream) const { opj_stream_destroy(stream); }
};
struct ImageDeleter {
  void operator()(opj_image_t* image) const { opj_image_destroy(image); }
};
using CodecPtr = std::unique_ptr<opj_codec_t, CodecDeleter>;
using StreamPtr = std::unique_ptr<opj_stream_t, StreamDeleter>;
using ImagePtr = std::unique_ptr<opj_image_t, ImageDeleter>;

// opj_stream callbacks over memory: OpenJPEG has no memory stream of its own.
struct MemoryReader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t position = 0;

  static OPJ_SIZE_T Read(void* buffer, OPJ_SIZE_T count, void* user) {
    auto* self = static_cast<MemoryReader*>(user);
    if (self->position >= self->size) return static_cast<OPJ_SIZE_T>(-1);  // end of stream
    const std::size_t n = std::min<std::size_t>(count, self->size - self->position);
    std::memcpy(buffer, self->data + self->position, n);
    self->position += n;
    return n;
  }
  static OPJ_OFF_T Skip(OPJ_OFF_T count, void* user) {
    auto* self = static_cast<MemoryReader*>(user);
    if (count < 0) {
      if (static_cast<std::uint64_t>(-count) > self->position) return -1;
      self->position -= static_cast<std::size_t>(-count);
      return count;
    }
    // Like fseek, skipping past the end succeeds; the next read reports the end.
    self->position += std::min<std::size_t>(static_cast<std::size_t>(count),
                                            self->size - std::min(self->position, self->size));
    return count;
  }
  static OPJ_BOOL Seek(OPJ_OFF_T offset, void* user) {
    auto* self = static_cast<MemoryReader*>(user);
    if (offset < 0 || static_cast<std::uint64_t>(offset) > self->size) return OPJ_FALSE;
    self->position = static_cast<std::size_t>(offset);
    return OPJ_TRUE;
  }
};

struct MemoryWriter {
  std::vector<std::uint8_t>* out;
  std::size_t position = 0;

  void Reserve(std::size_t end) {
    if (end > out->size()) out->resize(end);
  }
  static OPJ_SIZE_T Write(void* buffer, OPJ_SIZE_T count, void* user) {
    auto* self = static_cast<MemoryWriter*>(user);
    self->Reserve(self->position + count);
    std::memcpy(self->out->data() + self->position, buffer, count);
    self->position += count;
    return count;
  }
  static OPJ_OFF_T Skip(OPJ_OFF_T count, void* user) {
    auto* self = static_cast<MemoryWriter*>(user);
    if (count < 0 && static_cast<std::uint64_t>(-count) > self->position) return -1;
    self->position = static_cast<std::size_t>(static_cast<OPJ_OFF_T>(self->position) + count);
    self->Reserve(self->position);
    return count;
  }
  static OPJ_BOOL Seek(OPJ_OFF_T offset, void* user) {
    auto* self = static_cast<MemoryWriter*>(user);
    if (offset < 0) return OPJ_FALSE;
    self->position = static_cast<std::size_t>(offset);
    self->Reserve(self->position);
    return OPJ_TRUE;
  }
};

std::optional<std::string> CommonRefusal(const FrameInfo& info) {
  if (info.rows == 0 || info.columns == 0) return "JPEG 2000 needs a non-empty frame";
  if (info.samples_per_pixel != 1 && info.samples_per_pixel != 3) {
    return "JPEG 2000 codes 1 or 3 samples per pixel";
  }
  if (info.bits_allocated != 8 && info.bits_allocated != 16) {
    return "JPEG 2000 takes 8 or 16 bits allocated";
  }
  if (info.bits_stored < 1 || info.bits_stored > info.bits_allocated) {
    return "JPEG 2000 needs 1 <= bits stored <= bits allocated";
  }
  if (info.photometric == Photometric::kYbrFull422) {
    return "JPEG 2000 cannot code YBR_FULL_422 (PS3.5 8.2.4): convert to RGB first";
  }
  if (info.photometric == Photometric::kYbrIct || info.photometric == Photometric::kYbrRct) {
    return "JPEG 2000 input must be decoded samples, not YBR_ICT/YBR_RCT";
  }
  return std::nullopt;
}

// Sample `index` of a native frame, reduced to Bits Stored: masked when unsigned, sign-extended
// from Bits Stored when signed.
inline std::int32_t NativeSample(const std::uint8_t* native, std::size_t index, bool wide,
                                 std::uint32_t mask, std::uint32_t sign_bit, bool is_signed) {
  std::uint32_t raw = wide ? static_cast<std::uint32_t>(native[2 * index]) |
                                 static_cast<std::uint32_t>(native[2 * index + 1]) << 8
                           : native[index];
  raw &= mask;
  if (is_signed)
    return static_cast<std::int32_t>(raw ^ sign_bit) - static_cast<std::int32_t>(sign_bit);
  return static_cast<std::int32_t>(raw);
}

int ResolutionsFor(std::uint32_t columns, std::uint32_t rows) {
  // OpenJPEG refuses a tile smaller than 2^(resolutions - 1) samples on a side.
  const std::uint32_t smallest = std::min(columns, rows);
  int resolutions = 1;
  while (resolutions < kMaxResolutions && (std::uint32_t{1} << resolutions) <= smallest) {
    ++resolutions;
  }
  return resolutions;
}

}  // namespace

std::string_view Jpeg2000Codec::transfer_syntax_uid() const {
  return mode_ == Mode::kLosslessOnly ? kJpeg2000LosslessUid : kJpeg2000Uid;
}

std::optional<std::string> Jpeg2000Codec::EncodeRefusal(const FrameInfo& info,
                                                        const EncodeOptions& options) const {
  if (auto refusal = CommonRefusal(info)) return refusal;
  if (options.lossy) {
    if (mode_ == Mode::kLosslessOnly) {
      return "JPEG 2000 Lossless Only (1.2.840.10008.1.2.4.90) cannot code lossy";
    }
    if (info.photometric == Photometric::kPaletteColor) {
      return "lossy JPEG 2000 would corrupt PALETTE COLOR indices";
    }
    if (!(options.compression_ratio > 1.0)) {
      return "lossy JPEG 2000 needs a compression ratio above 1";
    }
  }
  return std::nullopt;
}

Result<EncodedFrame, CodecError> Jpeg2000Codec::Encode(std::span<const std::uint8_t> native,
                                                       const FrameInfo& info,
                                                       const EncodeOptions& options) const {
  if (auto refusal = EncodeRefusal(info, options)) return Fail(*refusal);
  if (native.size() != info.native_bytes()) {
    return Fail("JPEG 2000 encode: frame is " + std::to_string(native.size()) +
                " bytes, expected " + std::to_string(info.native_bytes()));
  }
  const bool lossy = options.lossy;  // refused above for 4.90
  const std::uint32_t components = info.samples_per_pixel;
  // PS3.5 8.2.4: RGB is coded through the colour transform (RCT when reversible, ICT when not)
  // and labelled YBR_RCT / YBR_ICT, as most encoders do; other interpretations keep theirs.
  const bool mct = components == 3 && info.photometric == Photometric::kRgb;

  std::vector<opj_image_cmptparm_t> parameters(components);
  for (auto& p : parameters) {
    std::memset(&p, 0, sizeof(p));
    p.dx = 1;
    p.dy = 1;
    p.w = info.columns;
    p.h = info.rows;
    p.prec = info.bits_stored;
    p.sgnd = info.is_signed ? 1 : 0;
  }
  ImagePtr image(opj_image_create(components, parameters.data(),
                                  components == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY));
  if (!image) return Fail("JPEG 2000 encode: out of memory for the image");
  image->x0 = 0;
  image->y0 = 0;
  image->x1 = info.columns;
  image->y1 = info.rows;

  const std::size_t pixels = static_cast<std::size_t>(info.rows) * info.columns;
  const bool wide = info.bits_allocated == 16;
  const std::uint32_t mask = sample_bits::LowBitsMask(info.bits_stored);
  const std::uint32_t sign_bit = std::uint32_t{1} << (info.bits_stored - 1);
  for (std::uint32_t c = 0; c < components; ++c) {
    OPJ_INT32* plane = image->comps[c].data;
    for (std::size_t i = 0, s = c; i < pixels; ++i, s += components) {
      plane[i] = NativeSample(native.data(), s, wide, mask, sign_bit, info.is_signed);
    }
  }

  opj_cparameters_t parameters_out;
  opj_set_default_encoder_parameters(&parameters_out);
  parameters_out.tcp_numlayers = 1;
  parameters_out.cp_disto_alloc = 1;
  parameters_out.tcp_rates[0] = 0;  // 0: keep every bit (lossless)
  parameters_out.irreversible = lossy ? 1 : 0;
  parameters_out.tcp_mct = mct ? 1 : 0;
  parameters_out.numresolution = ResolutionsFor(info.columns, info.rows);
  if (lossy) {
    // OpenJPEG's rate is relative to `prec` bits per sample, options.compression_ratio to the
    // native Bits Allocated: scale so the coded size is native_bytes / compression_ratio.
    const double rate = options.compression_ratio * info.bits_stored / info.bits_allocated;
    parameters_out.tcp_rates[0] = rate > 1.0 ? static_cast<float>(rate) : 0.0f;
  }

  Messages messages;
  CodecPtr codec(opj_create_compress(OPJ_CODEC_J2K));
  if (!codec) return Fail("JPEG 2000 encode: cannot create an OpenJPEG encoder");
  RouteMessages(codec.get(), messages);
  if (!opj_setup_encoder(codec.get(), &parameters_out, image.get())) {
    return Fail(messages.Describe("JPEG 2000 encode: OpenJPEG refused the parameters"));
  }
  // 0 runs OpenJPEG on the calling thread (it would read OPJ_NUM_THREADS otherwise).
  opj_codec_set_threads(codec.get(), 0);

  EncodedFrame frame;
  frame.bytes.reserve(info.native_bytes() / 2 + 1024);
  MemoryWriter writer{&frame.bytes};
  StreamPtr stream(opj_stream_create(kStreamChunk, OPJ_FALSE));
  if (!stream) return Fail("JPEG 2000 encode: cannot create an OpenJPEG stream");
  opj_stream_set_user_data(stream.get(), &writer, nullptr);
  opj_stream_set_write_function(stream.get(), &MemoryWriter::Write);
  opj_stream_set_skip_function(stream.get(), &MemoryWriter::Skip);
  opj_stream_set_seek_function(stream.get(), &MemoryWriter::Seek);
  if (!opj_start_compress(codec.get(), image.get(), stream.get()) ||
      !opj_encode(codec.get(), stream.get()) || !opj_end_compress(codec.get(), stream.get())) {
    return Fail(messages.Describe("JPEG 2000 encode failed"));
  }
  stream.reset();  // flushes
  if (frame.bytes.size() < 2) return Fail("JPEG 2000 encode produced no codestream");

  frame.photometric =
      mct ? (lossy ? Photometric::kYbrIct : Photometric::kYbrRct) : info.photometric;
  return frame;
}

Result<DecodedFrame, CodecError> Jpeg2000Codec::Decode(std::span<const std::uint8_t> encoded,
                                                       const FrameInfo& info) const {
  return DecodeJpeg2000Codestream(encoded, info);
}

Result<DecodedFrame, CodecError> DecodeJpeg2000Codestream(std::span<const std::uint8_t> encoded,
                                                          const FrameInfo& info) {
  if (info.rows == 0 || info.columns == 0 ||
      (info.samples_per_pixel != 1 && info.samples_per_pixel != 3) ||
      (info.bits_allocated != 8 && info.bits_allocated != 16) || info.bits_stored < 1 ||
      info.bits_stored > info.bits_allocated) {
    return Fail("JPEG 2000 decode: unsupported frame description");
  }
  if (encoded.size() < 2) return Fail("JPEG 2000 decode: empty codestream");
  // DICOM wants a bare codestream (PS3.5 A.4.4), but some writers keep the JP2 wrapper.
  static constexpr std::uint8_t kJp2Signature[] = {0, 0, 0, 12, 'j', 'P', ' ', ' '};
  const bool jp2 = encoded.size() >= sizeof(kJp2Signature) &&
                   std::memcmp(encoded.data(), kJp2Signature, sizeof(kJp2Signature)) == 0;
  if (!jp2 && (encoded[0] != 0xFF || encoded[1] != 0x4F)) {
    return Fail("JPEG 2000 decode: no SOC marker, not a JPEG 2000 codestream");
  }

  Messages messages;
  CodecPtr codec(opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K));
  if (!codec) return Fail("JPEG 2000 decode: cannot create an OpenJPEG decoder");
  RouteMessages(codec.get(), messages);
  opj_dparameters_t parameters;
  opj_set_default_decoder_parameters(&parameters);
  if (!opj_setup_decoder(codec.get(), &parameters)) {
    return Fail(messages.Describe("JPEG 2000 decode: OpenJPEG refused the parameters"));
  }
  opj_decoder_set_strict_mode(codec.get(), OPJ_TRUE);  // truncated data is an error
  opj_codec_set_threads(codec.get(), 0);

  MemoryReader reader{encoded.data(), encoded.size()};
  StreamPtr stream(opj_stream_create(kStreamChunk, OPJ_TRUE));
  if (!stream) return Fail("JPEG 2000 decode: cannot create an OpenJPEG stream");
  opj_stream_set_user_data(stream.get(), &reader, nullptr);
  opj_stream_set_user_data_length(stream.get(), encoded.size());
  opj_stream_set_read_function(stream.get(), &MemoryReader::Read);
  opj_stream_set_skip_function(stream.get(), &MemoryReader::Skip);
  opj_stream_set_seek_function(stream.get(), &MemoryReader::Seek);

  opj_image_t* raw_image = nullptr;
  const bool header_ok = opj_read_header(stream.get(), codec.get(), &raw_image);
  ImagePtr image(raw_image);
  if (!header_ok || !image) return Fail(messages.Describe("JPEG 2000 decode: bad main header"));

  // Validate the header before OpenJPEG allocates anything for the image data.
  const std::uint64_t width = static_cast<std::uint64_t>(image->x1) - image->x0;
  const std::uint64_t height = static_cast<std::uint64_t>(image->y1) - image->y0;
  if (image->x1 < image->x0 || image->y1 < image->y0 || width != info.columns ||
      height != info.rows) {
    return Fail("JPEG 2000 decode: codestream is " + std::to_string(width) + "x" +
                std::to_string(height) + ", dataset says " + std::to_string(info.columns) + "x" +
                std::to_string(info.rows));
  }
  if (image->numcomps != info.samples_per_pixel) {
    return Fail("JPEG 2000 decode: codestream has " + std::to_string(image->numcomps) +
                " components, dataset says " + std::to_string(info.samples_per_pixel));
  }
  for (OPJ_UINT32 c = 0; c < image->numcomps; ++c) {
    const opj_image_comp_t& comp = image->comps[c];
    if (comp.dx != 1 || comp.dy != 1) {
      return Fail("JPEG 2000 decode: subsampled components are not supported");
    }
    if (comp.prec < 1 || comp.prec > info.bits_allocated) {
      return Fail("JPEG 2000 decode: component precision " + std::to_string(comp.prec) +
                  " does not fit bits allocated " + std::to_string(info.bits_allocated));
    }
    if ((comp.sgnd != 0) != info.is_signed) {
      return Fail(std::string("JPEG 2000 decode: codestream samples are ") +
                  (comp.sgnd ? "signed" : "unsigned") + ", dataset says " +
                  (info.is_signed ? "signed" : "unsigned"));
    }
  }
  if (opj_codestream_info_v2_t* cstr = opj_get_cstr_info(codec.get())) {
    const std::uint64_t tiles = static_cast<std::uint64_t>(cstr->tw) * cstr->th;
    opj_destroy_cstr_info(&cstr);
    if (tiles > kMaxTiles) {
      return Fail("JPEG 2000 decode: " + std::to_string(tiles) + " tiles, refusing");
    }
  }

  if (!opj_decode(codec.get(), stream.get(), image.get()) ||
      !opj_end_decompress(codec.get(), stream.get())) {
    return Fail(messages.Describe("JPEG 2000 decode failed"));
  }
  // A JP2 palette or channel definition may have changed the components: check again.
  if (image->numcomps != info.samples_per_pixel) {
    return Fail("JPEG 2000 decode: decoded component count differs from the dataset");
  }
  for (OPJ_UINT32 c = 0; c < image->numcomps; ++c) {
    const opj_image_comp_t& comp = image->comps[c];
    if (comp.data == nullptr || comp.w != info.columns || comp.h != info.rows ||
        comp.prec > info.bits_allocated) {
      return Fail("JPEG 2000 decode: decoded component " + std::to_string(c) +
                  " does not match the dataset");
    }
  }

  DecodedFrame frame;
  frame.pixels.resize(info.native_bytes());
  const std::size_t pixels = static_cast<std::size_t>(info.rows) * info.columns;
  const std::uint32_t components = info.samples_per_pixel;
  const std::uint32_t mask = sample_bits::LowBitsMask(info.bits_stored);
  const std::uint32_t sign_bit = std::uint32_t{1} << (info.bits_stored - 1);
  const bool wide = info.bits_allocated == 16;
  for (std::uint32_t c = 0; c < components; ++c) {
    const OPJ_INT32* plane = image->comps[c].data;
    for (std::size_t i = 0, s = c; i < pixels; ++i, s += components) {
      // Reduce to Bits Stored, then widen: signed samples are sign-extended to 16 bits.
      std::uint32_t value = static_cast<std::uint32_t>(plane[i]) & mask;
      if (info.is_signed) value = (value ^ sign_bit) - sign_bit;
      if (wide) {
        frame.pixels[2 * s] = static_cast<std::uint8_t>(value);
        frame.pixels[2 * s + 1] = static_cast<std::uint8_t>(value >> 8);
      } else {
        frame.pixels[s] = static_cast<std::uint8_t>(value);
      }
    }
  }
  // OpenJPEG applies the inverse RCT/ICT itself (PS3.5 8.2.4).
  frame.photometric = components == 3 && (info.photometric == Photometric::kYbrRct ||
                                          info.photometric == Photometric::kYbrIct)
                          ? Photometric::kRgb
                          : info.photometric;
  return frame;
}

std::unique_ptr<FrameCodec> MakeJpeg2000LosslessCodec() {
  return std::make_unique<Jpeg2000Codec>(Jpeg2000Codec::Mode::kLosslessOnly);
}

std::unique_ptr<FrameCodec> MakeJpeg2000Codec() {
  return std::make_unique<Jpeg2000Codec>(Jpeg2000Codec::Mode::kLossyAllowed);
}

}  // namespace conduit::codecs
