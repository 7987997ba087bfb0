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

RulesRuntime::FileIdentity RulesRuntime::Identify(const std::filesystem::path& file) const {
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0) return {};
  return {static_cast<std::uint64_t>(info.st_ino), static_cast<std::int64_t>(info.st_size),
          static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec};
}

std::vector<rules::Diagnostic> RulesRuntime::LoadInitial() {
  std::lock_guard lock(reload_mutex_);
  if (file_.empty()) {
    loaded_ = true;
    return {};
  }
  last_seen_ = Identify(file_);
  rules::RuleSetResult result = rules::LoadRulesFile(file_, context_);
  if (auto* errors = std::get_if<std::vector<rules::Diagnostic>>(&result)) {
    metrics_.ReloadFailed();
    return std::move(*errors);
  }
  auto rules = std::get<std::shared_ptr<const rules::RuleSet>>(std::move(result));
  log::Info("rules ", file_.string(), ": ", rules->rule_names().size(), " rules, generation 1");
  snapshot_.store(std::make_shared<const RulesSnapshot>(RulesSnapshot{rules, 1}));
  metrics_.ReloadSucceeded(1);
  last_load_ = RulesLoadReport{std::chrono::system_clock::now(), "startup", true, 0, {}};
  loaded_ = true;
  return {};
}

void RulesRuntime::Refused(std::string_view reason, const std::filesystem::path& file,
                           const std::vector<rules::Diagnostic>& errors) {
  metrics_.ReloadFailed();
  last_load_ = RulesLoadReport{std::chrono::system_clock::now(), std::string(reason), false,
                               errors.size(), errors.empty() ? "" : errors.front().ToString()};
  log::Error(reason, ": rules ", file.string(), " refused (", errors.size(),
             " errors); the previous rules stay in force:");
  for (const rules::Diagnostic& error : errors) log::Error("  ", error.ToString());
}

void RulesRuntime::Install(std::shared_ptr<const rules::RuleSet> rules, std::string_view reason) {
  const std::uint64_t generation = snapshot_.load()->generation + 1;
  const std::size_t count = rules ? rules->rule_names().size() : 0;
  snapshot_.store(
      std::make_shared<const RulesSnapshot>(RulesSnapshot{std::move(rules), generation}));
  metrics_.ReloadSucceeded(generation);
  last_load_ = RulesLoadReport{std::chrono::system_clock::now(), std::string(reason), true, 0, {}};
  if (file_.empty()) {
    log::Info(reason,
              ": no rules file is configured any more; instances are kept with no route "
              "(generation ",
              generation, ")");
  } else {
    log::Info(reason, ": rules ", file_.string(), " loaded: ", count, " rules, generation ",
              generation);
  }
}

bool RulesRuntime::Reload(std::string_view reason) {
  std::lock_guard lock(reload_mutex_);
  if (file_.empty()) {
    log::Info(reason, ": no rules file is configured; nothing to reload");
    return false;
  }
  last_seen_ = Identify(file_);
  rules::RuleSetResult result = rules::LoadRulesFile(file_, context_);
  if (auto* errors = std::get_if<std::vector<rules::Diagnostic>>(&result)) {
    Refused(reason, file_, *errors);
    return false;
  }
  Install(std::get<std::shared_ptr<const rules::RuleSet>>(std::move(result)), reason);
  return true;
}

void RulesRuntime::ReloadIfChanged() {
  {
    std::lock_guard lock(reload_mutex_);
    if (file_.empty() || Identify(file_) == last_seen_) return;
  }
  Reload("rules file changed");
}

Result<RulesRuntime::Prepared, std::vector<rules::Diagnostic>> RulesRuntime::Prepare(
    const config::Config& config, std::string_view reason) {
  Prepared prepared{config.rules.file, MakeRuleContext(config), nullptr, {}};
  if (prepared.file.empty()) return prepared;
  prepared.identity = Identify(prepared.file);
  rules::RuleSetResult result = rules::LoadRulesFile(prepared.file, prepared.context);
  if (auto* errors = std::get_if<std::vector<rules::Diagnostic>>(&result)) {
    std::lock_guard lock(reload_mutex_);
    // The same file is not tried again by the change check until it changes once more.
    if (prepared.file == file_) last_seen_ = prepared.identity;
    Refused(reason, prepared.file, *errors);
    return std::move(*errors);
  }
  prepared.rules = std::get<std::shared_ptr<const rules::RuleSet>>(std::move(result));
  return prepared;
}

void RulesRuntime::Commit(Prepared prepared, std::string_view reason) {
  std::lock_guard lock(reload_mutex_);
  if (prepared.file.empty() && file_.empty()) return;  // no rules before, none now
  file_ = std::move(prepared.file);
  context_ = std::move(prepared.context);
  last_seen_ = prepared.identity;
  Install(std::move(prepared.rules), reason);
  loaded_ = true;
}

std::filesystem::path RulesRuntime::file() const {
  std::lock_guard lock(reload_mutex_);
  return file_;
}

std::optional<RulesLoadReport> RulesRuntime::LastLoad() const {
  std::lock_guard lock(reload_mutex_);
  return last_load_;
}

}  // namespace conduit::routing
