// The JPEG family: baseline (libjpeg-turbo), extended 12-bit lossy and lossless (DCMTK's IJG
// builds). Lossless paths must round-trip bit for bit; lossy paths meet a PSNR floor per profile
// (see kPsnr* below); corrupt or mismatched codestreams are errors, never crashes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "codecs/dcmtk_jpeg_codec.h"
#include "codecs/jpeg_baseline_codec.h"
#include "tests/codecs/codec_test_support.h"

// clang-format off
#include <dcmtk/config/osconfig.h>
// clang-format on
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>

namespace conduit::codecs {
namespace {

using test_support::Info;
using test_support::Psnr;
using test_support::PutSample;
using test_support::SampleAt;

// PSNR floors (dB, peak 2^BitsStored - 1) on the smooth test frames below (gradients plus
// +-2% noise): measured values sit several dB above each floor.
constexpr double kPsnrBaselineMono = 38.0;  // quality 90, 8-bit greyscale (measured 39.6-40.0)
constexpr double kPsnrBaselineRgb = 33.0;   // quality 90, 4:2:2 chroma (measured 35.5-38.0)
constexpr double kPsnrExtended8 = 38.0;     // quality 90, 8-bit IJG sequential (measured 39.9-40.2)
// 10-bit data goes through the 12-bit process with the same tables, so relative to its range
// the quantisation steps are 4x coarser than for 12-bit data.
constexpr double kPsnrExtended10 = 46.0;   // quality 90, 10 of 12 bits (measured 48.4-48.9)
constexpr double kPsnrExtended12 = 56.0;   // quality 90, 12-bit (measured 60.4-60.5)
constexpr double kPsnrExtendedRgb = 33.0;  // quality 90, 8-bit colour, 4:2:2 (measured 35.3-37.5)

// A frame within BitsStored (signed ones sign-extended). `noisy`: the whole range at random in
// the bottom third (worst case for lossless coders); otherwise smooth with +-2% noise.
std::vector<std::uint8_t> MakeFrame(const FrameInfo& info, std::uint32_t seed, bool noisy = true) {
  std::mt19937 rng(seed);
  const std::int64_t range = std::int64_t{1} << info.bits_stored;
  const std::int64_t low = info.is_signed ? -range / 2 : 0;
  const std::int64_t high = low + range - 1;
  std::uniform_int_distribution<std::int64_t> any(low, high);
  std::uniform_int_distribution<std::int64_t> jitter(-range / 50, range / 50);
  std::vector<std::uint8_t> pixels(info.native_bytes());
  const std::size_t spp = info.samples_per_pixel;
  for (std::uint32_t r = 0; r < info.rows; ++r) {
    for (std::uint32_t c = 0; c < info.columns; ++c) {
      for (std::size_t s = 0; s < spp; ++s) {
        const std::size_t i = (static_cast<std::size_t>(r) * info.columns + c) * spp + s;
        std::int64_t v;
        if (noisy && r > 2 * info.rows / 3) {
          v = any(rng);
        } else {
          const double fx = static_cast<double>(c) / info.columns;
          const double fy = static_cast<double>(r) / info.rows;
          const double shape = 0.5 + 0.4 * std::sin(6.0 * fx + 2.0 * s) * std::cos(4.0 * fy);
          v = low + static_cast<std::int64_t>(shape * static_cast<double>(range - 1)) + jitter(rng);
        }
        PutSample(pixels, info, i, std::clamp(v, low, high));
      }
    }
  }
  return pixels;
}

// Prints the measured value too, so the log shows the margin over each floor.
void ExpectPsnrAtLeast(const std::vector<std::uint8_t>& native,
                       const std::vector<std::uint8_t>& decoded, const FrameInfo& info,
                       double floor, const std::string& label) {
  const double psnr = Psnr(native, decoded, info);
  std::printf("  PSNR %-40s %6.2f dB (floor %.0f)\n", label.c_str(), psnr, floor);
  EXPECT_GE(psnr, floor) << label;
}

EncodeOptions Lossy(int quality = 90) {
  EncodeOptions options;
  options.lossy = true;
  options.quality = quality;
  return options;
}

// Decoding corrupt data must not crash or write out of bounds (run under ASan/valgrind too);
// truncation and garbage must be reported, bit flips may decode to something of the right size.
void ExpectCorruptionHandled(const FrameCodec& codec, const std::vector<std::uint8_t>& good,
                             const FrameInfo& info) {
  ASSERT_GT(good.size(), 64U);
  for (const std::size_t keep : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{20},
                                 good.size() / 8, good.size() / 2, good.size() - 3}) {
    const std::vector<std::uint8_t> cut(good.begin(), good.begin() + keep);
    EXPECT_FALSE(codec.Decode(cut, info).ok()) << "truncated to " << keep << " bytes";
  }
  std::mt19937 rng(7);
  std::vector<std::uint8_t> garbage(good.size());
  for (auto& byte : garbage) byte = static_cast<std::uint8_t>(rng());
  EXPECT_FALSE(codec.Decode(garbage, info).ok());
  // Garbage after a valid header: the entropy-coded data is noise.
  std::vector<std::uint8_t> tail_garbage = good;
  for (std::size_t i = good.size() / 3; i < good.size(); ++i) {
    tail_garbage[i] = static_cast<std::uint8_t>(rng());
  }
  auto tail = codec.Decode(tail_garbage, info);
  if (tail.ok()) {
    EXPECT_EQ(tail->pixels.size(), info.native_bytes());
  }
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<std::uint8_t> flipped = good;
    for (int k = 0; k < 1 + trial % 4; ++k) {
      flipped[rng() % flipped.size()] ^= static_cast<std::uint8_t>(1U << (rng() % 8));
    }
    auto result = codec.Decode(flipped, info);
    if (result.ok()) {
      EXPECT_EQ(result->pixels.size(), info.native_bytes());
    } else {
      EXPECT_FALSE(result.error().message.empty());
    }
  }
}

void ExpectMismatchRejected(const FrameCodec& codec, const std::vector<std::uint8_t>& good,
                            const FrameInfo& info) {
  FrameInfo wrong = info;
  wrong.rows += 1;
  EXPECT_FALSE(codec.Decode(good, wrong).ok());
  wrong = info;
  wrong.columns -= 1;
  EXPECT_FALSE(codec.Decode(good, wrong).ok());
  wrong = info;
  wrong.samples_per_pixel = info.samples_per_pixel == 1 ? 3 : 1;
  wrong.photometric = wrong.samples_per_pixel == 3 ? Photometric::kRgb : Photometric::kMonochrome2;
  auto result = codec.Decode(good, wrong);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("JPEG"), std::string::npos) << result.error().message;
}

// ---------------------------------------------------------------------------------------------
// JPEG baseline (libjpeg-turbo)

TEST(JpegCodecsTest, BaselineMonochromeMeetsPsnrFloorAndKeepsInterpretation) {
  const auto codec = MakeJpegBaselineCodec();
  EXPECT_EQ(codec->transfer_syntax_uid(), "1.2.840.10008.1.2.4.50");
  for (const auto& [rows, columns] : {std::pair{48U, 64U}, {512U, 512U}, {17U, 31U}}) {
    for (const Photometric photometric : {Photometric::kMonochrome2, Photometric::kMonochrome1}) {
      const FrameInfo info = Info(columns, rows, 1, 8, 8, false, photometric);
      const auto native = MakeFrame(info, rows * columns, /*noisy=*/false);
      auto encoded = codec->Encode(native, info, Lossy());
      ASSERT_TRUE(encoded.ok()) << encoded.error().message;
      EXPECT_EQ(encoded->photometric, photometric);
      if (rows == 512) {
        EXPECT_LT(encoded->bytes.size(), native.size() / 2);
      }
      auto decoded = codec->Decode(encoded->bytes, info);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      EXPECT_EQ(decoded->photometric, photometric);
      ASSERT_EQ(decoded->pixels.size(), native.size());
      ExpectPsnrAtLeast(native, decoded->pixels, info, kPsnrBaselineMono,
                        "baseline mono " + std::to_string(rows) + "x" + std::to_string(columns));
    }
  }
}

TEST(JpegCodecsTest, BaselineRgbBecomesYbrFull422AndDecodesToRgb) {
  const auto codec = MakeJpegBaselineCodec();
  for (const auto& [rows, columns] : {std::pair{48U, 64U}, {512U, 512U}, {17U, 31U}}) {
    const FrameInfo info = Info(columns, rows, 3, 8, 8);
    const auto native = MakeFrame(info, 11, /*noisy=*/false);
    auto encoded = codec->Encode(native, info, Lossy());
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    EXPECT_EQ(encoded->photometric, Photometric::kYbrFull422);  // PS3.5 8.2.1
    for (const Photometric label :
         {Photometric::kYbrFull422, Photometric::kYbrFull, Photometric::kRgb}) {
      FrameInfo stored = info;
      stored.photometric = label;
      auto decoded = codec->Decode(encoded->bytes, stored);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      EXPECT_EQ(decoded->photometric, Photometric::kRgb);
      ExpectPsnrAtLeast(native, decoded->pixels, info, kPsnrBaselineRgb,
                        "baseline rgb " + std::to_string(rows) + "x" + std::to_string(columns));
    }
    FrameInfo palette = info;
    palette.photometric = Photometric::kYbrIct;
    EXPECT_FALSE(codec->Decode(encoded->bytes, palette).ok());
  }
}

TEST(JpegCodecsTest, BaselineQualityChangesSize) {
  const auto codec = MakeJpegBaselineCodec();
  const FrameInfo info = Info(128, 128, 1, 8, 8);
  const auto native = MakeFrame(info, 3);
  auto low = codec->Encode(native, info, Lossy(30));
  auto high = codec->Encode(native, info, Lossy(98));
  ASSERT_TRUE(low.ok() && high.ok());
  EXPECT_LT(low->bytes.size(), high->bytes.size());
}

TEST(JpegCodecsTest, BaselineRefusesWhatItCannotCode) {
  const auto codec = MakeJpegBaselineCodec();
  const FrameInfo mono = Info(16, 16, 1, 8, 8);
  EXPECT_EQ(codec->EncodeRefusal(mono, EncodeOptions{}),
            "JPEG baseline is lossy; the route must ask for lossy explicitly");
  EXPECT_EQ(codec->EncodeRefusal(mono, Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 16, 12), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 8, 7), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 8, 8, true), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 2, 8, 8), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 3, 8, 8, false, Photometric::kYbrFull), Lossy()),
            std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 8, 8, false, Photometric::kPaletteColor), Lossy()),
            std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 0, 1, 8, 8), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 70000, 1, 8, 8), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(mono, Lossy(0)), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(mono, Lossy(101)), std::nullopt);
  // Encode refuses too, and checks the buffer size.
  EXPECT_FALSE(codec->Encode(std::vector<std::uint8_t>(256), mono, EncodeOptions{}).ok());
  EXPECT_FALSE(codec->Encode(std::vector<std::uint8_t>(255), mono, Lossy()).ok());
}

TEST(JpegCodecsTest, BaselineCorruptOrMismatchedCodestreamIsAnError) {
  const auto codec = MakeJpegBaselineCodec();
  for (const std::uint16_t samples : {1, 3}) {
    const FrameInfo info = Info(96, 64, samples, 8, 8);
    auto encoded = codec->Encode(MakeFrame(info, 5), info, Lossy());
    ASSERT_TRUE(encoded.ok());
    FrameInfo stored = info;
    if (samples == 3) stored.photometric = Photometric::kYbrFull422;
    ExpectCorruptionHandled(*codec, encoded->bytes, stored);
    ExpectMismatchRejected(*codec, encoded->bytes, stored);
    FrameInfo twelve = stored;
    twelve.bits_allocated = 16;
    twelve.bits_stored = 12;
    EXPECT_FALSE(codec->Decode(encoded->bytes, twelve).ok());
  }
  // A 12-bit (extended) codestream is not baseline.
  const FrameInfo info12 = Info(32, 32, 1, 16, 12);
  auto extended = MakeJpegExtendedCodec()->Encode(MakeFrame(info12, 1), info12, Lossy());
  ASSERT_TRUE(extended.ok());
  EXPECT_FALSE(codec->Decode(extended->bytes, Info(32, 32, 1, 8, 8)).ok());
}

// ---------------------------------------------------------------------------------------------
// JPEG extended (Process 2 & 4), DCMTK IJG 8/12-bit

TEST(JpegCodecsTest, ExtendedMonochromeMeetsPsnrFloors) {
  const auto codec = MakeJpegExtendedCodec();
  EXPECT_EQ(codec->transfer_syntax_uid(), "1.2.840.10008.1.2.4.51");
  struct Profile {
    std::uint16_t allocated, stored;
    double floor;
  };
  for (const Profile profile :
       {Profile{8, 8, kPsnrExtended8}, Profile{16, 8, kPsnrExtended8},
        Profile{16, 10, kPsnrExtended10}, Profile{16, 12, kPsnrExtended12}}) {
    for (const auto& [rows, columns] : {std::pair{48U, 64U}, {512U, 512U}, {17U, 31U}}) {
      const FrameInfo info = Info(columns, rows, 1, profile.allocated, profile.stored);
      const auto native = MakeFrame(info, rows + columns, /*noisy=*/false);
      auto encoded = codec->Encode(native, info, Lossy());
      ASSERT_TRUE(encoded.ok()) << encoded.error().message;
      EXPECT_EQ(encoded->photometric, Photometric::kMonochrome2);
      EXPECT_EQ(encoded->bytes[encoded->bytes.size() - 1], 0xD9);  // no pad byte after EOI
      auto decoded = codec->Decode(encoded->bytes, info);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      EXPECT_EQ(decoded->photometric, Photometric::kMonochrome2);
      ASSERT_EQ(decoded->pixels.size(), native.size());
      ExpectPsnrAtLeast(native, decoded->pixels, info, profile.floor,
                        "extended " + std::to_string(profile.allocated) + "/" +
                            std::to_string(profile.stored) + " " + std::to_string(rows) + "x" +
                            std::to_string(columns));
      // Lossy overshoot is clamped to BitsStored.
      const std::int64_t max_value = (std::int64_t{1} << profile.stored) - 1;
      for (std::size_t i = 0; i < std::size_t{rows} * columns; ++i) {
        ASSERT_LE(SampleAt(decoded->pixels, info, i), max_value);
      }
    }
  }
}

TEST(JpegCodecsTest, ExtendedRgbBecomesYbrFull422AndDecodesToRgb) {
  const auto codec = MakeJpegExtendedCodec();
  for (const auto& [rows, columns] : {std::pair{48U, 64U}, {17U, 31U}}) {
    const FrameInfo info = Info(columns, rows, 3, 8, 8);
    const auto native = MakeFrame(info, 9, /*noisy=*/false);
    auto encoded = codec->Encode(native, info, Lossy());
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    EXPECT_EQ(encoded->photometric, Photometric::kYbrFull422);
    FrameInfo stored = info;
    stored.photometric = Photometric::kYbrFull422;
    auto decoded = codec->Decode(encoded->bytes, stored);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(decoded->photometric, Photometric::kRgb);
    ExpectPsnrAtLeast(native, decoded->pixels, info, kPsnrExtendedRgb,
                      "extended rgb " + std::to_string(rows) + "x" + std::to_string(columns));
    // libjpeg-turbo reads the IJG 8-bit output too (it is a baseline-compatible stream here).
    auto turbo = MakeJpegBaselineCodec()->Decode(encoded->bytes, stored);
    ASSERT_TRUE(turbo.ok()) << turbo.error().message;
    ExpectPsnrAtLeast(native, turbo->pixels, info, kPsnrExtendedRgb,
                      "extended rgb via libjpeg-turbo " + std::to_string(rows));
  }
  // And the DCMTK path reads libjpeg-turbo's baseline output (Process 1 is part of 4.51).
  const FrameInfo info = Info(40, 40, 3, 8, 8);
  const auto native = MakeFrame(info, 4, /*noisy=*/false);
  auto baseline = MakeJpegBaselineCodec()->Encode(native, info, Lossy());
  ASSERT_TRUE(baseline.ok());
  FrameInfo stored = info;
  stored.photometric = Photometric::kYbrFull422;
  auto decoded = codec->Decode(baseline->bytes, stored);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  ExpectPsnrAtLeast(native, decoded->pixels, info, kPsnrBaselineRgb, "baseline rgb via IJG");
}

TEST(JpegCodecsTest, ExtendedRefusesWhatItCannotCode) {
  const auto codec = MakeJpegExtendedCodec();
  const FrameInfo ct = Info(16, 16, 1, 16, 12);
  EXPECT_EQ(codec->EncodeRefusal(ct, EncodeOptions{}),
            "JPEG extended is lossy; the route must ask for lossy explicitly");
  EXPECT_EQ(codec->EncodeRefusal(ct, Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 16, 13), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 16, 12, true), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 3, 16, 12), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 8, 8, false, Photometric::kPaletteColor), Lossy()),
            std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 12, 12), Lossy()), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(ct, Lossy(0)), std::nullopt);
  EXPECT_FALSE(codec->Encode(std::vector<std::uint8_t>(16 * 16 * 2), ct, EncodeOptions{}).ok());
}

TEST(JpegCodecsTest, ExtendedMasksBitsAboveBitsStored) {
  const auto codec = MakeJpegExtendedCodec();
  const FrameInfo info = Info(32, 32, 1, 16, 12);
  auto native = MakeFrame(info, 21, /*noisy=*/false);
  auto dirty = native;
  for (std::size_t i = 1; i < dirty.size(); i += 2) dirty[i] |= 0xF0;  // overlay bits
  auto clean = codec->Encode(native, info, Lossy());
  auto masked = codec->Encode(dirty, info, Lossy());
  ASSERT_TRUE(clean.ok() && masked.ok()) << masked.error().message;
  EXPECT_EQ(clean->bytes, masked->bytes);
}

TEST(JpegCodecsTest, ExtendedCorruptOrMismatchedCodestreamIsAnError) {
  const auto codec = MakeJpegExtendedCodec();
  for (const std::uint16_t stored : {8, 12}) {
    const FrameInfo info = Info(96, 64, 1, 16, stored);
    auto encoded = codec->Encode(MakeFrame(info, 5), info, Lossy());
    ASSERT_TRUE(encoded.ok());
    ExpectCorruptionHandled(*codec, encoded->bytes, info);
    ExpectMismatchRejected(*codec, encoded->bytes, info);
    if (stored == 12) {
      EXPECT_FALSE(codec->Decode(encoded->bytes, Info(96, 64, 1, 8, 8)).ok());
    }
  }
  // A lossless codestream does not belong in the lossy syntax.
  const FrameInfo info = Info(32, 32, 1, 16, 12);
  auto lossless = MakeJpegLosslessCodec()->Encode(MakeFrame(info, 1), info, EncodeOptions{});
  ASSERT_TRUE(lossless.ok());
  EXPECT_FALSE(codec->Decode(lossless->bytes, info).ok());
}

// ---------------------------------------------------------------------------------------------
// JPEG lossless (Process 14 and its SV1 subset), DCMTK IJG 8/12/16-bit

class JpegLosslessTest : public ::testing::TestWithParam<bool> {
 protected:
  std::unique_ptr<FrameCodec> codec() const {
    return GetParam() ? MakeJpegLosslessSv1Codec() : MakeJpegLosslessCodec();
  }
};

TEST_P(JpegLosslessTest, MonochromeRoundTripsBitExact) {
  const auto codec = this->codec();
  EXPECT_EQ(codec->transfer_syntax_uid(),
            GetParam() ? "1.2.840.10008.1.2.4.70" : "1.2.840.10008.1.2.4.57");
  struct Depth {
    std::uint16_t allocated, stored;
  };
  for (const Depth depth : {Depth{8, 8}, Depth{8, 2}, Depth{8, 6}, Depth{16, 8}, Depth{16, 10},
                            Depth{16, 12}, Depth{16, 13}, Depth{16, 15}, Depth{16, 16}}) {
    for (const bool is_signed : {false, true}) {
      for (const auto& [rows, columns] : {std::pair{48U, 64U}, {512U, 512U}, {17U, 31U}}) {
        if (rows == 512 && depth.stored != 12 && depth.stored != 16) continue;  // keep it quick
        const FrameInfo info = Info(columns, rows, 1, depth.allocated, depth.stored, is_signed);
        const auto native = MakeFrame(info, depth.stored * 100 + rows);
        auto encoded = codec->Encode(native, info, EncodeOptions{});
        ASSERT_TRUE(encoded.ok()) << encoded.error().message;
        EXPECT_EQ(encoded->photometric, Photometric::kMonochrome2);
        auto decoded = codec->Decode(encoded->bytes, info);
        ASSERT_TRUE(decoded.ok()) << decoded.error().message;
        EXPECT_EQ(decoded->pixels, native)
            << depth.allocated << "/" << depth.stored << (is_signed ? " signed " : " ") << rows
            << "x" << columns;
      }
    }
  }
}

TEST_P(JpegLosslessTest, ColourKeepsItsInterpretation) {
  const auto codec = this->codec();
  for (const Photometric photometric : {Photometric::kRgb, Photometric::kYbrFull}) {
    for (const std::uint16_t stored : {8, 12, 16}) {
      const FrameInfo info = Info(47, 33, 3, stored == 8 ? 8 : 16, stored, false, photometric);
      const auto native = MakeFrame(info, stored);
      auto encoded = codec->Encode(native, info, EncodeOptions{});
      ASSERT_TRUE(encoded.ok()) << encoded.error().message;
      EXPECT_EQ(encoded->photometric, photometric);
      auto decoded = codec->Decode(encoded->bytes, info);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      EXPECT_EQ(decoded->photometric, photometric);
      EXPECT_EQ(decoded->pixels, native) << PhotometricName(photometric) << " " << stored;
    }
  }
}

TEST_P(JpegLosslessTest, MasksBitsAboveBitsStoredAndAcceptsPadByte) {
  const auto codec = this->codec();
  const FrameInfo info = Info(40, 40, 1, 16, 12);
  const auto native = MakeFrame(info, 8);
  auto dirty = native;
  for (std::size_t i = 1; i < dirty.size(); i += 2) dirty[i] |= 0xA0;
  auto encoded = codec->Encode(dirty, info, EncodeOptions{});
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  auto padded = encoded->bytes;
  padded.push_back(0);  // the transcoder pads fragments to even length
  auto decoded = codec->Decode(padded, info);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->pixels, native);
}

TEST_P(JpegLosslessTest, RefusesWhatItCannotCode) {
  const auto codec = this->codec();
  const FrameInfo ct = Info(16, 16, 1, 16, 12);
  EXPECT_EQ(codec->EncodeRefusal(ct, EncodeOptions{}), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(ct, Lossy()), std::nullopt);
  EXPECT_EQ(codec->EncodeRefusal(Info(16, 16, 1, 8, 8, false, Photometric::kPaletteColor),
                                 EncodeOptions{}),
            std::nullopt);
  EXPECT_NE(
      codec->EncodeRefusal(Info(16, 16, 3, 8, 8, false, Photometric::kYbrFull422), EncodeOptions{}),
      std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 4, 8, 8), EncodeOptions{}), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 32, 32), EncodeOptions{}), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(16, 16, 1, 8, 9), EncodeOptions{}), std::nullopt);
  EXPECT_NE(codec->EncodeRefusal(Info(70000, 16, 1, 8, 8), EncodeOptions{}), std::nullopt);
}

TEST_P(JpegLosslessTest, CorruptOrMismatchedCodestreamIsAnError) {
  const auto codec = this->codec();
  for (const std::uint16_t stored : {8, 12, 16}) {
    const FrameInfo info = Info(96, 64, 1, stored == 8 ? 8 : 16, stored);
    auto encoded = codec->Encode(MakeFrame(info, 5), info, EncodeOptions{});
    ASSERT_TRUE(encoded.ok());
    ExpectCorruptionHandled(*codec, encoded->bytes, info);
    ExpectMismatchRejected(*codec, encoded->bytes, info);
    if (stored > 8) {
      EXPECT_FALSE(codec->Decode(encoded->bytes, Info(96, 64, 1, 8, 8)).ok());
    }
  }
  // A DCT codestream does not belong in a lossless syntax.
  const FrameInfo info = Info(32, 32, 1, 8, 8);
  auto baseline = MakeJpegBaselineCodec()->Encode(MakeFrame(info, 1), info, Lossy());
  ASSERT_TRUE(baseline.ok());
  EXPECT_FALSE(codec->Decode(baseline->bytes, info).ok());
}

INSTANTIATE_TEST_SUITE_P(JpegCodecsTest, JpegLosslessTest, ::testing::Values(false, true),
                         [](const auto& param) { return param.param ? "Sv1" : "Process14"; });

// One codec object serves several pipeline threads at once.
TEST(JpegCodecsTest, CodecsAreSafeToShareBetweenThreads) {
  const auto baseline = MakeJpegBaselineCodec();
  const auto lossless = MakeJpegLosslessSv1Codec();
  const auto extended = MakeJpegExtendedCodec();
  const FrameInfo mono8 = Info(64, 64, 1, 8, 8);
  const FrameInfo ct = Info(64, 64, 1, 16, 12);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 20; ++k) {
        const auto frame8 = MakeFrame(mono8, t * 100 + k);
        const auto frame12 = MakeFrame(ct, t * 100 + k);
        auto b = baseline->Encode(frame8, mono8, Lossy());
        auto l = lossless->Encode(frame12, ct, EncodeOptions{});
        auto e = extended->Encode(frame12, ct, Lossy());
        if (!b.ok() || !l.ok() || !e.ok()) {
          ++failures[t];
          continue;
        }
        auto ld = lossless->Decode(l->bytes, ct);
        if (!baseline->Decode(b->bytes, mono8).ok() || !ld.ok() || ld->pixels != frame12 ||
            !extended->Decode(e->bytes, ct).ok()) {
          ++failures[t];
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

// ---------------------------------------------------------------------------------------------
// Real files from the pydicom corpus, compared against GDCM's decoder (gdcmconv --raw).

struct CorpusFrame {
  FrameInfo info;
  std::vector<std::uint8_t> fragment;  // the first frame's fragments, concatenated
};

std::optional<CorpusFrame> LoadFirstFrame(const std::string& path) {
  DcmFileFormat file;
  if (file.loadFile(path.c_str()).bad()) return std::nullopt;
  DcmDataset* dataset = file.getDataset();
  Uint16 rows = 0, columns = 0, samples = 0, allocated = 0, stored = 0, representation = 0;
  OFString photometric;
  dataset->findAndGetUint16(DCM_Rows, rows);
  dataset->findAndGetUint16(DCM_Columns, columns);
  dataset->findAndGetUint16(DCM_SamplesPerPixel, samples);
  dataset->findAndGetUint16(DCM_BitsAllocated, allocated);
  dataset->findAndGetUint16(DCM_BitsStored, stored);
  dataset->findAndGetUint16(DCM_PixelRepresentation, representation);
  dataset->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
  CorpusFrame frame;
  frame.info = Info(columns, rows, samples, allocated, stored, representation == 1,
                    ParsePhotometric(photometric.c_str()).value_or(Photometric::kMonochrome2));
  DcmElement* element = nullptr;
  if (dataset->findAndGetElement(DCM_PixelData, element).bad()) return std::nullopt;
  auto* pixel_data = static_cast<DcmPixelData*>(element);
  DcmPixelSequence* sequence = nullptr;
  E_TransferSyntax xfer = dataset->getOriginalXfer();
  if (pixel_data->getEncapsulatedRepresentation(xfer, nullptr, sequence).bad() ||
      sequence == nullptr) {
    return std::nullopt;
  }
  // Single-frame files: every fragment after the offset table belongs to the frame.
  for (unsigned long i = 1; i < sequence->card(); ++i) {
    DcmPixelItem* item = nullptr;
    if (sequence->getItem(item, i).bad()) return std::nullopt;
    Uint8* bytes = nullptr;
    item->getUint8Array(bytes);
    frame.fragment.insert(frame.fragment.end(), bytes, bytes + item->getLength());
  }
  return frame;
}

// `tool` is "gdcmconv --raw" (GDCM's own decoders; keeps YBR_FULL as is) or "dcmdjpeg" (DCMTK's
// complete dataset decoder: converts YBR to RGB, and is the only one here that reads 12-bit).
std::optional<std::vector<std::uint8_t>> ReferencePixels(const std::string& tool,
                                                         const std::string& path) {
  const auto out = std::filesystem::temp_directory_path() /
                   ("conduit_jpeg_reference_" + std::to_string(::getpid()) + ".dcm");
  const std::string command = tool + " '" + path + "' '" + out.string() + "' > /dev/null 2>&1";
  if (std::system(command.c_str()) != 0) return std::nullopt;
  DcmFileFormat file;
  // DCMTK reads large values lazily from the file: load them before the file goes.
  const bool loaded = file.loadFile(out.c_str()).good() && file.loadAllDataIntoMemory().good();
  std::filesystem::remove(out);
  if (!loaded) return std::nullopt;
  DcmElement* element = nullptr;
  if (file.getDataset()->findAndGetElement(DCM_PixelData, element).bad()) return std::nullopt;
  if (element->getVR() == EVR_OW) {
    Uint16* words = nullptr;
    if (element->getUint16Array(words).bad() || words == nullptr) return std::nullopt;
    std::vector<std::uint8_t> bytes(element->getLength());
    std::memcpy(bytes.data(), words, bytes.size());  // little-endian host, as the codecs
    return bytes;
  }
  Uint8* bytes = nullptr;
  if (element->getUint8Array(bytes).bad() || bytes == nullptr) return std::nullopt;
  return std::vector<std::uint8_t>(bytes, bytes + element->getLength());
}

void ExpectMatchesReference(const FrameCodec& codec, const std::string& name,
                            const std::string& tool, double min_psnr) {
  const std::string path = test_support::kPydicomCorpus + name;
  const std::string program = tool.substr(0, tool.find(' '));
  if (!std::filesystem::exists(path) ||
      std::system(("command -v " + program + " > /dev/null").c_str()) != 0) {
    GTEST_SKIP() << "pydicom corpus or " << program << " not installed";
  }
  auto frame = LoadFirstFrame(path);
  ASSERT_TRUE(frame.has_value()) << name;
  auto decoded = codec.Decode(frame->fragment, frame->info);
  ASSERT_TRUE(decoded.ok()) << name << ": " << decoded.error().message;
  auto reference = ReferencePixels(tool, path);
  ASSERT_TRUE(reference.has_value()) << name;
  ASSERT_GE(reference->size(), decoded->pixels.size());
  reference->resize(decoded->pixels.size());
  if (min_psnr <= 0) {
    EXPECT_EQ(decoded->pixels, *reference) << name;
  } else {
    // Two IDCT implementations may differ by a unit here and there.
    const double psnr = Psnr(*reference, decoded->pixels, frame->info);
    EXPECT_GE(psnr, min_psnr) << name;
    std::printf("  %s vs %s: PSNR %.1f dB\n", name.c_str(), program.c_str(), psnr);
  }
}

// libjpeg-turbo against DCMTK's IJG 6b decoder. SC_rgb_jpeg_lossy_gdcm.dcm is labelled RGB but
// holds a YCbCr (JFIF) stream: libjpeg-turbo goes by the stream, so the reference must guess
// the colour space from the stream too (dcmdjpeg +cgl) instead of trusting the label.
TEST(JpegCodecsTest, CorpusBaselineMatchesDcmdjpeg) {
  ExpectMatchesReference(*MakeJpegBaselineCodec(), "SC_rgb_jpeg_dcmtk.dcm", "dcmdjpeg", 40.0);
  ExpectMatchesReference(*MakeJpegBaselineCodec(), "SC_rgb_small_odd_jpeg.dcm", "dcmdjpeg", 40.0);
  ExpectMatchesReference(*MakeJpegBaselineCodec(), "SC_rgb_jpeg_lossy_gdcm.dcm", "dcmdjpeg +cgl",
                         40.0);
}

// Our frame-level use of DCMTK's IJG 12-bit build against DCMTK's dataset-level decoder.
TEST(JpegCodecsTest, CorpusExtendedMatchesDcmdjpeg) {
  ExpectMatchesReference(*MakeJpegExtendedCodec(), "JPGExtended.dcm", "dcmdjpeg", 0);
  ExpectMatchesReference(*MakeJpegExtendedCodec(), "JPEG-lossy.dcm", "dcmdjpeg", 0);
}

// DCMTK's IJG lossless decoder against GDCM's own (independent) one.
TEST(JpegCodecsTest, CorpusLosslessMatchesGdcm) {
  ExpectMatchesReference(*MakeJpegLosslessSv1Codec(), "SC_rgb_jpeg_gdcm.dcm", "gdcmconv --raw", 0);
}

}  // namespace
}  // namespace conduit::codecs
