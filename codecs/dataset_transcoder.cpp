#include "codecs/dataset_transcoder.h"

#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>

#include <bit>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "codecs/codec_registry.h"
#include "codecs/dcmtk_transfer_syntax.h"
#include "codecs/transfer_syntax_registry.h"

namespace conduit::codecs {
namespace {

using Frame = std::vector<std::uint8_t>;
using Clock = std::chrono::steady_clock;

// Pixel data past this is refused rather than decoded into memory (a 4k x 4k x 3 x 16-bit frame
// is 96 MiB; a whole multi-frame dataset is decoded at once).
constexpr std::uint64_t kMaxNativeBytes = 2ULL << 30;

struct PixelModule {
  FrameInfo info;  // photometric: of the pixel data as stored
  std::uint32_t frames = 1;
  bool planar = false;
};

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Result<PixelModule, std::string> ReadPixelModule(DcmDataset& dataset) {
  PixelModule module;
  Uint16 rows = 0, columns = 0, samples = 1, allocated = 0, stored = 0, representation = 0,
         planar = 0;
  if (dataset.findAndGetUint16(DCM_Rows, rows).bad() ||
      dataset.findAndGetUint16(DCM_Columns, columns).bad() ||
      dataset.findAndGetUint16(DCM_BitsAllocated, allocated).bad()) {
    return std::string("no Rows, Columns or BitsAllocated: not an image");
  }
  dataset.findAndGetUint16(DCM_SamplesPerPixel, samples);
  if (dataset.findAndGetUint16(DCM_BitsStored, stored).bad()) stored = allocated;
  dataset.findAndGetUint16(DCM_PixelRepresentation, representation);
  dataset.findAndGetUint16(DCM_PlanarConfiguration, planar);
  Sint32 frames = 1;
  if (dataset.findAndGetSint32(DCM_NumberOfFrames, frames).bad()) frames = 1;
  OFString photometric;
  dataset.findAndGetOFString(DCM_PhotometricInterpretation, photometric);
  const auto parsed = ParsePhotometric(photometric.c_str());
  if (!parsed)
    return "PhotometricInterpretation '" + std::string(photometric.c_str()) + "' is not supported";
  if (rows == 0 || columns == 0) return std::string("Rows or Columns is 0");
  if (samples != 1 && samples != 3) {
    return "SamplesPerPixel " + std::to_string(samples) + " is not supported (1 or 3)";
  }
  if (allocated != 8 && allocated != 16) {
    return "BitsAllocated " + std::to_string(allocated) + " is not supported (8 or 16)";
  }
  if (stored == 0 || stored > allocated) {
    return "BitsStored " + std::to_string(stored) + " does not fit BitsAllocated " +
           std::to_string(allocated);
  }
  if (frames < 1) return "NumberOfFrames " + std::to_string(frames) + " is not valid";
  module.info = FrameInfo{rows, columns, samples, allocated, stored, representation == 1, *parsed};
  module.frames = static_cast<std::uint32_t>(frames);
  module.planar = samples == 3 && planar == 1;
  if (static_cast<std::uint64_t>(module.info.native_bytes()) * module.frames > kMaxNativeBytes) {
    return "pixel data of " + std::to_string(module.frames) + " frames of " +
           std::to_string(module.info.native_bytes()) + " bytes exceeds the 2 GiB limit";
  }
  return module;
}

// Masks every Sample of `frame` to its low `bits`, sign-extending them when `is_signed`:
// (v ^ sign) - sign extends a `bits`-wide two's complement value (mod 2^width). In blocks of a
// fixed count, and with everything the loop reads in locals (a byte store could alias a field
// read through a reference): that is what GCC 12 at -O2 vectorises. A plain loop over the
// samples stays scalar, and took as long as reading the whole file.
template <typename Sample>
void CutSamples(Frame& frame, unsigned bits, bool is_signed) {
  constexpr std::size_t kBlock = 64;
  const auto mask = static_cast<Sample>((1U << bits) - 1);
  const auto sign = static_cast<Sample>(is_signed ? 1U << (bits - 1) : 0U);
  const auto cut = [mask, sign](Sample value) {
    return static_cast<Sample>(((value & mask) ^ sign) - sign);
  };
  std::uint8_t* bytes = frame.data();
  const std::size_t samples = frame.size() / sizeof(Sample);
  std::size_t i = 0;
  for (; i + kBlock <= samples; i += kBlock) {
    Sample block[kBlock];
    std::memcpy(block, bytes + i * sizeof(Sample), sizeof block);
    for (Sample& value : block) value = cut(value);
    std::memcpy(bytes + i * sizeof(Sample), block, sizeof block);
  }
  for (; i < samples; ++i) {
    Sample value;
    std::memcpy(&value, bytes + i * sizeof(Sample), sizeof value);
    value = cut(value);
    std::memcpy(bytes + i * sizeof(Sample), &value, sizeof value);
  }
}

// Keeps each sample within BitsStored: unsigned ones masked, signed ones sign-extended to the
// full width (what the codecs expect; bits above HighBit may hold old overlay data).
void NormalizeSamples(Frame& frame, const FrameInfo& info) {
  const unsigned bits = info.bits_stored;
  if (bits == info.bits_allocated) return;  // every bit is a sample bit
  // Pixel data is little-endian, as the host is.
  static_assert(std::endian::native == std::endian::little);
  if (info.bits_allocated == 16) {
    CutSamples<std::uint16_t>(frame, bits, info.is_signed);
  } else {
    CutSamples<std::uint8_t>(frame, bits, info.is_signed);
  }
}

// Colour-by-plane (RRR..GGG..BBB..) to colour-by-pixel.
Frame Interleave(const Frame& planar, const FrameInfo& info) {
  Frame interleaved(planar.size());
  const std::size_t pixels = static_cast<std::size_t>(info.rows) * info.columns;
  const std::size_t width = info.bytes_per_sample();
  for (std::size_t sample = 0; sample < 3; ++sample) {
    for (std::size_t pixel = 0; pixel < pixels; ++pixel) {
      std::memcpy(&interleaved[(pixel * 3 + sample) * width],
                  &planar[(sample * pixels + pixel) * width], width);
    }
  }
  return interleaved;
}

Result<std::vector<Frame>, std::string> NativeFrames(DcmDataset& dataset,
                                                     const PixelModule& module) {
  if (module.info.photometric == Photometric::kYbrFull422) {
    return std::string("uncompressed YBR_FULL_422 pixel data is not supported");
  }
  DcmElement* element = nullptr;
  if (dataset.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) {
    return std::string("no Pixel Data");
  }
  const std::uint8_t* bytes = nullptr;
  if (module.info.bits_allocated == 16) {
    Uint16* words = nullptr;
    if (element->getUint16Array(words).bad()) return std::string("Pixel Data is not readable");
    bytes = reinterpret_cast<const std::uint8_t*>(words);  // host order: little-endian here
  } else {
    Uint8* octets = nullptr;
    if (element->getUint8Array(octets).bad()) return std::string("Pixel Data is not readable");
    bytes = octets;
  }
  const std::size_t frame_bytes = module.info.native_bytes();
  const std::uint64_t needed = static_cast<std::uint64_t>(frame_bytes) * module.frames;
  if (bytes == nullptr || element->getLength() < needed) {
    return "Pixel Data holds " + std::to_string(element->getLength()) + " bytes; " +
           std::to_string(module.frames) + " frames need " + std::to_string(needed);
  }
  std::vector<Frame> frames;
  for (std::uint32_t i = 0; i < module.frames; ++i) {
    Frame frame(bytes + i * frame_bytes, bytes + (i + 1) * frame_bytes);
    if (module.planar) frame = Interleave(frame, module.info);
    NormalizeSamples(frame, module.info);
    frames.push_back(std::move(frame));
  }
  return frames;
}

// The codestream of each frame: one fragment per frame, or fragments grouped by the Basic
// Offset Table, or every fragment for a single frame (PS3.5 A.4).
Result<std::vector<Frame>, std::string> EncodedFrames(DcmDataset& dataset,
                                                      const PixelModule& module) {
  DcmElement* element = nullptr;
  if (dataset.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) {
    return std::string("no Pixel Data");
  }
  auto* pixel_data = dynamic_cast<DcmPixelData*>(element);
  if (!pixel_data) return std::string("Pixel Data is not pixel data");
  E_TransferSyntax original = EXS_Unknown;
  const DcmRepresentationParameter* parameter = nullptr;
  pixel_data->getOriginalRepresentationKey(original, parameter);
  DcmPixelSequence* sequence = nullptr;
  if (pixel_data->getEncapsulatedRepresentation(original, parameter, sequence).bad() ||
      sequence == nullptr || sequence->card() < 2) {
    return std::string("Pixel Data is not encapsulated, or holds no fragment");
  }
  struct Fragment {
    std::uint64_t offset;  // from the first fragment's item tag, as the offset table counts
    const std::uint8_t* bytes;
    std::size_t length;
  };
  std::vector<Fragment> fragments;
  std::uint64_t offset = 0;
  for (unsigned long index = 1; index < sequence->card(); ++index) {
    DcmPixelItem* item = nullptr;
    Uint8* bytes = nullptr;
    if (sequence->getItem(item, index).bad() || item->getUint8Array(bytes).bad()) {
      return "fragment " + std::to_string(index) + " is not readable";
    }
    fragments.push_back({offset, bytes, item->getLength()});
    offset += 8 + item->getLength();
  }
  DcmPixelItem* table_item = nullptr;
  Uint8* table_bytes = nullptr;
  sequence->getItem(table_item, 0);
  if (table_item) table_item->getUint8Array(table_bytes);
  const std::size_t table_length = table_item ? table_item->getLength() : 0;

  std::vector<Frame> frames;
  const auto append = [](Frame& frame, const Fragment& fragment) {
    if (fragment.bytes) frame.insert(frame.end(), fragment.bytes, fragment.bytes + fragment.length);
  };
  if (fragments.size() == module.frames) {
    for (const Fragment& fragment : fragments) append(frames.emplace_back(), fragment);
  } else if (module.frames == 1) {
    for (const Fragment& fragment : fragments) append(frames.emplace_back(), fragment);
    frames.resize(1);
    frames[0].clear();
    for (const Fragment& fragment : fragments) append(frames[0], fragment);
  } else if (table_bytes && table_length == 4ULL * module.frames) {
    std::vector<std::uint64_t> starts;
    for (std::uint32_t i = 0; i < module.frames; ++i) {
      std::uint32_t start = 0;
      std::memcpy(&start, table_bytes + 4 * i, 4);  // little-endian, as the host
      starts.push_back(start);
    }
    starts.push_back(offset);
    for (std::uint32_t i = 0; i < module.frames; ++i) {
      if (starts[i + 1] < starts[i]) return std::string("the Basic Offset Table is not ascending");
      Frame& frame = frames.emplace_back();
      for (const Fragment& fragment : fragments) {
        if (fragment.offset >= starts[i] && fragment.offset < starts[i + 1])
          append(frame, fragment);
      }
      if (frame.empty()) return "frame " + std::to_string(i) + " has no fragment";
    }
  } else {
    return std::to_string(fragments.size()) + " fragments for " + std::to_string(module.frames) +
           " frames and no usable Basic Offset Table: the frames cannot be told apart";
  }
  return frames;
}

DcmPixelSequence* BuildPixelSequence(const std::vector<Frame>& frames) {
  auto* sequence = new DcmPixelSequence(DCM_PixelSequenceTag);
  std::vector<std::uint8_t> table;
  std::uint32_t offset = 0;
  for (const Frame& frame : frames) {
    for (int shift = 0; shift < 32; shift += 8)
      table.push_back(static_cast<std::uint8_t>(offset >> shift));
    offset += 8 + static_cast<std::uint32_t>(frame.size());
  }
  auto* table_item = new DcmPixelItem(DCM_PixelItemTag);
  table_item->putUint8Array(table.data(), static_cast<unsigned long>(table.size()));
  sequence->insert(table_item);
  for (const Frame& frame : frames) {
    auto* item = new DcmPixelItem(DCM_PixelItemTag);
    item->putUint8Array(frame.data(), static_cast<unsigned long>(frame.size()));
    sequence->insert(item);
  }
  return sequence;
}

// PS3.3 C.7.6.1.1.5: the method terms of the lossy syntaxes.
const char* LossyMethod(std::string_view uid) {
  if (uid == "1.2.840.10008.1.2.4.50" || uid == "1.2.840.10008.1.2.4.51") return "ISO_10918_1";
  if (uid == "1.2.840.10008.1.2.4.81") return "ISO_14495_1";
  if (uid == "1.2.840.10008.1.2.4.91") return "ISO_15444_1";
  return "ISO_15444_15";  // HTJ2K
}

void AppendValue(DcmDataset& dataset, const DcmTagKey& tag, const std::string& value) {
  OFString existing;
  if (dataset.findAndGetOFStringArray(tag, existing).good() && !existing.empty()) {
    dataset.putAndInsertString(tag, (std::string(existing.c_str()) + "\\" + value).c_str());
  } else {
    dataset.putAndInsertString(tag, value.c_str());
  }
}

}  // namespace

std::string NewUuidDerivedUid() {
  std::random_device device;
  std::uint32_t words[4];  // the 128-bit number, most significant word first
  for (std::uint32_t& word : words) word = device();
  std::string digits;
  // Repeated division of the 128-bit number by 10, most significant word first.
  bool nonzero = true;
  while (nonzero) {
    std::uint64_t remainder = 0;
    nonzero = false;
    for (std::uint32_t& word : words) {
      const std::uint64_t current = (remainder << 32) | word;
      word = static_cast<std::uint32_t>(current / 10);
      remainder = current % 10;
      nonzero = nonzero || word != 0;
    }
    digits.insert(digits.begin(), static_cast<char>('0' + remainder));
  }
  return "2.25." + digits;
}

Result<TranscodeOutcome, std::string> TranscodePixelData(DcmDataset& dataset,
                                                         std::string_view source_uid,
                                                         std::string_view target_uid,
                                                         const EncodeOptions& options) {
  const TransferSyntax* source = FindTransferSyntax(source_uid);
  const TransferSyntax* target = FindTransferSyntax(target_uid);
  if (!source || !target) {
    return "transfer syntax " + std::string(source ? target_uid : source_uid) + " is not known";
  }
  const FrameCodec* decoder = source->encapsulated ? FindFrameCodec(source_uid) : nullptr;
  const FrameCodec* encoder = target->encapsulated ? FindFrameCodec(target_uid) : nullptr;
  if (source->encapsulated && !decoder) return "no decoder for " + std::string(source_uid);
  if (target->encapsulated && !encoder) return "no encoder for " + std::string(target_uid);
  if (DcmtkTransferSyntax(target_uid) == EXS_Unknown) {
    return "cannot write " + std::string(target_uid);
  }

  auto module = ReadPixelModule(dataset);
  if (!module) return module.error();
  TranscodeOutcome outcome;
  OFString sop_instance_uid;
  dataset.findAndGetOFString(DCM_SOPInstanceUID, sop_instance_uid);
  outcome.original_sop_instance_uid = sop_instance_uid.c_str();
  outcome.sop_instance_uid = outcome.original_sop_instance_uid;
  outcome.frames = module->frames;

  // Decode (or read) every frame to native, interleaved.
  std::vector<Frame> frames;
  FrameInfo native = module->info;
  const auto decode_started = Clock::now();
  if (!source->encapsulated) {
    auto read = NativeFrames(dataset, *module);
    if (!read) return read.error();
    frames = std::move(read.value());
  } else {
    auto encoded = EncodedFrames(dataset, *module);
    if (!encoded) return encoded.error();
    for (std::size_t i = 0; i < encoded->size(); ++i) {
      auto decoded = decoder->Decode((*encoded)[i], module->info);
      if (!decoded) return "frame " + std::to_string(i) + ": " + decoded.error().message;
      if (decoded->pixels.size() != module->info.native_bytes()) {
        return "frame " + std::to_string(i) + " decoded to " +
               std::to_string(decoded->pixels.size()) + " bytes, expected " +
               std::to_string(module->info.native_bytes());
      }
      native.photometric = decoded->photometric;
      frames.push_back(std::move(decoded->pixels));
    }
  }
  outcome.decode_seconds = Since(decode_started);
  outcome.native_bytes = static_cast<std::uint64_t>(native.native_bytes()) * frames.size();

  // Encode (or lay out) every frame in the target syntax.
  const auto encode_started = Clock::now();
  Photometric written_photometric = native.photometric;
  if (encoder) {
    if (const auto refusal = encoder->EncodeRefusal(native, options)) {
      return std::string(kRefusedPrefix) + *refusal;
    }
    std::vector<Frame> encoded_frames;
    for (std::size_t i = 0; i < frames.size(); ++i) {
      auto encoded = encoder->Encode(frames[i], native, options);
      if (!encoded) return "frame " + std::to_string(i) + ": " + encoded.error().message;
      written_photometric = encoded->photometric;
      Frame bytes = std::move(encoded->bytes);
      if (bytes.size() % 2 != 0) bytes.push_back(0);  // PS3.5 A.4: fragments have even length
      outcome.encoded_bytes += bytes.size();
      encoded_frames.push_back(std::move(bytes));
    }
    auto* pixel_data = new DcmPixelData(DCM_PixelData);
    pixel_data->putOriginalRepresentation(DcmtkTransferSyntax(target_uid), nullptr,
                                          BuildPixelSequence(encoded_frames));
    dataset.insert(pixel_data, OFTrue);
  } else {
    Frame all;
    all.reserve(outcome.native_bytes + 1);
    for (const Frame& frame : frames) all.insert(all.end(), frame.begin(), frame.end());
    outcome.encoded_bytes = all.size();
    OFCondition put;
    if (native.bits_allocated == 16) {
      put = dataset.putAndInsertUint16Array(DCM_PixelData,
                                            reinterpret_cast<const Uint16*>(all.data()),
                                            static_cast<unsigned long>(all.size() / 2));
    } else {
      if (all.size() % 2 != 0) all.push_back(0);  // PS3.5 8.1.1: even length
      put = dataset.putAndInsertUint8Array(DCM_PixelData, all.data(),
                                           static_cast<unsigned long>(all.size()));
    }
    if (put.bad()) return "cannot set Pixel Data: " + std::string(put.text());
  }
  outcome.encode_seconds = Since(encode_started);

  dataset.putAndInsertString(DCM_PhotometricInterpretation,
                             std::string(PhotometricName(written_photometric)).c_str());
  if (native.samples_per_pixel == 3) {
    // PS3.5 G.2 (RLE is by plane) and CP-1843 (every other syntax, and native data we write,
    // by pixel).
    const bool rle = target_uid == "1.2.840.10008.1.2.5";
    dataset.putAndInsertUint16(DCM_PlanarConfiguration, rle ? 1 : 0);
  }
  outcome.lossy = options.lossy && target->lossy;
  if (outcome.lossy) {
    outcome.sop_instance_uid = NewUuidDerivedUid();
    dataset.putAndInsertString(DCM_SOPInstanceUID, outcome.sop_instance_uid.c_str());
    dataset.putAndInsertString(DCM_LossyImageCompression, "01");
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, "%.2f",
                  outcome.encoded_bytes ? static_cast<double>(outcome.native_bytes) /
                                              static_cast<double>(outcome.encoded_bytes)
                                        : 0.0);
    AppendValue(dataset, DCM_LossyImageCompressionRatio, ratio);
    AppendValue(dataset, DCM_LossyImageCompressionMethod, LossyMethod(target_uid));
  }
  return outcome;
}

}  // namespace conduit::codecs
