#include "router/forward/dataset_preparer.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "codecs/codec_registry.h"
#include "codecs/dataset_io.h"
#include "codecs/transfer_syntax_registry.h"
#include "router/io/posix_file.h"
#include "router/spool/dataset_attributes.h"
#include "router/spool/header_reader.h"
#include "router/spool/part10_header.h"

namespace conduit::forward {
namespace {

bool IsUncompressed(const codecs::TransferSyntax& syntax) { return !syntax.encapsulated; }

bool IsUncompressedLittleEndianTarget(std::string_view uid) {
  return uid == codecs::uid::kExplicitVrLittleEndian || uid == codecs::uid::kImplicitVrLittleEndian;
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

codecs::EncodeOptions OptionsOf(const config::TranscodeProfile* profile) {
  codecs::EncodeOptions options;
  if (profile) {
    options.lossy = profile->lossy;
    options.quality = profile->quality;
    options.compression_ratio = profile->compression_ratio;
    options.near_lossless = profile->near_lossless;
  }
  return options;
}

}  // namespace

bool CanProduce(const std::string& stored_uid, const std::string& target_uid,
                const config::TranscodeProfile* profile) {
  if (stored_uid == target_uid) return true;
  const codecs::TransferSyntax* stored = codecs::FindTransferSyntax(stored_uid);
  const codecs::TransferSyntax* target = codecs::FindTransferSyntax(target_uid);
  if (!stored || !target) return false;
  const bool readable = IsUncompressed(*stored) || codecs::FindFrameCodec(stored_uid);
  if (!readable) return false;
  if (IsUncompressedLittleEndianTarget(target_uid)) return true;
  if (!codecs::FindFrameCodec(target_uid)) return false;
  // JPEG 2000 and HTJ2K code losslessly unless told otherwise; the other lossy syntaxes only
  // ever code lossily, which needs a profile that says so.
  const bool lossy_only = target->lossy && target_uid != "1.2.840.10008.1.2.4.91" &&
                          target_uid != "1.2.840.10008.1.2.4.203";
  return !lossy_only || (profile && profile->lossy);
}

DatasetPreparer::DatasetPreparer(std::filesystem::path spool_directory)
    : directory_(spool_directory / "transcoded"), uid_map_(spool_directory / "lossy-uids.tsv") {
  std::filesystem::create_directories(directory_);
}

std::filesystem::path DatasetPreparer::TranscodedPath(const std::string& spool_id,
                                                      const std::string& destination) const {
  // Both parts are generated ids and configured names: never DICOM values.
  return directory_ / (spool_id + "." + destination + ".dcm");
}

Result<PreparedDataset, std::string> DatasetPreparer::Prepare(
    const QueuedInstance& item, const std::string& destination, const std::string& target_uid,
    const config::TranscodeProfile* profile) const {
  const std::filesystem::path transcoded = TranscodedPath(item.spool_id, destination);
  if (std::filesystem::exists(transcoded)) {
    // Made and made durable by an earlier attempt (perhaps before a restart).
    auto header = spool::InstanceHeader::Read(transcoded);
    auto offset = spool::ReadDatasetOffset(transcoded);
    if (header && offset && header.value()->meta_string(0x0010) == target_uid) {
      PreparedDataset reused;
      reused.transfer_syntax_uid = target_uid;
      reused.sop_instance_uid = header.value()->sop_instance_uid();
      reused.file = transcoded;
      reused.dataset_offset = offset.value();
      reused.dataset_bytes = std::filesystem::file_size(transcoded) - offset.value();
      return reused;
    }
    std::filesystem::remove(transcoded);  // another target since (the route changed)
  }

  auto offset = spool::ReadDatasetOffset(item.file);
  if (!offset) return offset.error();
  auto dataset = codecs::ReadDataset(item.file, offset.value(), item.transfer_syntax_uid);
  if (!dataset) return dataset.error();
  if (!item.route.edits.empty()) {
    spool::EditableDatasetAttributes editable(*dataset.value());
    rules::ApplyEdits(item.route.edits, editable);
  }
  PreparedDataset prepared;
  prepared.transfer_syntax_uid = target_uid;
  prepared.sop_instance_uid = item.sop_instance_uid;
  const codecs::TransferSyntax* stored = codecs::FindTransferSyntax(item.transfer_syntax_uid);
  const codecs::TransferSyntax* target = codecs::FindTransferSyntax(target_uid);
  const bool needs_codec = target_uid != item.transfer_syntax_uid && stored && target &&
                           (stored->encapsulated || target->encapsulated);
  if (needs_codec) {
    auto outcome = codecs::TranscodePixelData(*dataset.value(), item.transfer_syntax_uid,
                                              target_uid, OptionsOf(profile));
    if (!outcome) return outcome.error();
    prepared.sop_instance_uid = outcome->sop_instance_uid;
    prepared.transcode = std::move(outcome.value());
  }
  auto bytes = codecs::WriteDataset(*dataset.value(), target_uid);
  if (!bytes) return bytes.error();
  prepared.bytes = std::move(bytes.value());
  prepared.needs_persisting = needs_codec;
  return prepared;
}

std::optional<std::string> DatasetPreparer::Persist(const QueuedInstance& item,
                                                    const std::string& destination,
                                                    PreparedDataset& prepared) const {
  prepared.needs_persisting = false;
  const std::filesystem::path transcoded = TranscodedPath(item.spool_id, destination);
  const spool::Part10Header header =
      spool::BuildPart10Header({item.sop_class_uid, prepared.sop_instance_uid,
                                prepared.transfer_syntax_uid, "CONDUIT", destination});
  const std::filesystem::path partial = transcoded.string() + ".part";
  const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return Errno("create " + partial.string());
  const bool written = io::WriteAll(fd, header.bytes.data(), header.bytes.size()) &&
                       io::WriteAll(fd, prepared.bytes.data(), prepared.bytes.size()) &&
                       ::fdatasync(fd) == 0;
  const std::string write_error = written ? "" : Errno("write " + partial.string());
  ::close(fd);
  if (!written || ::rename(partial.c_str(), transcoded.c_str()) != 0) {
    std::filesystem::remove(partial);
    return written ? Errno("rename " + partial.string()) : write_error;
  }
  if (prepared.transcode && prepared.transcode->lossy) {
    // PS3.3 C.7.6.1.1.5: a lossy copy is a new instance; keep which original it came from.
    const std::string line = item.sop_instance_uid + "\t" + prepared.sop_instance_uid + "\t" +
                             destination + "\t" + prepared.transfer_syntax_uid + "\n";
    const int map = ::open(uid_map_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (map >= 0) {
      io::WriteAll(map, line.data(), line.size());
      ::fdatasync(map);
      ::close(map);
    }
  }
  prepared.file = transcoded;
  prepared.dataset_offset = header.bytes.size();
  prepared.dataset_bytes = prepared.bytes.size();
  prepared.bytes = {};
  return std::nullopt;
}

void DatasetPreparer::Forget(const std::string& spool_id,
                             const std::vector<std::string>& destinations) const {
  std::error_code ignored;
  for (const std::string& destination : destinations) {
    std::filesystem::remove(TranscodedPath(spool_id, destination), ignored);
  }
}

void DatasetPreparer::RemoveOrphans(
    const std::function<bool(const std::string& spool_id)>& is_spooled) const {
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(directory_, ignored)) {
    const std::string name = entry.path().filename().string();
    const std::string spool_id = name.substr(0, name.find('.'));
    if (!is_spooled(spool_id) || name.ends_with(".part")) {
      std::filesystem::remove(entry.path(), ignored);
    }
  }
}

}  // namespace conduit::forward
