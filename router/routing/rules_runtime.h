// The rules in force, as an immutable snapshot swapped atomically on reload. A session takes
// the snapshot when a C-STORE begins and the instance is routed with it, whatever reloads
// happen meanwhile. A file that fails validation never replaces working rules.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codecs/result.h"
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

// The outcome of the latest attempt to load the rules, for `conduit status`.
struct RulesLoadReport {
  std::chrono::system_clock::time_point at;
  std::string reason;  // what asked for it: "startup", "SIGHUP", "rules file changed"
  bool ok = true;
  std::size_t errors = 0;
  std::string first_error;  // "file:line:column: message" when refused
};

class RulesRuntime {
 public:
  // Which file was read: editors replace files, so a change is told by identity, not by inode
  // watches.
  struct FileIdentity {
    std::uint64_t inode = 0;
    std::int64_t size = -1;
    std::int64_t modified_ns = 0;
    friend bool operator==(const FileIdentity&, const FileIdentity&) = default;
  };
  // A rules file loaded and checked against a configuration, not yet in force: a SIGHUP checks
  // the rules against the new configuration before either replaces what runs.
  struct Prepared {
    std::filesystem::path file;  // empty: the configuration names no rules file
    rules::RuleContext context;
    std::shared_ptr<const rules::RuleSet> rules;
    FileIdentity identity;
  };

  RulesRuntime(const config::Config& config, metrics::RoutingMetrics& metrics);

  // The first load, at startup: the errors (for a fail-fast exit) or nothing.
  std::vector<rules::Diagnostic> LoadInitial();
  // Loads the file again (it changed). Returns whether the new rules are in force; on failure
  // the old ones stay, the errors are logged and the stale metric is set.
  bool Reload(std::string_view reason);
  // Reloads if the file's identity (inode, size, modification time) changed since the last
  // attempt; cheap enough to call every couple of seconds.
  void ReloadIfChanged();

  // The rules file `config` names, checked against `config`'s destinations and transcode
  // profiles. A refusal is handled as by Reload (logged, stale metric) and returns the errors.
  Result<Prepared, std::vector<rules::Diagnostic>> Prepare(const config::Config& config,
                                                           std::string_view reason);
  // Puts prepared rules in force as the next generation; from now on the file they came from is
  // the one watched.
  void Commit(Prepared prepared, std::string_view reason);

  RulesSnapshot Current() const { return *snapshot_.load(); }
  // Whether rules are in force: loaded at startup, or no rules file is configured.
  bool Loaded() const { return loaded_.load(); }
  std::filesystem::path file() const;
  std::optional<RulesLoadReport> LastLoad() const;

 private:
  FileIdentity Identify(const std::filesystem::path& file) const;
  void Refused(std::string_view reason, const std::filesystem::path& file,
               const std::vector<rules::Diagnostic>& errors);  // reload_mutex_ held
  void Install(std::shared_ptr<const rules::RuleSet> rules, std::string_view reason);  // held

  std::filesystem::path file_;
  rules::RuleContext context_;
  metrics::RoutingMetrics& metrics_;
  // One load at a time (SIGHUP and the file check may race); guards file_, context_,
  // last_seen_ and last_load_.
  mutable std::mutex reload_mutex_;
  FileIdentity last_seen_;
  std::optional<RulesLoadReport> last_load_;
  std::atomic<bool> loaded_{false};
  std::atomic<std::shared_ptr<const RulesSnapshot>> snapshot_;
};

}  // namespace conduit::routing
