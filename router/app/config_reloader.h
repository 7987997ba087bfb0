// SIGHUP: the configuration file is read again, with the rules file it names, and both are put
// in force together or not at all; a file that fails validation is refused with file:line and
// what runs stays. What a reload changes: the destinations (see
// ForwardingService::Reconfigure), the rules file and log_level. The other settings (listener,
// spool, metrics, admin, transcoding, network_threads, rules.reload_check_seconds) are bound at
// startup: a difference keeps the running value and is logged as needing a restart. Open
// associations are never touched.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/config/config.h"

namespace conduit::forward {
class ForwardingService;
}
namespace conduit::metrics {
class ConfigReloadMetrics;
}
namespace conduit::routing {
class RulesRuntime;
}

namespace conduit::app {

struct ConfigReloadReport {
  std::chrono::system_clock::time_point at;
  bool ok = true;
  std::string summary;                      // one line: what changed, or why it was refused
  std::vector<std::string> restart_needed;  // settings that differ but wait for a restart
};

// The settings of `loaded` that differ from `running` and that only a restart applies, by their
// configuration key ("listener", "spool", ...).
std::vector<std::string> SettingsNeedingRestart(const config::Config& running,
                                                const config::Config& loaded);

// `loaded` with the restart-only settings as `running` has them: what a reload puts in force.
config::Config ReloadableConfig(const config::Config& running, config::Config loaded);

class ConfigReloader {
 public:
  // `file` empty: the daemon runs on the embedded default configuration, and a reload re-reads
  // the rules file only. The services must outlive the reloader.
  ConfigReloader(std::filesystem::path file, std::shared_ptr<const config::Config> running,
                 routing::RulesRuntime& rules, forward::ForwardingService& forwarding,
                 metrics::ConfigReloadMetrics& metrics);

  // One reload at a time (the signal handler's strand); logs what it did, counts it and
  // returns the report.
  ConfigReloadReport Reload(std::string_view reason);

  std::optional<ConfigReloadReport> LastReload() const;
  const std::filesystem::path& file() const { return file_; }

 private:
  ConfigReloadReport Refuse(std::string summary);

  std::filesystem::path file_;
  std::shared_ptr<const config::Config> running_;
  routing::RulesRuntime& rules_;
  forward::ForwardingService& forwarding_;
  metrics::ConfigReloadMetrics& metrics_;
  mutable std::mutex report_mutex_;
  std::optional<ConfigReloadReport> last_;
};

}  // namespace conduit::app
