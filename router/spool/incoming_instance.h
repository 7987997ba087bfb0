// One instance being received: a ".part" file in the spool's incoming directory that the
// dataset's PDV bytes are appended to as they arrive. Destroying it before it is committed
// removes the file, so an aborted association leaves nothing behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>

#include "router/spool/part10_header.h"
#include "router/spool/spool_record.h"

namespace conduit::spool {

class SpoolUsage;

class IncomingInstance {
 public:
  struct Paths {
    std::filesystem::path part;       // where it is written
    std::filesystem::path committed;  // where it goes once durable
  };

  // Takes ownership of `fd`, which already holds the Part 10 header.
  IncomingInstance(int fd, Paths paths, std::size_t record_offset, std::uint64_t header_bytes,
                   SpoolRecord record, std::uint64_t writeback_chunk_bytes, SpoolUsage& usage);
  ~IncomingInstance();
  IncomingInstance(const IncomingInstance&) = delete;
  IncomingInstance& operator=(const IncomingInstance&) = delete;

  // Appends dataset bytes and, every writeback chunk, starts their writeback to disk
  // (sync_file_range) so that the final fdatasync has little left to wait for.
  std::error_code Append(std::span<const std::uint8_t> data);

  int fd() const { return fd_; }
  const Paths& paths() const { return paths_; }
  std::size_t record_offset() const { return record_offset_; }
  SpoolRecord& record() { return record_; }
  std::uint64_t dataset_bytes() const { return record_.dataset_bytes; }
  std::uint64_t file_bytes() const { return header_bytes_ + record_.dataset_bytes; }

  // The file now lives at paths().committed and belongs to the spool: keep it on destruction.
  void MarkCommitted() { committed_ = true; }

 private:
  int fd_;
  Paths paths_;
  std::size_t record_offset_;
  std::uint64_t header_bytes_;
  SpoolRecord record_;
  std::uint64_t writeback_chunk_bytes_;
  std::uint64_t writeback_started_up_to_ = 0;
  SpoolUsage& usage_;
  bool committed_ = false;
};

}  // namespace conduit::spool
