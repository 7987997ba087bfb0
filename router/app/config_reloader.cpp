#include "router/app/config_reloader.h"

#include <tuple>
#include <utility>
#include <variant>

#include "router/config/config_loader.h"
#include "router/forward/forwarding_service.h"
#include "router/log/log.h"
#include "router/metrics/config_reload_metrics.h"
#include "router/routing/rules_runtime.h"

namespace conduit::app {
namespace {

bool SameListener(const config::ListenerConfig& a, const config::ListenerConfig& b) {
  const auto networks = [](const config::ListenerConfig& listener) {
    std::vector<std::string> texts;
    for (const rules::Cidr& network : listener.allowed_networks) texts.push_back(network.text());
    return texts;
  };
  const auto fields = [](const config::ListenerConfig& l) {
    return std::tie(l.bind_address, l.port, l.ae_title, l.require_called_ae, l.allowed_calling_aes,
                    l.max_associations, l.max_associations_per_peer, l.max_pdu_bytes,
                    l.artim_timeout, l.idle_timeout, l.sop_class_policy, l.accepted_sop_classes,
                    l.transfer_syntax_preference, l.accepted_transfer_syntaxes);
  };
  return fields(a) == fields(b) && networks(a) == networks(b);
}

std::string Join(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

std::string DescribeChanges(const forward::DestinationChanges& changes) {
  std::string text;
  const auto add = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    text += std::string(text.empty() ? "" : "; ") + what + " " + Join(names);
  };
  add("added", changes.added);
  add("changed", changes.changed);
  add("removed", changes.removed);
  return text.empty() ? "unchanged" : text;
}

}  // namespace

std::vector<std::string> SettingsNeedingRestart(const config::Config& running,
                                                const config::Config& loaded) {
  std::vector<std::string> settings;
  if (running.network_threads != loaded.network_threads) settings.push_back("network_threads");
  if (!SameListener(running.listener, loaded.listener)) settings.push_back("listener");
  if (!(running.spool == loaded.spool)) settings.push_back("spool");
  if (!(running.metrics == loaded.metrics)) settings.push_back("metrics");
  if (running.rules.reload_check_interval != loaded.rules.reload_check_interval) {
    settings.push_back("rules.reload_check_seconds");
  }
  if (!(running.transcoding == loaded.transcoding)) settings.push_back("transcoding");
  if (!(running.admin == loaded.admin)) settings.push_back("admin");
  return settings;
}

config::Config ReloadableConfig(const config::Config& running, config::Config loaded) {
  loaded.network_threads = running.network_threads;
  loaded.listener = running.listener;
  loaded.spool = running.spool;
  loaded.metrics = running.metrics;
  loaded.rules.reload_check_interval = running.rules.reload_check_interval;
  loaded.transcoding = running.transcoding;
  loaded.admin = running.admin;
  return loaded;
}

ConfigReloader::ConfigReloader(std::filesystem::path file,
                               std::shared_ptr<const config::Config> running,
                               routing::RulesRuntime& rules, forward::ForwardingService& forwarding,
                               metrics::ConfigReloadMetrics& metrics)
    : file_(std::move(file)),
      running_(std::move(running)),
      rules_(rules),
      forwarding_(forwarding),
      metrics_(metrics) {}

ConfigReloadReport ConfigReloader::Refuse(std::string summary) {
  ConfigReloadReport report{std::chrono::system_clock::now(), false, std::move(summary), {}};
  log::Error(report.summary);
  metrics_.Reloaded(false);
  std::lock_guard lock(report_mutex_);
  last_ = report;
  return report;
}

ConfigReloadReport ConfigReloader::Reload(std::string_view reason) {
  std::shared_ptr<const config::Config> next = running_;
  std::vector<std::string> restart_needed;
  if (!file_.empty()) {
    config::ConfigResult loaded = config::LoadConfigFile(file_);
    if (const auto* errors = std::get_if<std::vector<config::ConfigError>>(&loaded)) {
      ConfigReloadReport report =
          Refuse(std::string(reason) + ": configuration " + file_.string() + " refused (" +
                 std::to_string(errors->size()) + " errors, first: " + errors->front().ToString() +
                 "); the running configuration stays");
      for (const config::ConfigError& error : *errors) log::Error("  ", error.ToString());
      return report;
    }
    config::Config& config = std::get<config::Config>(loaded);
    restart_needed = SettingsNeedingRestart(*running_, config);
    next = std::make_shared<const config::Config>(ReloadableConfig(*running_, std::move(config)));
  }
  // The rules are checked against the new destinations before anything changes, so that the
  // pair in force is always one the checks accepted.
  auto prepared = rules_.Prepare(*next, reason);
  if (!prepared) {
    return Refuse(std::string(reason) + ": rules " + next->rules.file.string() + " refused (" +
                  std::to_string(prepared.error().size()) +
                  " errors, first: " + prepared.error().front().ToString() +
                  "); the running configuration and rules stay");
  }
  // Destinations first: an instance routed by the new rules finds its destination configured.
  const forward::DestinationChanges changes = forwarding_.Reconfigure(next);
  rules_.Commit(std::move(prepared.value()), reason);
  if (next->log_level != running_->log_level) {
    log::SetLevel(next->log_level);
    log::Info(reason, ": log_level is now ", log::LevelName(next->log_level));
  }
  for (const std::string& setting : restart_needed) {
    log::Warning(reason, ": ", setting,
                 " differs from the running configuration; the change "
                 "takes effect at the next restart");
  }
  running_ = next;

  ConfigReloadReport report;
  report.at = std::chrono::system_clock::now();
  report.summary = "rules generation " + std::to_string(rules_.Current().generation) +
                   "; destinations " + DescribeChanges(changes);
  if (!restart_needed.empty()) {
    report.summary += "; needs a restart: " + Join(restart_needed);
  }
  report.restart_needed = std::move(restart_needed);
  log::Info(reason, ": reloaded ",
            file_.empty() ? "(embedded configuration) " : file_.string() + ": ", report.summary);
  metrics_.Reloaded(true);
  std::lock_guard lock(report_mutex_);
  last_ = report;
  return report;
}

std::optional<ConfigReloadReport> ConfigReloader::LastReload() const {
  std::lock_guard lock(report_mutex_);
  return last_;
}

}  // namespace conduit::app
