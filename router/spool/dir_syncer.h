// Group commit for directory entries: many threads each need "my rename is durable"; one fsync
// of the directory that starts after a caller's rename covers every rename made before it, so
// concurrent callers share one fsync instead of queueing for one each.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <system_error>

namespace conduit::spool {

class DirSyncer {
 public:
  explicit DirSyncer(const std::filesystem::path& directory);  // throws if it cannot be opened
  ~DirSyncer();
  DirSyncer(const DirSyncer&) = delete;
  DirSyncer& operator=(const DirSyncer&) = delete;

  // Returns once an fsync of the directory that began after this call has completed.
  std::error_code Sync();

 private:
  int directory_fd_ = -1;
  std::mutex mutex_;
  std::condition_variable synced_;
  std::uint64_t requested_ = 0;  // tickets handed out
  std::uint64_t completed_ = 0;  // every ticket up to this one is durable
  bool syncing_ = false;
  std::error_code last_error_;
};

}  // namespace conduit::spool
