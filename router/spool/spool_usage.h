// How much the spool holds and how much disk is left, against the configured budget. Read by
// the listener (admission, 0xA700) and by the metrics; updated by writers and a periodic
// statvfs.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <mutex>

namespace conduit::spool {

class SpoolUsage {
 public:
  SpoolUsage(std::filesystem::path directory, std::uint64_t max_bytes, std::uint64_t min_free_bytes,
             std::uint64_t max_instances = std::numeric_limits<std::uint64_t>::max());

  // Bytes being received count against the budget as they arrive.
  void AddBytes(std::uint64_t bytes) { bytes_ += bytes; }
  void ReleaseBytes(std::uint64_t bytes) { bytes_ -= bytes; }
  // Committed instances (their bytes are already counted by AddBytes).
  void AddCommitted(std::uint64_t instances, std::uint64_t bytes) {
    instances_ += instances;
    committed_bytes_ += bytes;
  }

  // A committed instance left the spool (every destination has it).
  void RemoveCommitted(std::uint64_t bytes) {
    bytes_ -= bytes;
    instances_ -= 1;
    committed_bytes_ -= bytes;
  }

  // statvfs of the spool's filesystem; cheap, called about once a second and after commits.
  void RefreshFreeSpace();

  // False once spooled bytes (committed and arriving) reach max_bytes, committed instances reach
  // max_instances, or free disk falls below min_free_bytes. After MarkFull() also false until
  // committed instances worth a tenth of max_bytes, or a tenth of max_instances, have left the
  // spool: without that, a full spool would take in, and throw away, the start of every
  // instance offered to it.
  bool HasRoom() const;
  // An instance was refused because the spool had no room.
  void MarkFull();

  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t instances() const { return instances_; }
  std::uint64_t free_bytes() const { return free_bytes_; }
  std::uint64_t max_bytes() const { return max_bytes_; }
  std::uint64_t min_free_bytes() const { return min_free_bytes_; }
  std::uint64_t max_instances() const { return max_instances_; }

 private:
  std::filesystem::path directory_;
  std::uint64_t max_bytes_;
  std::uint64_t min_free_bytes_;
  std::uint64_t max_instances_;
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> instances_{0};
  std::atomic<std::uint64_t> committed_bytes_{0};
  std::atomic<std::uint64_t> free_bytes_{0};
  mutable std::mutex full_mutex_;
  mutable bool full_ = false;
  std::uint64_t committed_bytes_when_full_ = 0;
  std::uint64_t instances_when_full_ = 0;
};

}  // namespace conduit::spool
