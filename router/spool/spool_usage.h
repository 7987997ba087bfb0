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

  // False once spooled bytes reach max_bytes or free disk falls below min_free_bytes, and,
  // after MarkFull(), until usage is back under 90% of max_bytes: without that hysteresis a
  // full spool would take in, and throw away, the start of every instance offered to it.
  bool HasRoom() const;
  // An instance was refused because the spool had no room.
  void MarkFull() { full_ = true; }

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
  mutable std::atomic<bool> full_{false};
};

}  // namespace conduit::spool
