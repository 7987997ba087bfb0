#include "router/spool/part10_header.h"

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

Part10Header BuildPart10Header(const Part10Identity& identity) {
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
  PutShortElement(group, 0x0016, "AE", identity.calling_ae, ' ');
  PutShortElement(group, 0x0017, "AE", identity.calling_ae, ' ');
  PutShortElement(group, 0x0018, "AE", identity.called_ae, ' ');
  PutShortElement(group, 0x0100, "UI", kPrivateInformationCreatorUid, '\0');
  PutObHeader(group, 0x0102, static_cast<std::uint32_t>(kSpoolRecordCapacity));
  const std::size_t record_offset_in_group = group.size();
  group.insert(group.end(), kSpoolRecordCapacity, 0);

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
  header.record_offset = header.bytes.size() + record_offset_in_group;
  header.bytes.insert(header.bytes.end(), group.begin(), group.end());
  return header;
}

}  // namespace conduit::spool
