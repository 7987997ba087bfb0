// JPEG-LS (CharLS) and RLE Lossless (our own PS3.5 Annex G) frame codecs: lossless round trips
// over bit depths, signedness, colour and odd sizes; near-lossless error bounds; refusals;
// corrupt and mismatching codestreams; real files from the pydicom corpus; and, for RLE, an
// independent decoder (pydicom's) reading what we encode.
#include <charls/charls.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "codecs/jpegls_codec.h"
#include "codecs/rle_codec.h"
#include "tests/codecs/codec_test_support.h"

namespace conduit::codecs {
namespace {

using test_support::Describe;
using test_support::FirstFrameFragments;
using test_support::Info;
using test_support::NativePixels16;
using test_support::Psnr;
using test_support::PutSample;
using test_support::SampleAt;

// Smooth "anatomy" (sines) plus noise, a flat block (runs) and the extreme values, within
// bits_stored; signed frames span the signed range and are sign-extended to the container.
std::vector<std::uint8_t> MakeFrame(const FrameInfo& info, std::uint32_t seed) {
  std::mt19937 random(seed);
  const std::int32_t max = (1 << info.bits_stored) - 1;
  const std::int32_t offset = info.is_signed ? (max + 1) / 2 : 0;
  const std::int32_t noise = max / 64 + 1;
  std::vector<std::uint8_t> frame(info.native_bytes());
  std::size_t index = 0;
  for (std::uint32_t y = 0; y < info.rows; ++y) {
    for (std::uint32_t x = 0; x < info.columns; ++x) {
      for (std::uint32_t c = 0; c < info.samples_per_pixel; ++c, ++index) {
        double base = 0.5 + 0.35 * std::sin(x * 0.05 + c) * std::cos(y * 0.07 - c);
        auto value = static_cast<std::int32_t>(base * max) +
                     static_cast<std::int32_t>(random() % (2 * noise + 1)) - noise;
        if (x < info.columns / 4 && y < info.rows / 4) value = max / 3;
        if (y == info.rows / 2 && x < 8) value = (x % 2 == 0) ? 0 : max;
        value = std::clamp(value, 0, max);
        PutSample(frame, info, index, value - offset);
      }
    }
  }
  return frame;
}

// The frames every lossless path must round-trip: 8, 12 and 16 bits, signed and unsigned,
// grey and colour, odd sizes, and the corners (2 and 1 bit stored, 8 stored in 16).
std::vector<FrameInfo> LosslessCases(int min_bits_stored) {
  std::vector<FrameInfo> cases;
  for (auto [columns, rows] : {std::pair{64u, 48u}, std::pair{31u, 17u}, std::pair{512u, 512u}}) {
    cases.push_back(Info(columns, rows, 1, 8, 8, false));
    cases.push_back(Info(columns, rows, 1, 8, 8, true));
    cases.push_back(Info(columns, rows, 1, 16, 12, false));
    cases.push_back(Info(columns, rows, 1, 16, 12, true));
    cases.push_back(Info(columns, rows, 1, 16, 16, false));
    cases.push_back(Info(columns, rows, 1, 16, 16, true));
    cases.push_back(Info(columns, rows, 3, 8, 8, false));
  }
  cases.push_back(Info(33, 7, 3, 16, 16, false));
  cases.push_back(Info(33, 7, 3, 16, 10, true));
  cases.push_back(Info(40, 30, 1, 16, 8, false));
  cases.push_back(Info(40, 30, 1, 16, 6, true));
  cases.push_back(Info(40, 30, 1, 8, 2, false));
  cases.push_back(Info(1, 1, 1, 16, 12, false));
  cases.push_back(Info(300, 1, 1, 8, 8, false));
  if (min_bits_stored <= 1) cases.push_back(Info(40, 30, 1, 8, 1, false));
  return cases;
}

void ExpectLosslessRoundTrips(const FrameCodec& codec, const EncodeOptions& options,
                              int min_bits_stored) {
  std::uint32_t seed = 1;
  for (FrameInfo info : LosslessCases(min_bits_stored)) {
    SCOPED_TRACE(Describe(info));
    ASSERT_EQ(codec.EncodeRefusal(info, options), std::nullopt);
    const std::vector<std::uint8_t> native = MakeFrame(info, seed++);
    auto encoded = codec.Encode(native, info, options);
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    EXPECT_EQ(encoded->photometric, info.photometric);
    auto decoded = codec.Decode(encoded->bytes, info);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(decoded->photometric, info.photometric);
    EXPECT_TRUE(decoded->pixels == native) << "pixels differ";
  }
}

// Truncations, random buffers and bit flips: errors or (for flips that keep a valid stream)
// frames of the right size, never a crash or an out-of-bounds write (run under ASan too).
void ExpectCorruptionIsHandled(const FrameCodec& codec, const std::vector<std::uint8_t>& encoded,
                               const FrameInfo& info) {
  for (std::size_t cut :
       {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{10}, std::size_t{63},
        std::size_t{64}, std::size_t{65}, encoded.size() / 2, encoded.size() - 2}) {
    SCOPED_TRACE("truncated to " + std::to_string(cut));
    auto decoded = codec.Decode(std::span(encoded).first(cut), info);
    EXPECT_FALSE(decoded.ok());
    if (!decoded.ok()) {
      EXPECT_FALSE(decoded.error().message.empty());
    }
  }
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    std::vector<std::uint8_t> garbage(random() % 2000);
    for (auto& byte : garbage) byte = static_cast<std::uint8_t>(random());
    auto decoded = codec.Decode(garbage, info);
    if (decoded.ok()) {
      EXPECT_EQ(decoded->pixels.size(), info.native_bytes());
    }
  }
  for (int i = 0; i < 500; ++i) {
    std::vector<std::uint8_t> flipped = encoded;
    const std::size_t bit = random() % (flipped.size() * 8);
    flipped[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto decoded = codec.Decode(flipped, info);
    if (decoded.ok()) {
      EXPECT_EQ(decoded->pixels.size(), info.native_bytes());
    }
  }
}

std::vector<std::uint8_t> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---------------------------------------------------------------------------------------------
// JPEG-LS

TEST(JpegLsCodecTest, ServesBothSyntaxes) {
  EXPECT_EQ(MakeJpegLsLosslessCodec()->transfer_syntax_uid(), "1.2.840.10008.1.2.4.80");
  EXPECT_EQ(MakeJpegLsNearLosslessCodec()->transfer_syntax_uid(), "1.2.840.10008.1.2.4.81");
}

TEST(JpegLsCodecTest, LosslessRoundTripsEveryDepthSignAndColour) {
  ExpectLosslessRoundTrips(*MakeJpegLsLosslessCodec(), EncodeOptions{}, 2);
}

TEST(JpegLsCodecTest, LosslessIgnoresTheLossyOption) {
  EncodeOptions lossy;
  lossy.lossy = true;
  lossy.near_lossless = 5;
  ExpectLosslessRoundTrips(*MakeJpegLsLosslessCodec(), lossy, 2);
}

TEST(JpegLsCodecTest, NearLosslessWithZeroNearIsLossless) {
  EncodeOptions options;
  options.lossy = true;
  options.near_lossless = 0;
  ExpectLosslessRoundTrips(*MakeJpegLsNearLosslessCodec(), options, 2);
}

// Near-lossless bounds every sample's error by NEAR, so PSNR >= 20 log10(MAX / NEAR): the floor
// checked (8-bit NEAR 2: 42.1 dB; 12-bit NEAR 2: 66.2 dB). Signed samples within NEAR of the
// extremes are clamped first (see jpegls_codec.h): error up to 2 NEAR there, floor
// 20 log10(MAX / (2 NEAR)); and never the wrap from the most negative to the most positive.
TEST(JpegLsCodecTest, NearLosslessKeepsEveryErrorWithinNear) {
  const auto codec = MakeJpegLsNearLosslessCodec();
  std::uint32_t seed = 100;
  for (auto [info, near] :
       {std::pair{Info(512, 512, 1, 16, 12, false), 2},
        std::pair{Info(512, 512, 1, 16, 12, true), 3}, std::pair{Info(64, 48, 1, 8, 8, false), 2},
        std::pair{Info(64, 48, 1, 8, 8, true), 2}, std::pair{Info(31, 17, 3, 8, 8, false), 1},
        std::pair{Info(64, 48, 1, 16, 16, true), 4}}) {
    SCOPED_TRACE(Describe(info) + " NEAR " + std::to_string(near));
    EncodeOptions options;
    options.lossy = true;
    options.near_lossless = near;
    const std::vector<std::uint8_t> native = MakeFrame(info, seed++);
    auto encoded = codec->Encode(native, info, options);
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    auto decoded = codec->Decode(encoded->bytes, info);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    const std::int32_t max = (1 << info.bits_stored) - 1;
    const std::int32_t low = info.is_signed ? -(max + 1) / 2 : 0;
    const std::int32_t high = low + max;
    std::int32_t worst_inside = 0;
    std::int32_t worst = 0;
    for (std::size_t i = 0; i < info.native_bytes() / info.bytes_per_sample(); ++i) {
      const std::int32_t original = SampleAt(native, info, i);
      const std::int32_t error = std::abs(original - SampleAt(decoded->pixels, info, i));
      worst = std::max(worst, error);
      if (original >= low + near && original <= high - near) {
        worst_inside = std::max(worst_inside, error);
      }
    }
    EXPECT_LE(worst_inside, near);
    EXPECT_LE(worst, info.is_signed ? 2 * near : near);
    const double floor = 20 * std::log10(max / (info.is_signed ? 2.0 * near : 1.0 * near));
    EXPECT_GE(Psnr(native, decoded->pixels, info), floor);
  }
}

// CharLS 2.4.1 spins for seconds on a stream cut inside its scan: the codec refuses streams
// without EOI up front, and a cut stream that keeps its EOI fails fast inside CharLS.
TEST(JpegLsCodecTest, TruncatedStreamsFailFast) {
  const FrameInfo info = Info(512, 512, 1, 16, 12, false);
  std::vector<std::uint8_t> native(info.native_bytes());
  for (std::size_t i = 0; i < native.size() / 2; ++i) {  // mostly runs: CharLS's slow case
    PutSample(native, info, i, i % 7 == 0 ? static_cast<std::int32_t>(i % 4096) : 5);
  }
  const auto codec = MakeJpegLsLosslessCodec();
  auto encoded = codec->Encode(native, info, {});
  ASSERT_TRUE(encoded.ok());
  const std::vector<std::uint8_t>& bytes = encoded->bytes;
  std::vector<std::uint8_t> padded = bytes;
  padded.push_back(0);  // DICOM's even-length pad is fine
  EXPECT_TRUE(codec->Decode(padded, info).ok());
  std::vector<std::uint8_t> cut_with_eoi(bytes.begin(), bytes.begin() + bytes.size() / 2);
  cut_with_eoi.insert(cut_with_eoi.end(), {0xFF, 0xD9});
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t cut : {std::size_t{100}, bytes.size() / 3, bytes.size() / 2, bytes.size() - 1}) {
    auto decoded = codec->Decode(std::span(bytes).first(cut), info);
    ASSERT_FALSE(decoded.ok());
    EXPECT_NE(decoded.error().message.find("EOI"), std::string::npos) << decoded.error().message;
  }
  EXPECT_FALSE(codec->Decode(cut_with_eoi, info).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST(JpegLsCodecTest, NearLosslessCompressesMoreThanLossless) {
  const FrameInfo info = Info(512, 512, 1, 16, 12, false);
  const std::vector<std::uint8_t> native = MakeFrame(info, 5);
  EncodeOptions options;
  options.lossy = true;
  options.near_lossless = 3;
  auto lossless = MakeJpegLsLosslessCodec()->Encode(native, info, options);
  auto near = MakeJpegLsNearLosslessCodec()->Encode(native, info, options);
  ASSERT_TRUE(lossless.ok() && near.ok());
  EXPECT_LT(near->bytes.size(), lossless->bytes.size());
  EXPECT_LT(lossless->bytes.size(), native.size() / 2);
}

TEST(JpegLsCodecTest, RefusesWhatItCannotCode) {
  const auto lossless = MakeJpegLsLosslessCodec();
  const auto near = MakeJpegLsNearLosslessCodec();
  EncodeOptions lossy;
  lossy.lossy = true;
  const FrameInfo ok = Info(64, 48, 1, 16, 12, false);
  EXPECT_EQ(lossless->EncodeRefusal(ok, EncodeOptions{}), std::nullopt);
  EXPECT_EQ(near->EncodeRefusal(ok, lossy), std::nullopt);
  auto refusal = near->EncodeRefusal(ok, EncodeOptions{});
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("near-lossless is lossy"), std::string::npos) << *refusal;
  EncodeOptions too_near = lossy;
  too_near.near_lossless = 256;
  EXPECT_TRUE(near->EncodeRefusal(ok, too_near).has_value());
  too_near.near_lossless = 2;  // MAXVAL 3 allows NEAR 1 at most
  EXPECT_TRUE(near->EncodeRefusal(Info(8, 8, 1, 8, 2, false), too_near).has_value());
  too_near.near_lossless = -1;
  EXPECT_TRUE(near->EncodeRefusal(ok, too_near).has_value());

  EXPECT_TRUE(lossless->EncodeRefusal(Info(8, 8, 1, 8, 1, false), {}).has_value());
  EXPECT_TRUE(lossless->EncodeRefusal(Info(8, 8, 4, 8, 8, false), {}).has_value());
  EXPECT_TRUE(lossless->EncodeRefusal(Info(8, 8, 2, 8, 8, false), {}).has_value());
  EXPECT_TRUE(lossless->EncodeRefusal(Info(8, 8, 1, 32, 32, false), {}).has_value());
  EXPECT_TRUE(lossless->EncodeRefusal(Info(8, 8, 1, 8, 12, false), {}).has_value());
  EXPECT_TRUE(lossless->EncodeRefusal(Info(0, 8, 1, 8, 8, false), {}).has_value());
  FrameInfo subsampled = Info(8, 8, 3, 8, 8, false);
  subsampled.photometric = Photometric::kYbrFull422;
  EXPECT_TRUE(lossless->EncodeRefusal(subsampled, {}).has_value());
  FrameInfo rgb_grey = Info(8, 8, 1, 8, 8, false);
  rgb_grey.photometric = Photometric::kRgb;
  EXPECT_TRUE(lossless->EncodeRefusal(rgb_grey, {}).has_value());
  FrameInfo ybr = Info(8, 8, 3, 8, 8, false);
  ybr.photometric = Photometric::kYbrFull;
  EXPECT_EQ(lossless->EncodeRefusal(ybr, {}), std::nullopt);

  // Encode refuses too, and a wrong-sized buffer is an error rather than a read overrun.
  auto encoded = near->Encode(MakeFrame(ok, 1), ok, EncodeOptions{});
  EXPECT_FALSE(encoded.ok());
  std::vector<std::uint8_t> short_frame(ok.native_bytes() - 2);
  EXPECT_FALSE(lossless->Encode(short_frame, ok, {}).ok());
}

TEST(JpegLsCodecTest, MasksBitsAboveBitsStored) {
  const auto codec = MakeJpegLsLosslessCodec();
  for (FrameInfo info :
       {Info(16, 8, 1, 16, 12, false), Info(16, 8, 1, 16, 8, false), Info(16, 8, 1, 8, 6, false)}) {
    SCOPED_TRACE(Describe(info));
    std::vector<std::uint8_t> native = MakeFrame(info, 3);
    std::vector<std::uint8_t> dirty = native;
    for (std::size_t i = 1; i < dirty.size(); i += info.bytes_per_sample()) dirty[i] |= 0xC0;
    if (info.bytes_per_sample() == 1) {
      for (auto& byte : dirty) byte |= 0xC0;
    }
    auto encoded = codec->Encode(dirty, info, {});
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    auto decoded = codec->Decode(encoded->bytes, info);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_TRUE(decoded->pixels == native);
  }
}

TEST(JpegLsCodecTest, RejectsCodestreamsThatDisagreeWithTheDataset) {
  const auto codec = MakeJpegLsLosslessCodec();
  const FrameInfo info = Info(64, 48, 1, 16, 12, false);
  auto encoded = codec->Encode(MakeFrame(info, 9), info, {});
  ASSERT_TRUE(encoded.ok());
  for (FrameInfo wrong : {Info(48, 64, 1, 16, 12, false), Info(64, 47, 1, 16, 12, false),
                          Info(65, 48, 1, 16, 12, false), Info(64, 48, 3, 16, 12, false),
                          Info(64, 48, 1, 16, 13, false), Info(64, 48, 1, 8, 8, false)}) {
    SCOPED_TRACE(Describe(wrong));
    auto decoded = codec->Decode(encoded->bytes, wrong);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().message.find('\n'), std::string::npos);
  }
  // P above Bits Allocated is refused (P above Bits Stored is accepted: see the next test).
  const FrameInfo wide = Info(64, 48, 1, 16, 16, false);
  auto encoded16 = codec->Encode(MakeFrame(wide, 9), wide, {});
  ASSERT_TRUE(encoded16.ok());
  EXPECT_FALSE(codec->Decode(encoded16->bytes, Info(64, 48, 1, 8, 8, false)).ok());
}

TEST(JpegLsCodecTest, AcceptsPrecisionAboveBitsStoredAndMasksOrSignExtends) {
  // Some encoders write P = Bits Allocated: decode keeps the low Bits Stored bits.
  const FrameInfo coded = Info(32, 16, 1, 16, 16, false);
  std::vector<std::uint8_t> native(coded.native_bytes());
  for (std::size_t i = 0; i < native.size() / 2; ++i) {
    PutSample(native, coded, i, static_cast<std::int32_t>((i * 37) & 0xFFF) | 0xF000);
  }
  auto encoded = MakeJpegLsLosslessCodec()->Encode(native, coded, {});
  ASSERT_TRUE(encoded.ok());
  auto as_signed = MakeJpegLsLosslessCodec()->Decode(encoded->bytes, Info(32, 16, 1, 16, 12, true));
  ASSERT_TRUE(as_signed.ok()) << as_signed.error().message;
  const FrameInfo signed12 = Info(32, 16, 1, 16, 12, true);
  for (std::size_t i = 0; i < native.size() / 2; ++i) {
    const std::int32_t bits = static_cast<std::int32_t>((i * 37) & 0xFFF);
    ASSERT_EQ(SampleAt(as_signed->pixels, signed12, i), bits >= 0x800 ? bits - 0x1000 : bits);
  }
}

// Streams coded by other encoders: line- and plane-interleaved colour (plane-interleaved comes
// back planar from CharLS and must be re-interleaved) and the HP colour transform.
TEST(JpegLsCodecTest, DecodesEveryInterleaveMode) {
  const FrameInfo info = Info(37, 21, 3, 8, 8, false);
  const std::vector<std::uint8_t> native = MakeFrame(info, 11);
  std::vector<std::uint8_t> planar(native.size());
  const std::size_t pixels = 37 * 21;
  for (std::size_t p = 0; p < pixels; ++p) {
    for (std::size_t c = 0; c < 3; ++c) planar[c * pixels + p] = native[p * 3 + c];
  }
  const charls::frame_info frame{37, 21, 8, 3};
  const auto none = charls::jpegls_encoder::encode(planar, frame, charls::interleave_mode::none);
  const auto line = charls::jpegls_encoder::encode(native, frame, charls::interleave_mode::line);
  charls::jpegls_encoder hp;
  hp.frame_info(frame)
      .interleave_mode(charls::interleave_mode::sample)
      .color_transformation(charls::color_transformation::hp1);
  std::vector<std::uint8_t> transformed(hp.estimated_destination_size());
  hp.destination(transformed);
  transformed.resize(hp.encode(native));
  const auto codec = MakeJpegLsLosslessCodec();
  for (const std::vector<std::uint8_t>* stream :
       std::initializer_list<const std::vector<std::uint8_t>*>{&none, &line, &transformed}) {
    auto decoded = codec->Decode(*stream, info);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_TRUE(decoded->pixels == native);
  }
  // 16-bit colour plane-interleaved, 12 bits stored signed.
  const FrameInfo info16 = Info(9, 5, 3, 16, 12, true);
  const std::vector<std::uint8_t> native16 = MakeFrame(info16, 12);
  std::vector<std::uint8_t> planar16(9 * 5 * 3 * 2);  // 12-bit samples in 16-bit words
  for (std::size_t p = 0; p < 45; ++p) {
    for (std::size_t c = 0; c < 3; ++c) {
      const auto value = SampleAt(native16, info16, p * 3 + c) & 0xFFF;
      planar16[2 * (c * 45 + p)] = static_cast<std::uint8_t>(value);
      planar16[2 * (c * 45 + p) + 1] = static_cast<std::uint8_t>(value >> 8);
    }
  }
  const auto none16 = charls::jpegls_encoder::encode(planar16, charls::frame_info{9, 5, 12, 3},
                                                     charls::interleave_mode::none);
  auto decoded16 = codec->Decode(none16, info16);
  ASSERT_TRUE(decoded16.ok()) << decoded16.error().message;
  EXPECT_TRUE(decoded16->pixels == native16);
}

TEST(JpegLsCodecTest, CorruptCodestreamsAreErrorsNotCrashes) {
  const auto codec = MakeJpegLsLosslessCodec();
  for (FrameInfo info : {Info(64, 48, 1, 16, 12, false), Info(31, 17, 3, 8, 8, false)}) {
    SCOPED_TRACE(Describe(info));
    auto encoded = codec->Encode(MakeFrame(info, 21), info, {});
    ASSERT_TRUE(encoded.ok());
    ExpectCorruptionIsHandled(*codec, encoded->bytes, info);
  }
}

TEST(JpegLsCodecTest, DecodesPydicomCorpusFile) {
  const std::vector<std::uint8_t> frame =
      FirstFrameFragments(test_support::kPydicomCorpus + "MR_small_jpeg_ls_lossless.dcm");
  ASSERT_FALSE(frame.empty());
  const std::vector<std::uint8_t> expected =
      NativePixels16(test_support::kPydicomCorpus + "MR_small.dcm");
  auto decoded = MakeJpegLsLosslessCodec()->Decode(frame, Info(64, 64, 1, 16, 16, true));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(decoded->pixels == expected);
}

// ---------------------------------------------------------------------------------------------
// RLE

// Noise codes bigger than the native frame (Golomb codes plus bit stuffing): the output buffer
// must allow for it (found when the pipeline sent random test images).
TEST(JpegLsCodecTest, RoundTripsIncompressibleNoise) {
  const auto codec = MakeJpegLsLosslessCodec();
  std::mt19937 random(5);
  for (FrameInfo info : {Info(256, 64, 1, 8, 8, false), Info(64, 64, 3, 8, 8, false),
                         Info(128, 32, 1, 16, 16, false)}) {
    SCOPED_TRACE(Describe(info));
    std::vector<std::uint8_t> noise(info.native_bytes());
    for (auto& byte : noise) byte = static_cast<std::uint8_t>(random());
    auto encoded = codec->Encode(noise, info, {});
    ASSERT_TRUE(encoded.ok()) << encoded.error().message;
    auto decoded = codec->Decode(encoded->bytes, info);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_TRUE(decoded->pixels == noise);
  }
}

TEST(RleCodecTest, ServesRleLossless) {
  EXPECT_EQ(MakeRleLosslessCodec()->transfer_syntax_uid(), "1.2.840.10008.1.2.5");
}

TEST(RleCodecTest, RoundTripsEveryDepthSignAndColour) {
  ExpectLosslessRoundTrips(*MakeRleLosslessCodec(), EncodeOptions{}, 1);
  EncodeOptions lossy;
  lossy.lossy = true;
  ExpectLosslessRoundTrips(*MakeRleLosslessCodec(), lossy, 1);
}

TEST(RleCodecTest, RoundTripsIncompressibleAndConstantFrames) {
  const auto codec = MakeRleLosslessCodec();
  std::mt19937 random(3);
  for (FrameInfo info : {Info(517, 33, 1, 8, 8, false), Info(257, 9, 3, 16, 16, false),
                         Info(129, 3, 1, 16, 16, true)}) {
    SCOPED_TRACE(Describe(info));
    std::vector<std::uint8_t> noise(info.native_bytes());
    for (auto& byte : noise) byte = static_cast<std::uint8_t>(random());
    if (info.is_signed) noise = MakeFrame(info, 4);
    std::vector<std::uint8_t> constant(info.native_bytes(), 0x5A);
    std::vector<std::uint8_t> pairs(info.native_bytes());  // runs of 2 only
    for (std::size_t i = 0; i < pairs.size(); ++i) pairs[i] = static_cast<std::uint8_t>(i / 2);
    for (const auto* native : {&noise, &constant, &pairs}) {
      auto encoded = codec->Encode(*native, info, {});
      ASSERT_TRUE(encoded.ok()) << encoded.error().message;
      auto decoded = codec->Decode(encoded->bytes, info);
      ASSERT_TRUE(decoded.ok()) << decoded.error().message;
      EXPECT_TRUE(decoded->pixels == *native);
    }
  }
}

// PS3.5 G.2-G.5 byte for byte: header, MSB segment first, each row coded on its own (runs stop
// at the end of a row), even segment lengths.
TEST(RleCodecTest, WritesTheAnnexGLayout) {
  const FrameInfo info = Info(200, 2, 1, 16, 16, false);
  std::vector<std::uint8_t> native(info.native_bytes());
  for (std::size_t i = 0; i < 400; ++i) {
    native[2 * i] = 0x34;      // LSB
    native[2 * i + 1] = 0x12;  // MSB
  }
  native[2 * 399] = 0x35;  // the last LSB differs: "... 0x34 0x35" ends the LSB plane
  auto encoded = MakeRleLosslessCodec()->Encode(native, info, {});
  ASSERT_TRUE(encoded.ok());
  // Each row of 200 equal bytes: a run of 128 (0x81) and a run of 72 (0xB9) = 4 bytes.
  const std::vector<std::uint8_t> msb = {0x81, 0x12, 0xB9, 0x12, 0x81, 0x12, 0xB9, 0x12};
  // The LSB plane's second row: a run of 128, a run of 71 (0xBA), a literal of one 0x35.
  const std::vector<std::uint8_t> lsb = {0x81, 0x34, 0xB9, 0x34, 0x81,
                                         0x34, 0xBA, 0x34, 0x00, 0x35};
  std::vector<std::uint8_t> expected(64, 0);
  expected[0] = 2;
  expected[4] = 64;
  expected[8] = 64 + 8;
  expected.insert(expected.end(), msb.begin(), msb.end());
  expected.insert(expected.end(), lsb.begin(), lsb.end());
  EXPECT_EQ(encoded->bytes, expected);
}

TEST(RleCodecTest, RefusesWhatItCannotCode) {
  const auto codec = MakeRleLosslessCodec();
  EXPECT_EQ(codec->EncodeRefusal(Info(8, 8, 3, 16, 16, true), {}), std::nullopt);
  EXPECT_TRUE(codec->EncodeRefusal(Info(8, 8, 1, 32, 32, false), {}).has_value());
  EXPECT_TRUE(codec->EncodeRefusal(Info(8, 8, 4, 8, 8, false), {}).has_value());
  EXPECT_TRUE(codec->EncodeRefusal(Info(8, 8, 1, 8, 9, false), {}).has_value());
  EXPECT_TRUE(codec->EncodeRefusal(Info(8, 0, 1, 8, 8, false), {}).has_value());
  FrameInfo subsampled = Info(8, 8, 3, 8, 8, false);
  subsampled.photometric = Photometric::kYbrFull422;
  EXPECT_TRUE(codec->EncodeRefusal(subsampled, {}).has_value());
  std::vector<std::uint8_t> short_frame(10);
  EXPECT_FALSE(codec->Encode(short_frame, Info(8, 8, 1, 8, 8, false), {}).ok());
}

TEST(RleCodecTest, MasksBitsAboveBitsStored) {
  const FrameInfo info = Info(16, 8, 1, 16, 12, false);
  std::vector<std::uint8_t> native = MakeFrame(info, 3);
  std::vector<std::uint8_t> dirty = native;
  for (std::size_t i = 1; i < dirty.size(); i += 2) dirty[i] |= 0xF0;
  auto encoded = MakeRleLosslessCodec()->Encode(dirty, info, {});
  ASSERT_TRUE(encoded.ok());
  auto decoded = MakeRleLosslessCodec()->Decode(encoded->bytes, info);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->pixels == native);
}

std::vector<std::uint8_t> Header(std::initializer_list<std::uint32_t> values) {
  std::vector<std::uint8_t> header(64, 0);
  std::size_t i = 0;
  for (std::uint32_t value : values) {
    for (int b = 0; b < 4; ++b) header[i++] = static_cast<std::uint8_t>(value >> (8 * b));
  }
  return header;
}

TEST(RleCodecTest, ValidatesTheHeader) {
  const auto codec = MakeRleLosslessCodec();
  const FrameInfo info = Info(4, 2, 1, 16, 16, false);
  // Valid: two segments of a replicate run of 8 each.
  std::vector<std::uint8_t> good = Header({2, 64, 66});
  good.insert(good.end(), {0xF9, 0x01, 0xF9, 0x02});
  auto decoded = codec->Decode(good, info);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->pixels[0], 0x02);
  EXPECT_EQ(decoded->pixels[1], 0x01);

  auto with = [&](std::vector<std::uint8_t> header) {
    header.insert(header.end(), {0xF9, 0x01, 0xF9, 0x02});
    return codec->Decode(header, info);
  };
  EXPECT_FALSE(with(Header({1, 64})).ok());                     // one segment for 16-bit samples
  EXPECT_FALSE(with(Header({3, 64, 66, 67})).ok());             // three
  EXPECT_FALSE(with(Header({16, 64, 66})).ok());                // more than 15
  EXPECT_FALSE(with(Header({2, 66, 64})).ok());                 // decreasing
  EXPECT_FALSE(with(Header({2, 64, 64})).ok());                 // equal
  EXPECT_FALSE(with(Header({2, 60, 66})).ok());                 // inside the header
  EXPECT_FALSE(with(Header({2, 64, 68})).ok());                 // at the end: empty segment
  EXPECT_FALSE(with(Header({2, 64, 0xFFFFFFFF})).ok());         // past the end
  EXPECT_FALSE(codec->Decode(Header({2, 64, 66}), info).ok());  // header only
}

TEST(RleCodecTest, ShortSegmentIsAnErrorAndASmallExcessIsDropped) {
  const auto codec = MakeRleLosslessCodec();
  const FrameInfo info = Info(4, 4, 1, 8, 8, false);
  auto decode = [&](std::vector<std::uint8_t> segment) {
    std::vector<std::uint8_t> frame = Header({1, 64});
    frame.insert(frame.end(), segment.begin(), segment.end());
    return codec->Decode(frame, info);
  };
  EXPECT_FALSE(decode({0xF2, 0x07}).ok());                         // 15 bytes
  EXPECT_FALSE(decode({0x0F, 0x01, 0x02}).ok());                   // a literal cut short
  EXPECT_TRUE(decode({0xF1, 0x07}).ok());                          // 16 bytes: exact
  EXPECT_TRUE(decode({0xF1, 0x07, 0x00}).ok());                    // pad byte after a full plane
  EXPECT_TRUE(decode({0xF0, 0x07}).ok());                          // 17: one byte over
  EXPECT_TRUE(decode({0xF1, 0x07, 0x02, 0x01, 0x02, 0x03}).ok());  // 3 more: under 4
  EXPECT_FALSE(decode({0xF1, 0x07, 0xFD, 0x01}).ok());             // 4 more: a row more
  EXPECT_TRUE(decode({0x80, 0xF1, 0x07}).ok());                    // -128 is a no-op
}

TEST(RleCodecTest, RejectsCodestreamsThatDisagreeWithTheDataset) {
  const auto codec = MakeRleLosslessCodec();
  const FrameInfo info = Info(64, 48, 1, 16, 12, false);
  auto encoded = codec->Encode(MakeFrame(info, 9), info, {});
  ASSERT_TRUE(encoded.ok());
  for (FrameInfo wrong : {Info(64, 47, 1, 16, 12, false), Info(64, 49, 1, 16, 12, false),
                          Info(63, 48, 1, 16, 12, false), Info(65, 48, 1, 16, 12, false),
                          Info(64, 48, 3, 16, 12, false), Info(64, 48, 1, 8, 8, false)}) {
    SCOPED_TRACE(Describe(wrong));
    EXPECT_FALSE(codec->Decode(encoded->bytes, wrong).ok());
  }
}

TEST(RleCodecTest, CorruptCodestreamsAreErrorsNotCrashes) {
  const auto codec = MakeRleLosslessCodec();
  for (FrameInfo info : {Info(64, 48, 1, 16, 12, false), Info(31, 17, 3, 8, 8, false)}) {
    SCOPED_TRACE(Describe(info));
    auto encoded = codec->Encode(MakeFrame(info, 21), info, {});
    ASSERT_TRUE(encoded.ok());
    ExpectCorruptionIsHandled(*codec, encoded->bytes, info);
    // Random segments behind a valid header.
    std::mt19937 random(8);
    for (int i = 0; i < 200; ++i) {
      std::vector<std::uint8_t> frame(encoded->bytes.begin(), encoded->bytes.begin() + 64);
      for (std::size_t n = random() % 4000; n > 0; --n) {
        frame.push_back(static_cast<std::uint8_t>(random()));
      }
      auto decoded = codec->Decode(frame, info);
      if (decoded.ok()) {
        EXPECT_EQ(decoded->pixels.size(), info.native_bytes());
      }
    }
  }
}

TEST(RleCodecTest, DecodesPydicomCorpusFile) {
  const std::vector<std::uint8_t> frame =
      FirstFrameFragments(test_support::kPydicomCorpus + "MR_small_RLE.dcm");
  ASSERT_FALSE(frame.empty());
  const std::vector<std::uint8_t> expected =
      NativePixels16(test_support::kPydicomCorpus + "MR_small.dcm");
  ASSERT_EQ(expected.size(), 64u * 64 * 2);
  auto decoded = MakeRleLosslessCodec()->Decode(frame, Info(64, 64, 1, 16, 16, true));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(decoded->pixels == expected);
}

// pydicom's RLE decoder (an independent implementation) on `frames`: interleaved native bytes.
std::vector<std::vector<std::uint8_t>> PydicomDecode(
    const std::vector<std::pair<std::vector<std::uint8_t>, FrameInfo>>& frames) {
  const std::string dir = testing::TempDir() + "conduit_rle_" + std::to_string(::getpid()) + "/";
  std::filesystem::create_directories(dir);
  std::string specs;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    std::ofstream(dir + std::to_string(i) + ".rle", std::ios::binary)
        .write(reinterpret_cast<const char*>(frames[i].first.data()),
               static_cast<std::streamsize>(frames[i].first.size()));
    const FrameInfo& info = frames[i].second;
    specs += std::to_string(info.rows) + "," + std::to_string(info.columns) + "," +
             std::to_string(info.samples_per_pixel) + "," + std::to_string(info.bits_allocated) +
             ";";
  }
  const std::string script =
      "import sys, warnings, numpy\n"
      "warnings.simplefilter('error', UserWarning)\n"
      "from pydicom.pixel_data_handlers.rle_handler import _rle_decode_frame\n"
      "d = sys.argv[1]\n"
      "for i, spec in enumerate(s for s in sys.argv[2].split(';') if s):\n"
      "    rows, cols, spp, bits = map(int, spec.split(','))\n"
      "    data = open(f'{d}{i}.rle', 'rb').read()\n"
      "    planar = numpy.frombuffer(_rle_decode_frame(data, rows, cols, spp, bits), 'u1')\n"
      "    nbytes = bits // 8\n"
      "    out = planar.reshape(spp, rows * cols, nbytes).transpose(1, 0, 2)\n"
      "    open(f'{d}{i}.raw', 'wb').write(out.tobytes())\n";
  std::ofstream(dir + "decode.py") << script;
  const std::string command = "/usr/bin/python3 " + dir + "decode.py " + dir + " '" + specs + "'";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::vector<std::vector<std::uint8_t>> decoded;
  for (std::size_t i = 0; i < frames.size(); ++i)
    decoded.push_back(ReadFile(dir + std::to_string(i) + ".raw"));
  std::filesystem::remove_all(dir);
  return decoded;
}

// What we encode, pydicom decodes (with warnings as errors: no non-conformant padding); and what
// pydicom reads from the corpus's colour files, we read the same.
TEST(RleCodecTest, AgreesWithPydicom) {
  const auto codec = MakeRleLosslessCodec();
  std::vector<std::pair<std::vector<std::uint8_t>, FrameInfo>> frames;
  std::vector<std::vector<std::uint8_t>> natives;
  std::uint32_t seed = 40;
  for (FrameInfo info : {Info(64, 48, 1, 8, 8, false), Info(31, 17, 3, 8, 8, false),
                         Info(512, 512, 1, 16, 12, false), Info(33, 7, 3, 16, 16, false),
                         Info(31, 17, 1, 16, 16, true)}) {
    natives.push_back(MakeFrame(info, seed++));
    auto encoded = codec->Encode(natives.back(), info, {});
    ASSERT_TRUE(encoded.ok());
    frames.emplace_back(encoded->bytes, info);
  }
  const std::size_t ours = frames.size();
  const FrameInfo rgb8 = Info(100, 100, 3, 8, 8, false);
  const FrameInfo rgb16 = Info(100, 100, 3, 16, 16, false);
  frames.emplace_back(FirstFrameFragments(test_support::kPydicomCorpus + "SC_rgb_rle.dcm"), rgb8);
  frames.emplace_back(FirstFrameFragments(test_support::kPydicomCorpus + "SC_rgb_rle_16bit.dcm"),
                      rgb16);
  const auto decoded = PydicomDecode(frames);
  ASSERT_EQ(decoded.size(), frames.size());
  for (std::size_t i = 0; i < ours; ++i) {
    SCOPED_TRACE(Describe(frames[i].second));
    EXPECT_TRUE(decoded[i] == natives[i]);
  }
  for (std::size_t i = ours; i < frames.size(); ++i) {
    SCOPED_TRACE("corpus " + Describe(frames[i].second));
    auto ours_decoded = codec->Decode(frames[i].first, frames[i].second);
    ASSERT_TRUE(ours_decoded.ok()) << ours_decoded.error().message;
    EXPECT_EQ(ours_decoded->pixels.size(), frames[i].second.native_bytes());
    EXPECT_TRUE(ours_decoded->pixels == decoded[i]);
  }
}

}  // namespace
}  // namespace conduit::codecs
