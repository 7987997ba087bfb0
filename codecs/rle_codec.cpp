#include "codecs/rle_codec.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <new>

#include "codecs/sample_bits.h"

namespace conduit::codecs {
namespace {

constexpr std::string_view kRleLosslessUid = "1.2.840.10008.1.2.5";
constexpr std::size_t kHeaderBytes = 64;  // PS3.5 G.4: 16 uint32 values
constexpr std::size_t kMaxSegments = 15;
constexpr std::size_t kMaxRun = 128;  // PS3.5 G.3.1: a run codes 1 to 128 bytes

std::uint32_t LoadLe32(const std::uint8_t* bytes) {
  return static_cast<std::uint32_t>(bytes[0]) | static_cast<std::uint32_t>(bytes[1]) << 8 |
         static_cast<std::uint32_t>(bytes[2]) << 16 | static_cast<std::uint32_t>(bytes[3]) << 24;
}

void StoreLe32(std::uint8_t* bytes, std::uint32_t value) {
  bytes[0] = static_cast<std::uint8_t>(value);
  bytes[1] = static_cast<std::uint8_t>(value >> 8);
  bytes[2] = static_cast<std::uint8_t>(value >> 16);
  bytes[3] = static_cast<std::uint8_t>(value >> 24);
}

// Worst case of one coded row: a literal header per 128 bytes.
std::size_t MaxCodedRow(std::size_t columns) { return columns + (columns + kMaxRun - 1) / kMaxRun; }

std::uint64_t Load64(const std::uint8_t* bytes) {
  std::uint64_t value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}

// Non-zero when some byte of `value` is zero (and exactly zero when none is).
constexpr std::uint64_t HasZeroByte(std::uint64_t value) {
  return (value - 0x0101010101010101u) & ~value & 0x8080808080808080u;
}

// PackBits-codes one row of one byte plane (PS3.5 G.3.1) at `out`, returns the end. Runs of 3 or
// more equal bytes become replicate runs (a run of 2 inside a literal costs nothing extra, while
// breaking the literal for it costs a header byte); everything else is literal, 128 at most.
// Both scans go 8 bytes at a time where they can: this is the hot loop of whole-study encodes.
std::uint8_t* EncodeRow(const std::uint8_t* row, std::size_t length, std::uint8_t* out) {
  const std::uint8_t* p = row;
  const std::uint8_t* const end = row + length;
  while (p < end) {
    const std::uint8_t* const limit = p + std::min<std::size_t>(kMaxRun, end - p);
    const std::uint8_t* q = p + 1;
    const std::uint64_t repeated = 0x0101010101010101u * *p;
    while (q + 8 <= limit && Load64(q) == repeated) q += 8;
    while (q < limit && *q == *p) ++q;
    const auto run = static_cast<std::size_t>(q - p);
    if (run >= 3) {
      *out++ = static_cast<std::uint8_t>(257 - run);  // -(run - 1) as a signed byte
      *out++ = *p;
      p = q;
      continue;
    }
    // A literal: up to the next run of 3, the end of the row or 128 bytes. Eight positions are
    // skipped at once when none of them starts three equal bytes.
    while (q + 8 <= limit && q + 10 <= end) {
      const std::uint64_t a = Load64(q);
      const std::uint64_t b = Load64(q + 1);
      const std::uint64_t c = Load64(q + 2);
      if (HasZeroByte((a ^ b) | (b ^ c)) != 0) break;
      q += 8;
    }
    while (q < limit && !(q + 2 < end && q[0] == q[1] && q[1] == q[2])) ++q;
    const auto literal = static_cast<std::size_t>(q - p);
    *out++ = static_cast<std::uint8_t>(literal - 1);
    std::memcpy(out, p, literal);
    out += literal;
    p = q;
  }
  return out;
}

// What each decoded byte of one segment becomes in the native frame: masked to Bits Stored, or
// sign-extended from it, byte by byte (see ByteMapFor).
struct ByteMap {
  std::array<std::uint8_t, 256> table;
  bool identity;
};

// Decodes one PackBits segment (PS3.5 G.3.2) into every `stride`-th byte of `out`, `count`
// bytes in all, never writing past them. A segment that codes fewer bytes is an error. Bytes
// coded beyond the plane are counted and dropped; fewer than `tolerated_excess` are accepted
// (see rle_codec.h).
std::optional<std::string> DecodeSegment(std::span<const std::uint8_t> segment, std::uint8_t* out,
                                         std::size_t stride, std::size_t count, const ByteMap& map,
                                         std::size_t tolerated_excess) {
  const bool plain = stride == 1 && map.identity;
  const std::size_t length = segment.size();
  std::size_t in = 0;
  std::size_t done = 0;
  std::size_t excess = 0;
  while (in < length && (excess == 0 || excess < tolerated_excess)) {
    const auto header = static_cast<std::int8_t>(segment[in++]);
    if (header >= 0) {  // a literal: the next header + 1 bytes (fewer if the segment ends)
      const std::size_t available =
          std::min<std::size_t>(static_cast<std::size_t>(header) + 1, length - in);
      const std::size_t n = std::min(available, count - done);
      const std::uint8_t* source = segment.data() + in;
      if (plain) {
        std::memcpy(out + done, source, n);
      } else {
        for (std::size_t i = 0; i < n; ++i) out[(done + i) * stride] = map.table[source[i]];
      }
      done += n;
      excess += available - n;
      in += available;
    } else if (header != -128) {  // a replicate run of 1 - header bytes; -128 is a no-op
      if (in >= length) break;
      const auto run = static_cast<std::size_t>(1 - header);
      const std::size_t n = std::min(run, count - done);
      const std::uint8_t value = map.table[segment[in++]];
      if (stride == 1) {
        std::memset(out + done, value, n);
      } else {
        for (std::size_t i = 0; i < n; ++i) out[(done + i) * stride] = value;
      }
      done += n;
      excess += run - n;
    }
  }
  if (done < count) {
    return "decodes to " + std::to_string(done) + " bytes, expected " + std::to_string(count);
  }
  if (excess > 0 && excess >= tolerated_excess) {
    return "decodes to at least " + std::to_string(count + excess) + " bytes, expected " +
           std::to_string(count) + ": the frame is larger than the dataset says";
  }
  return std::nullopt;
}

// Keeping a sample within Bits Stored, byte by byte: the byte `significance` of a sample (0 the
// least significant) maps to that byte of the masked or sign-extended sample. Exact whenever the
// sign bit lies in the same byte or a lower one's bits are all below it; the one case where it
// does not (16 bits allocated, 8 or fewer stored, signed: the high byte follows the low byte's
// sign) is left as is here and fixed afterwards.
ByteMap ByteMapFor(const FrameInfo& info, std::size_t significance) {
  ByteMap map{};
  const unsigned container_bits = static_cast<unsigned>(info.bytes_per_sample()) * 8;
  const bool later = info.bytes_per_sample() == 2 && info.bits_stored <= 8 && significance == 1;
  map.identity = info.bits_stored == container_bits || later;
  const unsigned shift = 32 - info.bits_stored;
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    if (map.identity) {
      map.table[byte] = static_cast<std::uint8_t>(byte);
      continue;
    }
    const std::uint32_t value = byte << (8 * significance);
    const std::uint32_t fixed =
        info.is_signed
            ? static_cast<std::uint32_t>(static_cast<std::int32_t>(value << shift) >> shift)
            : (value << shift) >> shift;
    map.table[byte] = static_cast<std::uint8_t>(fixed >> (8 * significance));
  }
  return map;
}

// One row of interleaved little-endian samples, masked, to its byte planes in segment order
// (G.2): sample 0's most significant byte, its least significant byte, sample 1's...
void SplitRow(const std::uint8_t* native, std::uint8_t* planes, std::size_t columns,
              std::size_t samples, std::size_t bytes_per_sample, std::uint32_t mask) {
  if (bytes_per_sample == 1) {
    const auto byte_mask = static_cast<std::uint8_t>(mask);
    for (std::size_t c = 0; c < samples; ++c) {
      std::uint8_t* plane = planes + c * columns;
      for (std::size_t p = 0; p < columns; ++p) plane[p] = native[p * samples + c] & byte_mask;
    }
    return;
  }
  for (std::size_t c = 0; c < samples; ++c) {
    std::uint8_t* high = planes + 2 * c * columns;
    std::uint8_t* low = high + columns;
    for (std::size_t p = 0; p < columns; ++p) {
      std::uint16_t value;
      std::memcpy(&value, native + 2 * (p * samples + c), 2);  // little-endian host
      value = static_cast<std::uint16_t>(value & mask);
      high[p] = static_cast<std::uint8_t>(value >> 8);
      low[p] = static_cast<std::uint8_t>(value);
    }
  }
}

std::optional<std::string> FrameRefusal(const FrameInfo& info) {
  if (auto refusal = sample_bits::LayoutRefusal(info, "RLE")) return refusal;
  if (info.bits_stored < 1 || info.bits_stored > info.bits_allocated) {
    return "RLE takes 1 to " + std::to_string(info.bits_allocated) + " bits stored, not " +
           std::to_string(info.bits_stored);
  }
  if (auto refusal = sample_bits::PhotometricRefusal(info, "RLE")) return refusal;
  // A segment's coded size must fit the header's uint32 offsets.
  const std::size_t bytes_per_plane = static_cast<std::size_t>(info.rows) * info.columns;
  const std::size_t segments = info.samples_per_pixel * info.bytes_per_sample();
  if (static_cast<std::uint64_t>(info.rows) * MaxCodedRow(info.columns) * segments >
      0xFFFF0000u - kHeaderBytes) {
    return "RLE frame of " + std::to_string(bytes_per_plane * segments) +
           " bytes is too large for the 32-bit segment offsets";
  }
  return std::nullopt;
}

}  // namespace

std::string_view RleCodec::transfer_syntax_uid() const { return kRleLosslessUid; }

std::optional<std::string> RleCodec::EncodeRefusal(const FrameInfo& info,
                                                   const EncodeOptions& /*options*/) const {
  // RLE is lossless: options.lossy does not matter (a lossy route may always go lossless).
  return FrameRefusal(info);
}

Result<EncodedFrame, CodecError> RleCodec::Encode(std::span<const std::uint8_t> native,
                                                  const FrameInfo& info,
                                                  const EncodeOptions& options) const {
  if (auto refusal = EncodeRefusal(info, options)) return CodecError{"RLE: " + *refusal};
  if (native.size() != info.native_bytes()) {
    return CodecError{"RLE encode: frame is " + std::to_string(native.size()) +
                      " bytes, expected " + std::to_string(info.native_bytes())};
  }
  const std::size_t rows = info.rows;
  const std::size_t columns = info.columns;
  const std::size_t bytes_per_sample = info.bytes_per_sample();
  const std::size_t stride = info.samples_per_pixel * bytes_per_sample;  // bytes per pixel
  const std::size_t segments = stride;
  const std::uint32_t mask = sample_bits::LowBitsMask(info.bits_stored);

  try {
    EncodedFrame encoded;
    encoded.photometric = info.photometric;
    std::vector<std::uint8_t>& bytes = encoded.bytes;
    // One pass over the frame, row by row: each row is split into its byte planes (masked to
    // Bits Stored; PS3.5 G.2: per sample, most significant byte first) and each plane's row coded
    // on its own (G.3.1) into its segment's worst-case region; the segments are then moved
    // together, each padded to even length (G.5).
    const std::size_t region = rows * MaxCodedRow(columns) + 1;
    bytes.resize(kHeaderBytes + segments * region);
    std::array<std::uint8_t*, kMaxSegments> ends{};
    for (std::size_t segment = 0; segment < segments; ++segment) {
      ends[segment] = bytes.data() + kHeaderBytes + segment * region;
    }
    const bool split = stride != 1 || mask != 0xFF;
    std::vector<std::uint8_t> row_planes(split ? segments * columns : 0);
    for (std::size_t row = 0; row < rows; ++row) {
      const std::uint8_t* source = native.data() + row * columns * stride;
      if (!split) {
        ends[0] = EncodeRow(source, columns, ends[0]);
        continue;
      }
      SplitRow(source, row_planes.data(), columns, info.samples_per_pixel, bytes_per_sample, mask);
      for (std::size_t segment = 0; segment < segments; ++segment) {
        ends[segment] = EncodeRow(row_planes.data() + segment * columns, columns, ends[segment]);
      }
    }
    StoreLe32(bytes.data(), static_cast<std::uint32_t>(segments));
    std::uint8_t* out = bytes.data() + kHeaderBytes;
    for (std::size_t segment = 0; segment < segments; ++segment) {
      StoreLe32(bytes.data() + 4 * (segment + 1), static_cast<std::uint32_t>(out - bytes.data()));
      const std::uint8_t* start = bytes.data() + kHeaderBytes + segment * region;
      const auto length = static_cast<std::size_t>(ends[segment] - start);
      if (out != start) std::memmove(out, start, length);
      out += length;
      if (length % 2 != 0) *out++ = 0;
    }
    bytes.resize(static_cast<std::size_t>(out - bytes.data()));
    return encoded;
  } catch (const std::bad_alloc&) {
    return CodecError{"RLE encode failed: out of memory"};
  }
}

Result<DecodedFrame, CodecError> RleCodec::Decode(std::span<const std::uint8_t> encoded,
                                                  const FrameInfo& info) const {
  if (auto refusal = FrameRefusal(info)) return CodecError{"RLE decode: " + *refusal};
  if (encoded.size() < kHeaderBytes) {
    return CodecError{"RLE decode: " + std::to_string(encoded.size()) +
                      " bytes, shorter than the 64-byte RLE header"};
  }
  const std::size_t bytes_per_sample = info.bytes_per_sample();
  const std::size_t stride = info.samples_per_pixel * bytes_per_sample;
  const std::size_t segments = LoadLe32(encoded.data());
  if (segments != stride) {
    return CodecError{"RLE decode: header has " + std::to_string(segments) +
                      " segments, expected " + std::to_string(stride) + " for " +
                      std::to_string(info.samples_per_pixel) + " x " +
                      std::to_string(info.bits_allocated) + "-bit samples"};
  }
  // PS3.5 G.4: offsets from the start of the header, the first one past it; each segment ends
  // where the next begins (the last one at the end of the frame).
  std::array<std::size_t, kMaxSegments + 1> offsets{};
  for (std::size_t i = 0; i < segments; ++i) {
    offsets[i] = LoadLe32(encoded.data() + 4 * (i + 1));
    const std::size_t floor = i == 0 ? kHeaderBytes : offsets[i - 1] + 1;
    if (offsets[i] < floor || offsets[i] >= encoded.size()) {
      return CodecError{"RLE decode: segment " + std::to_string(i + 1) + " offset " +
                        std::to_string(offsets[i]) + " is out of order or outside the " +
                        std::to_string(encoded.size()) + "-byte frame"};
    }
  }
  offsets[segments] = encoded.size();

  try {
    const std::size_t plane_size = static_cast<std::size_t>(info.rows) * info.columns;
    DecodedFrame decoded;
    decoded.photometric = info.photometric;
    decoded.pixels.resize(info.native_bytes());
    // A stray byte or two past the plane is tolerated; a whole row or a byte per row more means
    // the codestream's rows or columns disagree with the dataset's.
    const std::size_t tolerated_excess = std::min<std::size_t>(info.rows, info.columns);
    // Each segment decodes straight into its byte of every sample, masked or sign-extended on
    // the way (ByteMapFor).
    for (std::size_t segment = 0; segment < segments; ++segment) {
      const auto coded = encoded.subspan(offsets[segment], offsets[segment + 1] - offsets[segment]);
      const std::size_t sample = segment / bytes_per_sample;
      const std::size_t significance = bytes_per_sample - 1 - segment % bytes_per_sample;
      std::uint8_t* target = decoded.pixels.data() + sample * bytes_per_sample + significance;
      if (auto error = DecodeSegment(coded, target, stride, plane_size,
                                     ByteMapFor(info, significance), tolerated_excess)) {
        return CodecError{"RLE decode: segment " + std::to_string(segment + 1) + " " + *error};
      }
    }
    if (bytes_per_sample == 2 && info.bits_stored <= 8) {
      // The high byte follows the low one: zero, or the sign of a signed sample.
      std::uint8_t* data = decoded.pixels.data();
      const std::uint32_t mask = sample_bits::LowBitsMask(info.bits_stored);
      for (std::size_t i = 0; i < decoded.pixels.size(); i += 2) {
        const std::uint32_t masked = data[i] & mask;
        const std::int32_t value = info.is_signed
                                       ? sample_bits::SignExtend(masked, info.bits_stored)
                                       : static_cast<std::int32_t>(masked);
        data[i + 1] = static_cast<std::uint8_t>(value >> 8);
      }
    }
    return decoded;
  } catch (const std::bad_alloc&) {
    return CodecError{"RLE decode failed: out of memory"};
  }
}

std::unique_ptr<FrameCodec> MakeRleLosslessCodec() { return std::make_unique<RleCodec>(); }

}  // namespace conduit::codecs
