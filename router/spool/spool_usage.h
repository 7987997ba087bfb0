// How much the spool holds and how much disk is left, against the configured budget. Read by
// the listener (admission, 0xA700) and by the metrics; updated by writers and a periodic
// statvfs.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>

namespace conduit::spool {

class SpoolUsage {
 public:
  SpoolUsage(std::filesystem::path directory, std::uint64_t max_bytes,
             std::uint64_t min_free_bytes);

  void AddBytes(std::uint64_t bytes) { bytes_ += bytes; }
  void ReleaseBytes(std::uint64_t bytes) { bytes_ -= bytes; }
  void AddInstances(std::uint64_t count) { instances_ += count; }

  // statvfs of the spool's filesystem; cheap, called about once a second and after commits.
  void RefreshFreeSpace();

  // False once spooled bytes reach max_bytes or free disk falls below min_free_bytes.
  bool HasRoom() const;

  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t instances() const { return instances_; }
  std::uint64_t free_bytes() const { return free_bytes_; }
  std::uint64_t max_bytes() const { return max_bytes_; }
  std::uint64_t min_free_bytes() const { return min_free_bytes_; }

 private:
  std::filesystem::path directory_;
  std::uint64_t max_bytes_;
  std::uint64_t min_free_bytes_;
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> instances_{0};
  std::atomic<std::uint64_t> free_bytes_{0};
};

}  // namespace conduit::spool
