// Helpers shared by the frame codec tests: FrameInfo builders, sample access, PSNR and reading
// frames from the pydicom corpus. Test-only; the codecs themselves never include this.
#pragma once

// clang-format off
#include <dcmtk/config/osconfig.h>  // must come first in every DCMTK translation unit
// clang-format on
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codecs/frame_codec.h"

namespace conduit::codecs::test_support {

// pydicom's bundled test files: real encoder output, each next to an uncompressed twin.
inline const std::string kPydicomCorpus = "/usr/lib/python3/dist-packages/pydicom/data/test_files/";

// Three samples default to RGB so callers only name the photometric they mean to test.
inline FrameInfo Info(std::uint32_t columns, std::uint32_t rows, std::uint16_t samples,
                      std::uint16_t allocated, std::uint16_t stored, bool is_signed = false,
                      Photometric photometric = Photometric::kMonochrome2) {
  FrameInfo info;
  info.columns = columns;
  info.rows = rows;
  info.samples_per_pixel = samples;
  info.bits_allocated = allocated;
  info.bits_stored = stored;
  info.is_signed = is_signed;
  info.photometric =
      samples == 3 && photometric == Photometric::kMonochrome2 ? Photometric::kRgb : photometric;
  return info;
}

inline std::string Describe(const FrameInfo& info) {
  return std::to_string(info.columns) + "x" + std::to_string(info.rows) + "x" +
         std::to_string(info.samples_per_pixel) + " " + std::to_string(info.bits_stored) + "/" +
         std::to_string(info.bits_allocated) + (info.is_signed ? " signed" : " unsigned");
}

// Native frames are little-endian; signed samples are read sign-extended from the container.
inline std::int32_t SampleAt(const std::vector<std::uint8_t>& frame, const FrameInfo& info,
                             std::size_t index) {
  if (info.bits_allocated == 8) {
    return info.is_signed ? static_cast<std::int8_t>(frame[index]) : frame[index];
  }
  const auto raw = static_cast<std::uint16_t>(frame[2 * index] | frame[2 * index + 1] << 8);
  return info.is_signed ? static_cast<std::int16_t>(raw) : raw;
}

inline void PutSample(std::vector<std::uint8_t>& frame, const FrameInfo& info, std::size_t index,
                      std::int64_t value) {
  const auto raw = static_cast<std::uint32_t>(value);
  if (info.bits_allocated == 8) {
    frame[index] = static_cast<std::uint8_t>(raw);
  } else {
    frame[2 * index] = static_cast<std::uint8_t>(raw);
    frame[2 * index + 1] = static_cast<std::uint8_t>(raw >> 8);
  }
}

// Peak is 2^BitsStored - 1; identical frames score 200 dB so floors compare without infinity.
inline double Psnr(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b,
                   const FrameInfo& info) {
  const std::size_t count =
      static_cast<std::size_t>(info.rows) * info.columns * info.samples_per_pixel;
  double squared = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const double d = SampleAt(a, info, i) - SampleAt(b, info, i);
    squared += d * d;
  }
  if (squared == 0) return 200;
  const double peak = std::pow(2.0, info.bits_stored) - 1;
  return 10 * std::log10(peak * peak / (squared / static_cast<double>(count)));
}

// The first frame of a single-frame encapsulated file: its fragments concatenated (item 0 is
// the Basic Offset Table).
inline std::vector<std::uint8_t> FirstFrameFragments(const std::string& path) {
  DcmFileFormat file;
  EXPECT_TRUE(file.loadFile(path.c_str()).good()) << path;
  DcmElement* element = nullptr;
  EXPECT_TRUE(file.getDataset()->findAndGetElement(DCM_PixelData, element).good());
  auto* pixel_data = dynamic_cast<DcmPixelData*>(element);
  DcmPixelSequence* sequence = nullptr;
  E_TransferSyntax syntax = file.getDataset()->getOriginalXfer();
  if (pixel_data == nullptr ||
      !pixel_data->getEncapsulatedRepresentation(syntax, nullptr, sequence).good() ||
      sequence == nullptr) {
    ADD_FAILURE() << "no pixel sequence in " << path;
    return {};
  }
  std::vector<std::uint8_t> frame;
  for (unsigned long i = 1; i < sequence->card(); ++i) {
    DcmPixelItem* item = nullptr;
    Uint8* bytes = nullptr;
    if (!sequence->getItem(item, i).good() || !item->getUint8Array(bytes).good()) break;
    frame.insert(frame.end(), bytes, bytes + item->getLength());
  }
  return frame;
}

// Native 16-bit pixels of an uncompressed file, as little-endian bytes.
inline std::vector<std::uint8_t> NativePixels16(const std::string& path) {
  DcmFileFormat file;
  EXPECT_TRUE(file.loadFile(path.c_str()).good()) << path;
  const Uint16* words = nullptr;
  unsigned long count = 0;
  EXPECT_TRUE(file.getDataset()->findAndGetUint16Array(DCM_PixelData, words, &count).good());
  std::vector<std::uint8_t> bytes(count * 2);
  for (unsigned long i = 0; i < count; ++i) {
    bytes[2 * i] = static_cast<std::uint8_t>(words[i]);
    bytes[2 * i + 1] = static_cast<std::uint8_t>(words[i] >> 8);
  }
  return bytes;
}

}  // namespace conduit::codecs::test_support
