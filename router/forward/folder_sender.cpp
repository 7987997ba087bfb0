#include "router/forward/folder_sender.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <random>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include "router/io/posix_file.h"

namespace conduit::forward {
namespace {

constexpr std::size_t kCopyChunkBytes = 1 << 20;

std::string ErrnoText(const std::string& what, int error) {
  return what + ": " + std::strerror(error);
}

// Appends a body piece to `fd`; an error text on failure.
std::optional<std::string> CopyPiece(int fd, const http::BodyPiece& piece) {
  if (const auto* text = std::get_if<std::string>(&piece)) {
    if (!io::WriteAll(fd, text->data(), text->size())) {
      return ErrnoText("write", errno);
    }
    return std::nullopt;
  }
  if (const auto* bytes = std::get_if<std::span<const std::uint8_t>>(&piece)) {
    if (!io::WriteAll(fd, bytes->data(), bytes->size())) return ErrnoText("write", errno);
    return std::nullopt;
  }
  const auto& slice = std::get<http::FileSlice>(piece);
  const io::FileDescriptor source(::open(slice.file.c_str(), O_RDONLY | O_CLOEXEC));
  if (source.get() < 0) return ErrnoText("open " + slice.file.string(), errno);
  std::vector<std::uint8_t> buffer(std::min<std::uint64_t>(kCopyChunkBytes, slice.length));
  std::uint64_t done = 0;
  while (done < slice.length) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), slice.length - done));
    const ssize_t got =
        ::pread(source.get(), buffer.data(), want, static_cast<off_t>(slice.offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return got < 0 ? ErrnoText("read " + slice.file.string(), errno)
                     : slice.file.string() + " is shorter than expected";
    }
    if (!io::WriteAll(fd, buffer.data(), static_cast<std::size_t>(got))) {
      return ErrnoText("write", errno);
    }
    done += static_cast<std::uint64_t>(got);
  }
  return std::nullopt;
}

bool SyncDirectory(const std::filesystem::path& directory) {
  const io::FileDescriptor fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.get() >= 0 && ::fsync(fd.get()) == 0;
}

// Space can be freed and a mount can come back; a permission or a name problem stays.
bool IsPassingError(int error) {
  return error == ENOSPC || error == EDQUOT || error == EIO || error == EAGAIN || error == EINTR ||
         error == ENOENT || error == ESTALE || error == ETIMEDOUT;
}

}  // namespace

FolderSender::FolderSender(std::filesystem::path directory, KeyTemplate key_template)
    : directory_(std::move(directory)), key_template_(std::move(key_template)) {}

std::optional<std::string> FolderSender::Probe() {
  if (::access(directory_.c_str(), W_OK | X_OK) != 0) {
    return ErrnoText("folder " + directory_.string(), errno);
  }
  return std::nullopt;
}

ArchiveDelivery FolderSender::Deliver(const std::vector<ArchiveObject>& objects) {
  ArchiveDelivery delivery;
  // The folder itself missing (an unmounted share) is the destination being down, not a fault
  // of the instances: they wait, and the breaker probes.
  if (auto problem = Probe()) {
    delivery = ArchiveDelivery::AllSame(objects.size(), ArchiveResult::kNotAttempted, *problem);
    delivery.destination_failure = *problem;
    return delivery;
  }
  for (const ArchiveObject& object : objects) {
    const std::string key = ObjectKeyFor(key_template_, *object.item, object.sop_instance_uid);
    errno = 0;
    if (const std::optional<std::string> error = Write(object, key)) {
      const bool passing = IsPassingError(errno);
      delivery.objects.push_back({passing ? ArchiveResult::kTransient : ArchiveResult::kPermanent,
                                  "writing " + key + ": " + *error});
    } else {
      delivery.objects.push_back({ArchiveResult::kDelivered, {}});
    }
  }
  return delivery;
}

std::optional<std::string> FolderSender::Write(const ArchiveObject& object,
                                               const std::string& key) const {
  const std::filesystem::path target = directory_ / key;
  const std::filesystem::path parent = target.parent_path();
  std::error_code error;
  // Directories made here are flushed into their parents too, up to the destination's folder.
  std::vector<std::filesystem::path> created;
  for (std::filesystem::path level = parent;
       level != directory_ && !level.empty() && !std::filesystem::exists(level, error);
       level = level.parent_path()) {
    created.push_back(level);
  }
  std::filesystem::create_directories(parent, error);
  if (error) {
    errno = error.value();
    return "create " + parent.string() + ": " + error.message();
  }
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const std::filesystem::path temporary =
      parent / ("." + target.filename().string() + ".tmp-" + std::to_string(random()));
  {
    const io::FileDescriptor fd(
        ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
    if (fd.get() < 0) return ErrnoText("create " + temporary.string(), errno);
    for (const http::BodyPiece& piece : object.part10) {
      if (auto problem = CopyPiece(fd.get(), piece)) {
        const int saved = errno;
        ::unlink(temporary.c_str());
        errno = saved;
        return problem;
      }
    }
    if (::fdatasync(fd.get()) != 0) {
      const int saved = errno;
      ::unlink(temporary.c_str());
      errno = saved;
      return ErrnoText("fdatasync", saved);
    }
  }
  if (::rename(temporary.c_str(), target.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    errno = saved;
    return ErrnoText("rename to " + target.string(), saved);
  }
  if (!SyncDirectory(parent)) return ErrnoText("fsync " + parent.string(), errno);
  for (const std::filesystem::path& level : created) {
    if (!SyncDirectory(level.parent_path())) {
      return ErrnoText("fsync " + level.parent_path().string(), errno);
    }
  }
  return std::nullopt;
}

}  // namespace conduit::forward
