#include "router/forward/dataset_encoder.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcostrmb.h>
#include <dcmtk/dcmdata/dcxfer.h>

#include "router/spool/dataset_attributes.h"

namespace conduit::forward {
namespace {

constexpr const char* kImplicitLittleEndian = "1.2.840.10008.1.2";
constexpr const char* kExplicitLittleEndian = "1.2.840.10008.1.2.1";
constexpr std::size_t kWriteChunkBytes = 256 * 1024;

bool IsUncompressedLittleEndian(const std::string& uid) {
  return uid == kImplicitLittleEndian || uid == kExplicitLittleEndian;
}

}  // namespace

bool CanEncode(const std::string& stored_uid, const std::string& target_uid) {
  if (stored_uid == target_uid) return true;
  return IsUncompressedLittleEndian(target_uid) &&
         (IsUncompressedLittleEndian(stored_uid) || stored_uid == "1.2.840.10008.1.2.2");
}

Result<std::vector<std::uint8_t>, std::string> EncodeDataset(
    const std::filesystem::path& file, const std::string& target_uid,
    const std::vector<rules::TagEdit>& edits) {
  DcmFileFormat format;
  if (const OFCondition loaded = format.loadFile(file.c_str()); loaded.bad()) {
    return "read " + file.string() + ": " + loaded.text();
  }
  DcmDataset& dataset = *format.getDataset();
  if (!edits.empty()) {
    spool::EditableDatasetAttributes editable(dataset);
    rules::ApplyEdits(edits, editable);
  }
  const E_TransferSyntax target = DcmXfer(target_uid.c_str()).getXfer();
  if (target == EXS_Unknown) return "unknown transfer syntax " + target_uid;
  if (!dataset.canWriteXfer(target)) {
    return "cannot write the dataset in " + target_uid;
  }
  std::vector<std::uint8_t> encoded;
  std::vector<std::uint8_t> chunk(kWriteChunkBytes);
  DcmOutputBufferStream stream(chunk.data(), chunk.size());
  dataset.transferInit();
  OFCondition written;
  do {
    written = dataset.write(stream, target, EET_ExplicitLength, nullptr);
    void* data = nullptr;
    offile_off_t length = 0;
    stream.flushBuffer(data, length);
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    encoded.insert(encoded.end(), bytes, bytes + length);
  } while (written == EC_StreamNotifyClient);
  dataset.transferEnd();
  if (written.bad()) return "encode in " + target_uid + ": " + written.text();
  return encoded;
}

}  // namespace conduit::forward
