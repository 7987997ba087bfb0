#include "router/app/status_report.h"

#include <cstdio>
#include <sstream>

namespace conduit::app {
namespace {

std::string FormatDuration(std::chrono::seconds duration) {
  long long seconds = duration.count();
  if (seconds < 0) seconds = 0;
  char text[32];
  if (seconds < 120) {
    std::snprintf(text, sizeof text, "%llds", seconds);
  } else if (seconds < 7200) {
    std::snprintf(text, sizeof text, "%lldm", seconds / 60);
  } else if (seconds < 172800) {
    std::snprintf(text, sizeof text, "%lldh", seconds / 3600);
  } else {
    std::snprintf(text, sizeof text, "%lldd", seconds / 86400);
  }
  return text;
}

std::string Ago(std::chrono::system_clock::time_point now,
                std::chrono::system_clock::time_point at) {
  return FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(now - at)) + " ago";
}

std::string FormatBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  }
  return text;
}

void WriteRules(std::ostream& out, const DaemonStatus& status) {
  out << "rules: ";
  if (status.rules_file.empty()) {
    out << "no rules file (instances are kept with no route)";
  } else {
    out << status.rules_file.string();
  }
  out << "; generation " << status.rules_generation;
  if (const auto& load = status.last_rules_load) {
    if (load->ok) {
      out << ", loaded " << Ago(status.now, load->at) << " (" << load->reason << ")\n";
    } else {
      out << " in force; STALE: the file was refused " << Ago(status.now, load->at) << " ("
          << load->reason << ", " << load->errors << " errors, first: " << load->first_error
          << ")\n";
    }
  } else {
    out << "\n";
  }
}

void WriteDestinations(std::ostream& out, const DaemonStatus& status) {
  if (status.destinations.empty()) {
    out << "destinations: none\n";
    return;
  }
  out << "destinations:\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-20s %-7s %-14s %8s %7s %7s\n", "NAME", "KIND", "STATE",
                "OWED", "DEAD", "OLDEST");
  out << line;
  for (const forward::DestinationSummary& destination : status.destinations) {
    const std::string oldest =
        destination.oldest_age ? FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(
                                     *destination.oldest_age))
                               : "-";
    std::snprintf(line, sizeof line, "  %-20s %-7s %-14s %8zu %7zu %7s\n", destination.name.c_str(),
                  destination.kind.c_str(), destination.state.c_str(), destination.owed,
                  destination.dead_lettered, oldest.c_str());
    out << line;
  }
}

}  // namespace

std::string FormatDaemonStatus(const DaemonStatus& status) {
  std::ostringstream out;
  out << "conduit: " << (status.not_ready ? "NOT READY (" + *status.not_ready + ")" : "ready")
      << ", " << (status.stuck ? "STUCK (" + *status.stuck + ")" : "healthy") << ", up "
      << FormatDuration(status.uptime) << "\n";
  out << "listener: " << status.listener_address << " as " << status.ae_title << "; "
      << status.associations_active << "/" << status.max_associations << " associations open\n";

  out << "config: "
      << (status.config_file.empty() ? "embedded default" : status.config_file.string());
  if (const auto& reload = status.last_config_reload) {
    out << "; last reload " << Ago(status.now, reload->at) << ": "
        << (reload->ok ? "ok, " : "REFUSED, ") << reload->summary;
  }
  out << "\n";
  WriteRules(out, status);

  out << "spool: " << status.spool_instances << " instances (max " << status.spool_max_instances
      << "), " << FormatBytes(status.spool_bytes) << " of " << FormatBytes(status.spool_max_bytes)
      << "; disk free " << FormatBytes(status.disk_free_bytes) << " (min "
      << FormatBytes(status.disk_min_free_bytes) << "); "
      << (status.spool_accepting ? "accepting" : "NOT ACCEPTING (instances answered 0xA700)")
      << "\n";
  WriteDestinations(out, status);
  out << "transcoding: " << status.transcode_workers << " workers, " << status.transcode_busy
      << " busy, " << status.transcode_waiting << " jobs waiting\n";
  return out.str();
}

}  // namespace conduit::app
