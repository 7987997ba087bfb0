#include "router/spool/incoming_instance.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "router/spool/spool_usage.h"

namespace conduit::spool {

IncomingInstance::IncomingInstance(int fd, Paths paths, std::size_t record_offset,
                                   std::uint64_t header_bytes, SpoolRecord record,
                                   std::uint64_t writeback_chunk_bytes, SpoolUsage& usage)
    : fd_(fd),
      paths_(std::move(paths)),
      record_offset_(record_offset),
      header_bytes_(header_bytes),
      record_(std::move(record)),
      writeback_chunk_bytes_(writeback_chunk_bytes),
      usage_(usage) {
  usage_.AddBytes(header_bytes_);
}

IncomingInstance::~IncomingInstance() {
  ::close(fd_);
  if (!committed_) {
    ::unlink(paths_.part.c_str());
    usage_.ReleaseBytes(file_bytes());
  }
}

std::error_code IncomingInstance::Append(std::span<const std::uint8_t> data) {
  while (!data.empty()) {
    const ssize_t written = ::write(fd_, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return {errno, std::generic_category()};
    }
    data = data.subspan(static_cast<std::size_t>(written));
    record_.dataset_bytes += static_cast<std::uint64_t>(written);
    usage_.AddBytes(static_cast<std::uint64_t>(written));
  }
  const std::uint64_t end = file_bytes();
  if (end - writeback_started_up_to_ >= writeback_chunk_bytes_) {
    // Asynchronous: queues the dirty pages for writeback and returns.
    ::sync_file_range(fd_, static_cast<off_t>(writeback_started_up_to_),
                      static_cast<off_t>(end - writeback_started_up_to_), SYNC_FILE_RANGE_WRITE);
    writeback_started_up_to_ = end;
  }
  return {};
}

}  // namespace conduit::spool
