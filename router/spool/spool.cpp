#include "router/spool/spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <system_error>

#include "router/io/posix_file.h"

namespace conduit::spool {
namespace {

constexpr const char* kPartExtension = ".part";
constexpr const char* kCommittedExtension = ".dcm";

std::filesystem::path CreateDirectory(const std::filesystem::path& path) {
  std::filesystem::create_directories(path);  // throws with the path in the message
  return path;
}

}  // namespace

Spool::Spool(const config::SpoolConfig& config)
    : config_(config),
      incoming_directory_(CreateDirectory(config.directory / "incoming")),
      committed_directory_(CreateDirectory(config.directory / "instances")),
      usage_(config.directory, config.max_bytes, config.min_free_bytes, config.max_instances),
      id_counter_seed_(static_cast<std::uint64_t>(::getpid())) {}

RecoverySummary Spool::Recover() {
  RecoverySummary summary;
  for (const auto& entry : std::filesystem::directory_iterator(incoming_directory_)) {
    // Nothing in incoming/ was ever acknowledged: the sender still owns it and will resend.
    if (entry.is_regular_file()) {
      std::filesystem::remove(entry.path());
      ++summary.removed_partial_files;
    }
  }
  for (const auto& entry : std::filesystem::directory_iterator(committed_directory_)) {
    if (!entry.is_regular_file() || entry.path().extension() != kCommittedExtension) continue;
    ++summary.committed_instances;
    summary.committed_bytes += entry.file_size();
  }
  usage_.AddBytes(summary.committed_bytes);
  usage_.AddCommitted(summary.committed_instances, summary.committed_bytes);
  usage_.RefreshFreeSpace();
  return summary;
}

std::string Spool::NextSpoolId() {
  // Microseconds since the epoch, then a process-wide counter: unique, sortable by arrival.
  static std::atomic<std::uint32_t> counter{0};
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  char id[40];
  std::snprintf(id, sizeof id, "%014llx-%08x", static_cast<unsigned long long>(micros),
                static_cast<unsigned>(counter.fetch_add(1) + id_counter_seed_));
  return id;
}

Result<std::unique_ptr<IncomingInstance>, std::string> Spool::Begin(
    const Part10Identity& identity, const rules::AssociationFacts& facts,
    std::uint64_t association_id) {
  const Part10Header header = BuildPart10Header(identity);
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::string id = NextSpoolId();
    IncomingInstance::Paths paths{incoming_directory_ / (id + kPartExtension),
                                  committed_directory_ / (id + kCommittedExtension)};
    const int fd = ::open(paths.part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return std::string("create ") + paths.part.string() + ": " + std::strerror(errno);
    }
    SpoolRecord record;
    record.spool_id = id;
    record.association_id = association_id;
    record.facts = facts;
    record.sop_class_uid = identity.sop_class_uid;
    record.sop_instance_uid = identity.sop_instance_uid;
    record.transfer_syntax_uid = identity.transfer_syntax_uid;
    // Constructed before the header write so that a failure below still removes the file.
    auto instance = std::make_unique<IncomingInstance>(fd, std::move(paths), header.record_offset,
                                                       header.bytes.size(), std::move(record),
                                                       config_.writeback_chunk_bytes, usage_);
    if (!io::WriteAll(fd, header.bytes.data(), header.bytes.size())) {
      return std::string("write Part 10 header: ") + std::strerror(errno);
    }
    return instance;
  }
  return std::string("could not find a free spool file name");
}

}  // namespace conduit::spool
