// The floor under one association's ingest rate: the fastest a single writer can make N new
// files durable the way the spool must (write, start writeback as it goes, fdatasync, rename
// into the committed directory, fsync that directory), with no network and no DICOM at all.
// A sender that waits for each C-STORE response (storescu does) cannot be served faster than
// this, whatever the router does; ingest_bench.sh prints it next to the measured rates.
//
// Usage: conduit_durable_write_floor DIRECTORY [FILES] [BYTES]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DIRECTORY [FILES] [BYTES]\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  const int files = argc > 2 ? std::atoi(argv[2]) : 300;
  const std::size_t bytes = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 525864;
  const auto incoming = root / "incoming";
  const auto committed = root / "instances";
  std::filesystem::create_directories(incoming);
  std::filesystem::create_directories(committed);
  const int directory_fd = ::open(committed.c_str(), O_RDONLY | O_DIRECTORY);
  constexpr std::size_t kChunk = 131072;      // one P-DATA-TF worth of data
  constexpr std::size_t kWriteback = 262144;  // spool.writeback_chunk_bytes default
  std::vector<char> chunk(kChunk, 'x');

  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < files; ++i) {
    const auto part = incoming / (std::to_string(i) + ".part");
    const auto done = committed / (std::to_string(i) + ".dcm");
    const int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0640);
    if (fd < 0) return 1;
    std::size_t written = 0;
    std::size_t writeback_from = 0;
    while (written < bytes) {
      const std::size_t n = std::min(kChunk, bytes - written);
      if (::write(fd, chunk.data(), n) != static_cast<ssize_t>(n)) return 1;
      written += n;
      if (written - writeback_from >= kWriteback) {
        ::sync_file_range(fd, static_cast<off_t>(writeback_from),
                          static_cast<off_t>(written - writeback_from), SYNC_FILE_RANGE_WRITE);
        writeback_from = written;
      }
    }
    if (::fdatasync(fd) != 0 || ::rename(part.c_str(), done.c_str()) != 0 ||
        ::fsync(directory_fd) != 0) {
      return 1;
    }
    ::close(fd);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%.1f\n", files / seconds);
  ::close(directory_fd);
  std::filesystem::remove_all(root);
  return 0;
}
