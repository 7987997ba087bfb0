#include "router/spool/dir_syncer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace conduit::spool {

DirSyncer::DirSyncer(const std::filesystem::path& directory) {
  directory_fd_ = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_fd_ < 0) {
    throw std::system_error(errno, std::generic_category(), "open " + directory.string());
  }
}

DirSyncer::~DirSyncer() { ::close(directory_fd_); }

std::error_code DirSyncer::Sync() {
  std::unique_lock lock(mutex_);
  const std::uint64_t ticket = ++requested_;
  while (completed_ < ticket) {
    if (syncing_) {
      synced_.wait(lock);
      continue;
    }
    // Become the leader: this fsync covers every ticket handed out so far.
    syncing_ = true;
    const std::uint64_t covered = requested_;
    lock.unlock();
    const int result = ::fsync(directory_fd_);
    const int error = errno;
    lock.lock();
    syncing_ = false;
    last_error_ = result == 0 ? std::error_code() : std::error_code(error, std::generic_category());
    completed_ = covered;
    synced_.notify_all();
  }
  return last_error_;
}

}  // namespace conduit::spool
