#include "router/forward/delivery_journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "router/io/posix_file.h"

namespace conduit::forward {
namespace {

constexpr std::size_t kMaxReasonLength = 400;

std::string OneLine(std::string_view reason) {
  std::string line(reason.substr(0, kMaxReasonLength));
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  return line;
}

std::string FormatLine(JournalMark mark, std::string_view spool_id, std::string_view reason) {
  std::string line;
  line.reserve(spool_id.size() + reason.size() + 4);
  line += static_cast<char>(mark);
  line += ' ';
  line += spool_id;
  if (!reason.empty()) {
    line += ' ';
    line += OneLine(reason);
  }
  line += '\n';
  return line;
}

std::error_code LastError() { return {errno, std::generic_category()}; }

// Applies one line; lines that do not parse (a torn last line after a crash) are skipped.
void Replay(std::string_view line, std::unordered_map<std::string, JournalState>& states) {
  if (line.size() < 3 || line[1] != ' ') return;
  const std::string_view rest = line.substr(2);
  const std::size_t space = rest.find(' ');
  const std::string id(rest.substr(0, space));
  const std::string_view reason =
      space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
  JournalState& state = states[id];
  switch (static_cast<JournalMark>(line[0])) {
    case JournalMark::kAttempt:
      state.attempted = true;
      break;
    case JournalMark::kDelivered:
      state.delivered = true;
      break;
    case JournalMark::kDeadLettered:
      state.dead_lettered = true;
      state.reason = std::string(reason);
      break;
    case JournalMark::kRetried:
      state.dead_lettered = false;
      state.reason.clear();
      break;
    case JournalMark::kPurged:
      state.purged = true;
      break;
    default:
      states.erase(id);
      break;
  }
}

}  // namespace

Result<std::unique_ptr<DeliveryJournal>, std::string> DeliveryJournal::Open(
    std::filesystem::path path) {
  std::unordered_map<std::string, JournalState> states;
  {
    std::ifstream existing(path);
    std::string line;
    while (std::getline(existing, line)) {
      // A line without its newline was cut short by a crash; getline cannot tell, but a
      // torn line at worst loses one mark, which only causes a re-send.
      Replay(line, states);
    }
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    return "open " + path.string() + ": " + std::strerror(errno);
  }
  auto journal = std::unique_ptr<DeliveryJournal>(new DeliveryJournal(std::move(path), fd));
  journal->recovered_ = std::move(states);
  return journal;
}

DeliveryJournal::DeliveryJournal(std::filesystem::path path, int fd)
    : path_(std::move(path)), fd_(fd) {}

DeliveryJournal::~DeliveryJournal() {
  Sync();
  ::close(fd_);
}

std::error_code DeliveryJournal::Compact(
    const std::function<bool(const std::string& spool_id)>& keep) {
  std::string contents;
  for (const auto& [id, state] : recovered_) {
    if (!keep(id)) continue;
    if (state.attempted) contents += FormatLine(JournalMark::kAttempt, id, {});
    if (state.delivered) contents += FormatLine(JournalMark::kDelivered, id, {});
    if (state.purged) contents += FormatLine(JournalMark::kPurged, id, {});
    if (state.dead_lettered) contents += FormatLine(JournalMark::kDeadLettered, id, state.reason);
  }
  recovered_.clear();
  const std::filesystem::path temporary = path_.string() + ".compact";
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return LastError();
  if (!io::WriteAll(fd, contents.data(), contents.size()) || ::fdatasync(fd) != 0) {
    const std::error_code error = LastError();
    ::close(fd);
    return error;
  }
  ::close(fd);
  std::lock_guard lock(mutex_);
  if (::rename(temporary.c_str(), path_.c_str()) != 0) return LastError();
  const int reopened = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (reopened < 0) return LastError();
  ::close(fd_);
  fd_ = reopened;
  dirty_ = false;
  return {};
}

std::error_code DeliveryJournal::Clear() {
  std::lock_guard lock(mutex_);
  if (::ftruncate(fd_, 0) != 0) return LastError();
  dirty_ = true;
  return {};
}

void DeliveryJournal::Append(JournalMark mark, std::string_view spool_id, std::string_view reason) {
  const std::string line = FormatLine(mark, spool_id, reason);
  std::lock_guard lock(mutex_);
  // O_APPEND and one write per line: concurrent lanes never interleave within a line. A failed
  // write (disk full) loses the mark, which at worst causes a re-send; it is not worth stopping
  // deliveries for.
  io::WriteAll(fd_, line.data(), line.size());
  dirty_ = true;
}

std::error_code DeliveryJournal::Sync() {
  int fd = -1;
  {
    std::lock_guard lock(mutex_);
    if (!dirty_) return {};
    dirty_ = false;
    fd = ::dup(fd_);
  }
  if (fd < 0) return LastError();
  const std::error_code error = ::fdatasync(fd) == 0 ? std::error_code{} : LastError();
  ::close(fd);
  return error;
}

}  // namespace conduit::forward
