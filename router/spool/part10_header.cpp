#include "router/spool/part10_header.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace conduit::spool {
namespace {

constexpr std::size_t kPreambleSize = 128;

void PutU16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}
void PutU32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// Explicit VR Little Endian element with a 2-byte length (PS3.5 7.1.2).
void PutShortElement(std::vector<std::uint8_t>& out, std::uint16_t element, const char* vr,
                     std::string_view value, char pad) {
  const std::size_t padded = value.size() + (value.size() % 2);
  PutU16(out, 0x0002);
  PutU16(out, element);
  out.push_back(static_cast<std::uint8_t>(vr[0]));
  out.push_back(static_cast<std::uint8_t>(vr[1]));
  PutU16(out, static_cast<std::uint16_t>(padded));
  out.insert(out.end(), value.begin(), value.end());
  if (padded != value.size()) out.push_back(static_cast<std::uint8_t>(pad));
}

// OB has a 2-byte reserved field and a 4-byte length.
void PutObHeader(std::vector<std::uint8_t>& out, std::uint16_t element, std::uint32_t length) {
  PutU16(out, 0x0002);
  PutU16(out, element);
  out.push_back('O');
  out.push_back('B');
  PutU16(out, 0);
  PutU32(out, length);
}

}  // namespace

Part10Header BuildPart10Header(const Part10Identity& identity, bool reserve_spool_record) {
  std::vector<std::uint8_t> group;
  group.reserve(512 + kSpoolRecordCapacity);
  PutObHeader(group, 0x0001, 2);  // FileMetaInformationVersion 00\01
  group.push_back(0x00);
  group.push_back(0x01);
  PutShortElement(group, 0x0002, "UI", identity.sop_class_uid, '\0');
  PutShortElement(group, 0x0003, "UI", identity.sop_instance_uid, '\0');
  PutShortElement(group, 0x0010, "UI", identity.transfer_syntax_uid, '\0');
  PutShortElement(group, 0x0012, "UI", kImplementationClassUid, '\0');
  PutShortElement(group, 0x0013, "SH", kImplementationVersionName, ' ');
  // PS3.10 7.1: the AE that wrote the file's content, the one that sent it, the one receiving.
  // Type 3: left out when unknown.
  if (!identity.calling_ae.empty()) {
    PutShortElement(group, 0x0016, "AE", identity.calling_ae, ' ');
    PutShortElement(group, 0x0017, "AE", identity.calling_ae, ' ');
  }
  if (!identity.called_ae.empty()) PutShortElement(group, 0x0018, "AE", identity.called_ae, ' ');
  std::size_t record_offset_in_group = 0;
  if (reserve_spool_record) {
    PutShortElement(group, 0x0100, "UI", kPrivateInformationCreatorUid, '\0');
    PutObHeader(group, 0x0102, static_cast<std::uint32_t>(kSpoolRecordCapacity));
    record_offset_in_group = group.size();
    group.insert(group.end(), kSpoolRecordCapacity, 0);
  }

  Part10Header header;
  header.bytes.assign(kPreambleSize, 0);
  header.bytes.insert(header.bytes.end(), {'D', 'I', 'C', 'M'});
  // (0002,0000) FileMetaInformationGroupLength UL: the length of everything that follows it.
  PutU16(header.bytes, 0x0002);
  PutU16(header.bytes, 0x0000);
  header.bytes.push_back('U');
  header.bytes.push_back('L');
  PutU16(header.bytes, 4);
  PutU32(header.bytes, static_cast<std::uint32_t>(group.size()));
  header.record_offset = reserve_spool_record ? header.bytes.size() + record_offset_in_group : 0;
  header.bytes.insert(header.bytes.end(), group.begin(), group.end());
  return header;
}

}  // namespace conduit::spool

namespace conduit::spool {

Result<std::uint64_t, std::string> ReadDatasetOffset(const std::filesystem::path& path) {
  // 128-byte preamble, "DICM", then (0002,0000) UL in Explicit VR Little Endian: tag (4),
  // "UL" (2), length 4 (2), value (4).
  constexpr std::size_t kPrefixBytes = 128 + 4;
  constexpr std::size_t kGroupLengthElementBytes = 12;
  std::array<std::uint8_t, kPrefixBytes + kGroupLengthElementBytes> bytes{};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "open " + path.string() + ": " + std::strerror(errno);
  const ssize_t got = ::pread(fd, bytes.data(), bytes.size(), 0);
  ::close(fd);
  if (got != static_cast<ssize_t>(bytes.size())) return path.string() + ": too short for Part 10";
  const std::uint8_t* element = bytes.data() + kPrefixBytes;
  const bool part10 = std::memcmp(bytes.data() + 128, "DICM", 4) == 0;
  const bool group_length = element[0] == 0x02 && element[1] == 0x00 && element[2] == 0x00 &&
                            element[3] == 0x00 && element[4] == 'U' && element[5] == 'L';
  if (!part10 || !group_length) {
    return path.string() + ": no Part 10 meta group length";
  }
  const std::uint32_t meta_length = static_cast<std::uint32_t>(element[8]) |
                                    (static_cast<std::uint32_t>(element[9]) << 8) |
                                    (static_cast<std::uint32_t>(element[10]) << 16) |
                                    (static_cast<std::uint32_t>(element[11]) << 24);
  return static_cast<std::uint64_t>(kPrefixBytes + kGroupLengthElementBytes) + meta_length;
}

}  // namespace conduit::spool
