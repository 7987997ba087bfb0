// One destination's delivery log, in the spool: <spool>/queues/<destination>.journal. Which
// instances a destination still owes is the spool records' routes minus what this log says
// was settled, so queue membership needs no write on the ingest path.
//
// Each line is "<mark> <spool id>[ <reason>]". Marks are written with write(2) as they happen,
// so they survive a crash of the process (the page cache keeps them); Sync() makes them
// survive a power loss too, and runs about once a second. Losing a delivered mark only means
// that instance is sent again (at-least-once); the attempt mark, written before each send, is
// how a re-send after a crash is recognised and counted as a possible duplicate.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "codecs/result.h"

namespace conduit::forward {

enum class JournalMark : char {
  kAttempt = 'S',       // about to be sent
  kDelivered = 'D',     // the destination confirmed it
  kDeadLettered = 'F',  // given up on, with the reason
  kRetried = 'R',       // an operator sent it back from the dead-letter queue
  kPurged = 'P',        // an operator removed it: never to be sent here
};

// What the log says about one instance, replayed in order.
struct JournalState {
  bool attempted = false;
  bool delivered = false;
  bool dead_lettered = false;
  bool purged = false;
  std::string reason;  // why it was dead-lettered
};

class DeliveryJournal {
 public:
  // Opens (creating) the log and replays it. An error text when it cannot be read or created.
  static Result<std::unique_ptr<DeliveryJournal>, std::string> Open(std::filesystem::path path);
  ~DeliveryJournal();
  DeliveryJournal(const DeliveryJournal&) = delete;
  DeliveryJournal& operator=(const DeliveryJournal&) = delete;

  const std::unordered_map<std::string, JournalState>& recovered() const { return recovered_; }
  // Rewrites the log with the replayed states of the instances `keep` accepts (those still in
  // the spool), atomically, and forgets the replayed states. Run once after recovery.
  std::error_code Compact(const std::function<bool(const std::string& spool_id)>& keep);
  // Truncates the log when it holds only settled history (the destination owes nothing).
  std::error_code Clear();

  // Appends one line; thread-safe. Reasons are reduced to one printable line.
  void Append(JournalMark mark, std::string_view spool_id, std::string_view reason = {});
  // fdatasync if anything was appended since the last one.
  std::error_code Sync();

  const std::filesystem::path& path() const { return path_; }

 private:
  DeliveryJournal(std::filesystem::path path, int fd);

  std::filesystem::path path_;
  std::mutex mutex_;
  int fd_;
  bool dirty_ = false;
  std::unordered_map<std::string, JournalState> recovered_;
};

}  // namespace conduit::forward
