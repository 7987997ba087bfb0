// One spooled instance as one destination's queue sees it: what sending it needs (from the spool
// record) and how its delivery to this destination is going.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "rules/rule_set.h"

namespace conduit::forward {

using Clock = std::chrono::system_clock;  // ages and retry times survive restarts as wall time

struct QueuedInstance {
  std::string spool_id;
  std::filesystem::path file;  // the committed Part 10 file in the spool
  std::uint64_t file_bytes = 0;
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string transfer_syntax_uid;  // as stored
  std::string study_instance_uid;
  std::string series_instance_uid;
  Clock::time_point received_at;
  rules::Route route;  // this destination's route: edits, level, quiet period, priority

  std::uint32_t failures = 0;  // failed attempts so far
  std::string last_error;
  // The attempt mark was found at startup without a delivered mark: an earlier run may have
  // delivered it, so sending it again may make a duplicate (counted, not hidden).
  bool maybe_delivered_before = false;
  std::string dead_letter_reason;
};

using QueuedInstancePtr = std::shared_ptr<QueuedInstance>;

}  // namespace conduit::forward
