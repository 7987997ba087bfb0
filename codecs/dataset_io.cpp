#include "codecs/dataset_io.h"

#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcistrmf.h>
#include <dcmtk/dcmdata/dcostrmb.h>

#include <limits>

#include "codecs/dcmtk_transfer_syntax.h"
#include "codecs/transfer_syntax_registry.h"

namespace conduit::codecs {
namespace {

constexpr std::size_t kWriteChunkBytes = 256 * 1024;

}  // namespace

E_TransferSyntax DcmtkTransferSyntax(std::string_view uid) {
  const TransferSyntax* syntax = FindTransferSyntax(uid);
  if (!syntax) return EXS_Unknown;
  const E_TransferSyntax known = DcmXfer(std::string(uid).c_str()).getXfer();
  if (known != EXS_Unknown) return known;
  // Encapsulated Explicit VR Little Endian syntaxes share their encoding rules.
  if (syntax->encapsulated && syntax->explicit_vr &&
      syntax->byte_order == ByteOrder::kLittleEndian && !syntax->deflated) {
    return EXS_JPEG2000LosslessOnly;
  }
  return EXS_Unknown;
}

Result<std::unique_ptr<DcmDataset>, std::string> ReadDataset(const std::filesystem::path& file,
                                                             std::uint64_t offset,
                                                             std::string_view transfer_syntax_uid) {
  const E_TransferSyntax xfer = DcmtkTransferSyntax(transfer_syntax_uid);
  if (xfer == EXS_Unknown) {
    return "transfer syntax " + std::string(transfer_syntax_uid) + " is not supported";
  }
  DcmInputFileStream stream(file.c_str(), static_cast<offile_off_t>(offset));
  if (stream.status().bad()) {
    return "open " + file.string() + ": " + std::string(stream.status().text());
  }
  auto dataset = std::make_unique<DcmDataset>();
  dataset->transferInit();
  // Every value is loaded now (no "read on demand" from the file later): the dataset outlives
  // neither the file nor its offset's meaning.
  const OFCondition read =
      dataset->read(stream, xfer, EGL_noChange, std::numeric_limits<Uint32>::max());
  dataset->transferEnd();
  if (read.bad()) return "read " + file.string() + ": " + std::string(read.text());
  return dataset;
}

Result<std::vector<std::uint8_t>, std::string> WriteDataset(DcmDataset& dataset,
                                                            std::string_view transfer_syntax_uid) {
  const E_TransferSyntax xfer = DcmtkTransferSyntax(transfer_syntax_uid);
  if (xfer == EXS_Unknown) {
    return "transfer syntax " + std::string(transfer_syntax_uid) + " is not supported";
  }
  if (!dataset.canWriteXfer(xfer)) {
    return "the dataset's pixel data is not in " + std::string(transfer_syntax_uid);
  }
  std::vector<std::uint8_t> encoded;
  std::vector<std::uint8_t> chunk(kWriteChunkBytes);
  DcmOutputBufferStream stream(chunk.data(), chunk.size());
  dataset.transferInit();
  OFCondition written;
  do {
    written = dataset.write(stream, xfer, EET_ExplicitLength, nullptr);
    void* data = nullptr;
    offile_off_t length = 0;
    stream.flushBuffer(data, length);
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    encoded.insert(encoded.end(), bytes, bytes + length);
  } while (written == EC_StreamNotifyClient);
  dataset.transferEnd();
  if (written.bad()) {
    return "encode in " + std::string(transfer_syntax_uid) + ": " + std::string(written.text());
  }
  return encoded;
}

}  // namespace conduit::codecs
