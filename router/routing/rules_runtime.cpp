#include "router/routing/rules_runtime.h"

#include <sys/stat.h>

#include "router/log/log.h"
#include "router/metrics/routing_metrics.h"

namespace conduit::routing {

rules::RuleContext MakeRuleContext(const config::Config& config) {
  rules::RuleContext context;
  for (const config::DestinationConfig& destination : config.destinations) {
    context.destinations.insert(destination.name);
  }
  for (const config::TranscodeProfile& profile : config.transcoding.profiles) {
    context.transcode_profiles.insert(profile.name);
  }
  return context;
}

RulesRuntime::RulesRuntime(const config::Config& config, metrics::RoutingMetrics& metrics)
    : file_(config.rules.file),
      context_(MakeRuleContext(config)),
      metrics_(metrics),
      snapshot_(std::make_shared<const RulesSnapshot>()) {}

RulesRuntime::FileIdentity RulesRuntime::Identify() const {
  struct stat info {};
  if (::stat(file_.c_str(), &info) != 0) return {};
  return {static_cast<std::uint64_t>(info.st_ino), static_cast<std::int64_t>(info.st_size),
          static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec};
}

rules::RuleSetResult RulesRuntime::Load() {
  last_seen_ = Identify();
  return rules::LoadRulesFile(file_, context_);
}

std::vector<rules::Diagnostic> RulesRuntime::LoadInitial() {
  if (file_.empty()) return {};
  std::lock_guard lock(reload_mutex_);
  rules::RuleSetResult result = Load();
  if (auto* errors = std::get_if<std::vector<rules::Diagnostic>>(&result)) {
    metrics_.ReloadFailed();
    return std::move(*errors);
  }
  auto rules = std::get<std::shared_ptr<const rules::RuleSet>>(std::move(result));
  log::Info("rules ", file_.string(), ": ", rules->rule_names().size(), " rules, generation 1");
  snapshot_.store(std::make_shared<const RulesSnapshot>(RulesSnapshot{rules, 1}));
  metrics_.ReloadSucceeded(1);
  return {};
}

bool RulesRuntime::Reload(std::string_view reason) {
  if (file_.empty()) {
    log::Info(reason, ": no rules file is configured; nothing to reload");
    return false;
  }
  std::lock_guard lock(reload_mutex_);
  rules::RuleSetResult result = Load();
  if (auto* errors = std::get_if<std::vector<rules::Diagnostic>>(&result)) {
    metrics_.ReloadFailed();
    log::Error(reason, ": rules ", file_.string(), " refused (", errors->size(),
               " errors); the previous rules stay in force:");
    for (const rules::Diagnostic& error : *errors) log::Error("  ", error.ToString());
    return false;
  }
  auto rules = std::get<std::shared_ptr<const rules::RuleSet>>(std::move(result));
  const std::uint64_t generation = snapshot_.load()->generation + 1;
  snapshot_.store(std::make_shared<const RulesSnapshot>(RulesSnapshot{rules, generation}));
  metrics_.ReloadSucceeded(generation);
  log::Info(reason, ": rules ", file_.string(), " reloaded: ", rules->rule_names().size(),
            " rules, generation ", generation);
  return true;
}

void RulesRuntime::ReloadIfChanged() {
  if (file_.empty()) return;
  FileIdentity current = Identify();
  {
    std::lock_guard lock(reload_mutex_);
    if (current == last_seen_) return;
  }
  Reload("rules file changed");
}

}  // namespace conduit::routing
