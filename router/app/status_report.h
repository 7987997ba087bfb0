// `conduit status`: what the daemon is doing, gathered in one place and written as text for the
// operator (the daemon formats it; the CLI prints it).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "router/app/config_reloader.h"
#include "router/forward/forwarding_service.h"
#include "router/routing/rules_runtime.h"

namespace conduit::app {

struct DaemonStatus {
  std::chrono::system_clock::time_point now;
  std::chrono::seconds uptime{0};
  std::optional<std::string> not_ready;  // Readiness::NotReadyReason
  std::optional<std::string> stuck;      // ServiceWatchdog::Problem

  std::string listener_address;  // "address:port"
  std::string ae_title;
  std::uint32_t associations_active = 0;
  std::uint32_t max_associations = 0;

  std::filesystem::path config_file;  // empty: the embedded default configuration
  std::optional<ConfigReloadReport> last_config_reload;

  std::filesystem::path rules_file;  // empty: no rules file configured
  std::uint64_t rules_generation = 0;
  std::optional<routing::RulesLoadReport> last_rules_load;

  std::uint64_t spool_instances = 0;
  std::uint64_t spool_max_instances = 0;
  std::uint64_t spool_bytes = 0;
  std::uint64_t spool_max_bytes = 0;
  std::uint64_t disk_free_bytes = 0;
  std::uint64_t disk_min_free_bytes = 0;
  bool spool_accepting = true;  // false: instances are answered 0xA700

  std::vector<forward::DestinationSummary> destinations;

  unsigned transcode_workers = 0;
  unsigned transcode_busy = 0;
  unsigned transcode_waiting = 0;
};

std::string FormatDaemonStatus(const DaemonStatus& status);

}  // namespace conduit::app
