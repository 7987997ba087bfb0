#include "router/spool/spool_usage.h"

#include <sys/statvfs.h>

namespace conduit::spool {

SpoolUsage::SpoolUsage(std::filesystem::path directory, std::uint64_t max_bytes,
                       std::uint64_t min_free_bytes, std::uint64_t max_instances)
    : directory_(std::move(directory)),
      max_bytes_(max_bytes),
      min_free_bytes_(min_free_bytes),
      max_instances_(max_instances) {
  RefreshFreeSpace();
}

void SpoolUsage::RefreshFreeSpace() {
  struct statvfs stats {};
  if (::statvfs(directory_.c_str(), &stats) == 0) {
    // f_bavail: what an unprivileged writer may still use, the figure that matters to us.
    free_bytes_ = static_cast<std::uint64_t>(stats.f_bavail) * stats.f_frsize;
  }
}

void SpoolUsage::MarkFull() {
  std::lock_guard lock(full_mutex_);
  full_ = true;
  committed_bytes_when_full_ = committed_bytes_.load();
  instances_when_full_ = instances_.load();
}

bool SpoolUsage::HasRoom() const {
  if (bytes_.load() >= max_bytes_ || instances_.load() >= max_instances_ ||
      free_bytes_.load() < min_free_bytes_) {
    return false;
  }
  std::lock_guard lock(full_mutex_);
  if (full_) {
    const bool bytes_left = committed_bytes_.load() + max_bytes_ / 10 <= committed_bytes_when_full_;
    const bool instances_left = instances_.load() + max_instances_ / 10 <= instances_when_full_;
    if (!bytes_left && !instances_left) return false;
    full_ = false;
  }
  return true;
}

}  // namespace conduit::spool
