// The rules in force, as an immutable snapshot swapped atomically on reload. A session takes
// the snapshot when a C-STORE begins and the instance is routed with it, whatever reloads
// happen meanwhile. A file that fails validation never replaces working rules.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "router/config/config.h"
#include "rules/rule_set.h"

namespace conduit::metrics {
class RoutingMetrics;
}

namespace conduit::routing {

struct RulesSnapshot {
  std::shared_ptr<const rules::RuleSet> rules;  // null: no rules file configured
  std::uint64_t generation = 0;
};

// What the rules may name, from the configuration.
rules::RuleContext MakeRuleContext(const config::Config& config);

class RulesRuntime {
 public:
  RulesRuntime(const config::Config& config, metrics::RoutingMetrics& metrics);

  // The first load, at startup: the errors (for a fail-fast exit) or nothing.
  std::vector<rules::Diagnostic> LoadInitial();
  // Loads the file again (SIGHUP, or it changed). Returns whether the new rules are in force;
  // on failure the old ones stay, the errors are logged and the stale metric is set.
  bool Reload(std::string_view reason);
  // Reloads if the file's identity (inode, size, modification time) changed since the last
  // attempt; cheap enough to call every couple of seconds.
  void ReloadIfChanged();

  RulesSnapshot Current() const { return *snapshot_.load(); }

 private:
  struct FileIdentity {
    std::uint64_t inode = 0;
    std::int64_t size = -1;
    std::int64_t modified_ns = 0;
    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
  };
  FileIdentity Identify() const;
  rules::RuleSetResult Load();

  std::filesystem::path file_;
  rules::RuleContext context_;
  metrics::RoutingMetrics& metrics_;
  std::mutex reload_mutex_;  // one reload at a time (SIGHUP and the file check may race)
  FileIdentity last_seen_;
  std::atomic<std::shared_ptr<const RulesSnapshot>> snapshot_;
};

}  // namespace conduit::routing
