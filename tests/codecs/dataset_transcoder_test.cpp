#include "codecs/dataset_transcoder.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "codecs/codec_registry.h"
#include "codecs/dataset_io.h"
#include "codecs/transfer_syntax_registry.h"

namespace conduit::codecs {
namespace {

const std::string kExplicit(uid::kExplicitVrLittleEndian);
const std::vector<std::string> kLosslessTargets = {
    "1.2.840.10008.1.2.5",      // RLE
    "1.2.840.10008.1.2.4.70",   // JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",   // JPEG-LS lossless
    "1.2.840.10008.1.2.4.90",   // JPEG 2000 lossless
    "1.2.840.10008.1.2.4.201",  // HTJ2K lossless
    "1.2.840.10008.1.2",        // Implicit VR LE
};

std::vector<std::uint8_t> NativePixels(DcmDataset& dataset) {
  DcmElement* element = nullptr;
  if (dataset.findAndGetElement(DCM_PixelData, element).bad()) return {};
  Uint8* bytes = nullptr;
  Uint16 allocated = 8;
  dataset.findAndGetUint16(DCM_BitsAllocated, allocated);
  if (allocated == 16) {
    Uint16* words = nullptr;
    element->getUint16Array(words);
    bytes = reinterpret_cast<Uint8*>(words);
  } else {
    element->getUint8Array(bytes);
  }
  if (!bytes) return {};
  return {bytes, bytes + element->getLength()};
}

// `dataset` transcoded to `target`, written, read back and decoded to Explicit VR LE: through
// WriteDataset and ReadDataset too, as the forwarder uses them.
Result<std::vector<std::uint8_t>, std::string> RoundTrip(const DcmDataset& original,
                                                         const std::string& source,
                                                         const std::string& target) {
  DcmDataset copy(original);
  auto there = TranscodePixelData(copy, source, target, EncodeOptions{});
  if (!there) return there.error();
  auto bytes = WriteDataset(copy, target);
  if (!bytes) return "write: " + bytes.error();
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("conduit-transcode-" + std::to_string(::getpid()) + ".bin");
  std::ofstream(file, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes->data()),
             static_cast<std::streamsize>(bytes->size()));
  auto reread = ReadDataset(file, 0, target);
  std::filesystem::remove(file);
  if (!reread) return "read back: " + reread.error();
  auto back = TranscodePixelData(*reread.value(), target, kExplicit, EncodeOptions{});
  if (!back) return "decode back: " + back.error();
  return NativePixels(*reread.value());
}

bool Refused(const std::string& error) { return error.starts_with(kRefusedPrefix); }

// A synthetic image dataset: gradients plus noise, every frame different.
std::unique_ptr<DcmDataset> MakeImage(Uint16 rows, Uint16 columns, Uint16 samples,
                                      Uint16 bits_stored, Uint16 bits_allocated, bool is_signed,
                                      int frames) {
  auto dataset = std::make_unique<DcmDataset>();
  dataset->putAndInsertString(DCM_SOPClassUID, "1.2.840.10008.5.1.4.1.1.7");
  dataset->putAndInsertString(DCM_SOPInstanceUID, "1.2.3.4.5.6.7");
  dataset->putAndInsertUint16(DCM_Rows, rows);
  dataset->putAndInsertUint16(DCM_Columns, columns);
  dataset->putAndInsertUint16(DCM_SamplesPerPixel, samples);
  dataset->putAndInsertString(DCM_PhotometricInterpretation, samples == 3 ? "RGB" : "MONOCHROME2");
  if (samples == 3) dataset->putAndInsertUint16(DCM_PlanarConfiguration, 0);
  dataset->putAndInsertUint16(DCM_BitsAllocated, bits_allocated);
  dataset->putAndInsertUint16(DCM_BitsStored, bits_stored);
  dataset->putAndInsertUint16(DCM_HighBit, bits_stored - 1);
  dataset->putAndInsertUint16(DCM_PixelRepresentation, is_signed ? 1 : 0);
  if (frames > 1) dataset->putAndInsertString(DCM_NumberOfFrames, std::to_string(frames).c_str());
  std::mt19937 random(bits_stored * 131 + samples);
  const std::size_t count = static_cast<std::size_t>(rows) * columns * samples * frames;
  const int low = is_signed ? -(1 << (bits_stored - 1)) : 0;
  const int high = is_signed ? (1 << (bits_stored - 1)) - 1 : (1 << bits_stored) - 1;
  std::vector<Uint16> words(count);
  std::vector<Uint8> octets(count);
  for (std::size_t i = 0; i < count; ++i) {
    const int gradient = low + static_cast<int>((i % columns) * (high - low) / columns);
    const int value = std::clamp(gradient + static_cast<int>(random() % 64) - 32, low, high);
    words[i] = static_cast<Uint16>(static_cast<std::int16_t>(value));
    octets[i] = static_cast<Uint8>(value);
  }
  if (bits_allocated == 16) {
    dataset->putAndInsertUint16Array(DCM_PixelData, words.data(),
                                     static_cast<unsigned long>(count));
  } else {
    dataset->putAndInsertUint8Array(DCM_PixelData, octets.data(),
                                    static_cast<unsigned long>(count));
  }
  return dataset;
}

struct ImageCase {
  Uint16 rows, columns, samples, bits_stored, bits_allocated;
  bool is_signed;
  int frames;
};

TEST(DatasetTranscoderTest, GeneratedImagesRoundTripLosslesslyThroughEveryLosslessSyntax) {
  const std::vector<ImageCase> cases = {
      {64, 48, 1, 8, 8, false, 1},   {31, 17, 1, 8, 8, false, 2},   {64, 48, 3, 8, 8, false, 1},
      {33, 21, 3, 8, 8, false, 3},   {64, 48, 1, 12, 16, false, 1}, {64, 48, 1, 12, 16, true, 2},
      {64, 48, 1, 16, 16, false, 1}, {64, 48, 1, 16, 16, true, 1},  {17, 9, 1, 10, 16, false, 4},
  };
  std::map<std::string, int> round_trips;
  for (const ImageCase& image : cases) {
    auto dataset = MakeImage(image.rows, image.columns, image.samples, image.bits_stored,
                             image.bits_allocated, image.is_signed, image.frames);
    DcmDataset reference(*dataset);
    ASSERT_TRUE(TranscodePixelData(reference, kExplicit, kExplicit, EncodeOptions{}).ok());
    const std::vector<std::uint8_t> expected = NativePixels(reference);
    for (const std::string& target : kLosslessTargets) {
      auto pixels = RoundTrip(*dataset, kExplicit, target);
      const std::string what = target + " with " + std::to_string(image.samples) + "x" +
                               std::to_string(image.bits_stored) + "-bit" +
                               (image.is_signed ? " signed" : "") + ", " +
                               std::to_string(image.frames) + " frames";
      if (!pixels) {
        EXPECT_TRUE(Refused(pixels.error())) << what << ": " << pixels.error();
        continue;
      }
      EXPECT_EQ(pixels.value(), expected) << what;
      ++round_trips[target];
    }
  }
  // Every lossless syntax took most of the images (refusals are by design: e.g. RLE's sample
  // limit); none took none.
  for (const std::string& target : kLosslessTargets) {
    EXPECT_GE(round_trips[target], 6) << target;
  }
}

// Bits above HighBit may hold old overlay data: what the codecs get (and what native output
// holds) is each sample cut to BitsStored, unsigned ones masked, signed ones sign-extended.
TEST(DatasetTranscoderTest, SamplesAreCutToBitsStoredAndSignExtended) {
  struct Case {
    Uint16 bits_stored, bits_allocated;
    bool is_signed;
    std::vector<Uint16> stored, expected;  // sample values as 16-bit (or 8-bit) words
  };
  const std::vector<Case> cases = {
      {12, 16, false, {0xA123, 0x0FFF, 0xF800, 0x0000}, {0x0123, 0x0FFF, 0x0800, 0x0000}},
      {12, 16, true, {0xA123, 0x0FFF, 0x7800, 0xF7FF}, {0x0123, 0xFFFF, 0xF800, 0x07FF}},
      {16, 16, true, {0xA123, 0x7FFF}, {0xA123, 0x7FFF}},
      {6, 8, false, {0xE5, 0x3F, 0x40, 0x00}, {0x25, 0x3F, 0x00, 0x00}},
      {6, 8, true, {0xE5, 0x1F, 0x20, 0xDF}, {0xE5, 0x1F, 0xE0, 0x1F}},
  };
  // Each row repeated into a frame of several vectorised blocks and a scalar tail.
  constexpr std::size_t kRepeats = 50;
  const auto repeated = [](const std::vector<Uint16>& row) {
    std::vector<Uint16> frame;
    for (std::size_t i = 0; i < kRepeats; ++i) frame.insert(frame.end(), row.begin(), row.end());
    return frame;
  };
  for (const Case& test : cases) {
    const std::vector<Uint16> stored = repeated(test.stored);
    const auto samples = static_cast<Uint16>(stored.size());
    auto dataset =
        MakeImage(1, samples, 1, test.bits_stored, test.bits_allocated, test.is_signed, 1);
    std::vector<std::uint8_t> expected;
    if (test.bits_allocated == 16) {
      dataset->putAndInsertUint16Array(DCM_PixelData, stored.data(), samples);
      for (Uint16 word : repeated(test.expected)) {
        expected.push_back(static_cast<std::uint8_t>(word));
        expected.push_back(static_cast<std::uint8_t>(word >> 8));
      }
    } else {
      std::vector<Uint8> octets(stored.begin(), stored.end());
      dataset->putAndInsertUint8Array(DCM_PixelData, octets.data(), samples);
      const std::vector<Uint16> words = repeated(test.expected);
      expected.assign(words.begin(), words.end());
    }
    const std::string what = std::to_string(test.bits_stored) + " of " +
                             std::to_string(test.bits_allocated) +
                             (test.is_signed ? " signed" : " unsigned");
    ASSERT_TRUE(TranscodePixelData(*dataset, kExplicit, kExplicit, EncodeOptions{}).ok()) << what;
    EXPECT_EQ(NativePixels(*dataset), expected) << what;
  }
}

TEST(DatasetTranscoderTest, PydicomCorpusRoundTripsLosslesslyWhereItCanBeDecoded) {
  const std::filesystem::path corpus = "/usr/lib/python3/dist-packages/pydicom/data/test_files";
  ASSERT_TRUE(std::filesystem::is_directory(corpus)) << "python3-pydicom's test files";
  int decoded_files = 0;
  int round_trips = 0;
  std::ostringstream undecodable;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    if (entry.path().extension() != ".dcm") continue;
    DcmFileFormat file;
    if (file.loadFile(entry.path().c_str()).bad()) continue;
    OFString source;
    file.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, source);
    DcmDataset& dataset = *file.getDataset();
    if (!dataset.tagExists(DCM_PixelData) || !FindTransferSyntax(source.c_str())) continue;
    DcmDataset reference(dataset);
    auto native = TranscodePixelData(reference, source.c_str(), kExplicit, EncodeOptions{});
    if (!native) {
      undecodable << "  " << entry.path().filename().string() << ": " << native.error() << "\n";
      continue;
    }
    ++decoded_files;
    const std::vector<std::uint8_t> expected = NativePixels(reference);
    for (const std::string& target : kLosslessTargets) {
      auto pixels = RoundTrip(reference, kExplicit, target);
      if (!pixels) {
        EXPECT_TRUE(Refused(pixels.error()))
            << entry.path().filename().string() << " to " << target << ": " << pixels.error();
        continue;
      }
      EXPECT_EQ(pixels.value(), expected) << entry.path().filename().string() << " to " << target;
      ++round_trips;
    }
  }
  std::cout << decoded_files << " corpus images decoded, " << round_trips
            << " lossless round trips; not decodable:\n"
            << undecodable.str();
  EXPECT_GE(decoded_files, 35);  // 36 on python3-pydicom 2.3; the rest are listed above
  EXPECT_GE(round_trips, 150);
}

TEST(DatasetTranscoderTest, LossyOutputIsLabelledAndGetsANewInstanceUid) {
  auto dataset = MakeImage(128, 128, 1, 8, 8, false, 1);
  EncodeOptions options;
  options.lossy = true;
  options.quality = 90;
  DcmDataset copy(*dataset);
  auto outcome = TranscodePixelData(copy, kExplicit, "1.2.840.10008.1.2.4.50", options);
  ASSERT_TRUE(outcome.ok()) << outcome.error();
  EXPECT_TRUE(outcome->lossy);
  EXPECT_EQ(outcome->original_sop_instance_uid, "1.2.3.4.5.6.7");
  EXPECT_TRUE(outcome->sop_instance_uid.starts_with("2.25."));
  EXPECT_LE(outcome->sop_instance_uid.size(), 64U);
  OFString value;
  copy.findAndGetOFString(DCM_SOPInstanceUID, value);
  EXPECT_EQ(std::string(value.c_str()), outcome->sop_instance_uid);
  copy.findAndGetOFString(DCM_LossyImageCompression, value);
  EXPECT_EQ(std::string(value.c_str()), "01");
  copy.findAndGetOFString(DCM_LossyImageCompressionMethod, value);
  EXPECT_EQ(std::string(value.c_str()), "ISO_10918_1");
  copy.findAndGetOFString(DCM_LossyImageCompressionRatio, value);
  EXPECT_GT(std::stod(value.c_str()), 1.0);

  // PSNR of the decoded result against the original: a floor for quality 90.
  DcmDataset reference(*dataset);
  ASSERT_TRUE(TranscodePixelData(reference, kExplicit, kExplicit, EncodeOptions{}).ok());
  ASSERT_TRUE(TranscodePixelData(copy, "1.2.840.10008.1.2.4.50", kExplicit, EncodeOptions{}).ok());
  const auto a = NativePixels(reference);
  const auto b = NativePixels(copy);
  ASSERT_EQ(a.size(), b.size());
  double squared = 0;
  for (std::size_t i = 0; i < a.size(); ++i) squared += std::pow(double(a[i]) - double(b[i]), 2);
  const double psnr = 10 * std::log10(255.0 * 255.0 / (squared / double(a.size()) + 1e-12));
  EXPECT_GT(psnr, 30.0);

  // Never lossy by accident: a lossy-only syntax without the option is refused.
  DcmDataset again(*dataset);
  auto refused = TranscodePixelData(again, kExplicit, "1.2.840.10008.1.2.4.50", EncodeOptions{});
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(Refused(refused.error())) << refused.error();
}

TEST(DatasetTranscoderTest, CorruptCompressedFramesAreReportedNotFatal) {
  auto dataset = MakeImage(64, 64, 1, 12, 16, false, 2);
  for (const std::string& target : kLosslessTargets) {
    if (!FindFrameCodec(target)) continue;
    DcmDataset compressed(*dataset);
    ASSERT_TRUE(TranscodePixelData(compressed, kExplicit, target, EncodeOptions{}).ok()) << target;
    DcmElement* element = nullptr;
    ASSERT_TRUE(compressed.findAndGetElement(DCM_PixelData, element).good());
    auto* pixel_data = dynamic_cast<DcmPixelData*>(element);
    E_TransferSyntax xfer = EXS_Unknown;
    const DcmRepresentationParameter* parameter = nullptr;
    pixel_data->getOriginalRepresentationKey(xfer, parameter);
    DcmPixelSequence* sequence = nullptr;
    ASSERT_TRUE(pixel_data->getEncapsulatedRepresentation(xfer, parameter, sequence).good());
    DcmPixelItem* fragment = nullptr;
    ASSERT_TRUE(sequence->getItem(fragment, 1).good());
    Uint8* bytes = nullptr;
    fragment->getUint8Array(bytes);
    // Keep the first 20 bytes (headers), garble the rest, and cut it short.
    std::vector<Uint8> garbled(bytes, bytes + fragment->getLength() / 3);
    for (std::size_t i = 20; i < garbled.size(); ++i) garbled[i] = static_cast<Uint8>(i * 37);
    if (garbled.size() % 2) garbled.pop_back();
    fragment->putUint8Array(garbled.data(), static_cast<unsigned long>(garbled.size()));
    auto decoded = TranscodePixelData(compressed, target, kExplicit, EncodeOptions{});
    if (decoded.ok()) {
      // Some codecs decode garbage without noticing; the geometry still matched.
      continue;
    }
    EXPECT_FALSE(decoded.error().empty()) << target;
  }
}

TEST(DatasetTranscoderTest, NotAnImageIsAClearError) {
  DcmDataset dataset;
  dataset.putAndInsertString(DCM_SOPInstanceUID, "1.2.3");
  auto outcome = TranscodePixelData(dataset, kExplicit, "1.2.840.10008.1.2.4.80", EncodeOptions{});
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(outcome.error().find("not an image"), std::string::npos) << outcome.error();
}

}  // namespace
}  // namespace conduit::codecs
