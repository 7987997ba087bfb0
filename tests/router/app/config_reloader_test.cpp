#include "router/app/config_reloader.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <variant>

#include "router/config/config_loader.h"
#include "router/forward/forwarding_service.h"
#include "router/log/log.h"
#include "router/metrics/config_reload_metrics.h"
#include "router/metrics/forward_metrics.h"
#include "router/metrics/routing_metrics.h"
#include "router/metrics/transcode_metrics.h"
#include "router/routing/rules_runtime.h"
#include "router/spool/spool_usage.h"

namespace conduit::app {
namespace {

config::Config Parse(const std::string& yaml) {
  config::ConfigResult result = config::LoadConfigText(yaml, "test.yaml");
  if (auto* errors = std::get_if<std::vector<config::ConfigError>>(&result)) {
    ADD_FAILURE() << errors->front().ToString();
    return {};
  }
  return std::get<config::Config>(result);
}

TEST(SettingsNeedingRestart, NamesEachStartupOnlySettingThatDiffers) {
  const config::Config running = Parse("");
  EXPECT_TRUE(SettingsNeedingRestart(running, Parse("log_level: debug\n")).empty());
  EXPECT_TRUE(SettingsNeedingRestart(running, Parse("destinations: [{name: A, host: 127.0.0.1, "
                                                    "called_ae: A}]\n"))
                  .empty());
  EXPECT_TRUE(SettingsNeedingRestart(running, Parse("rules: {file: /x.yaml}\n")).empty());
  const auto differing =
      SettingsNeedingRestart(running, Parse("network_threads: 7\n"
                                            "listener: {allowed_networks: [10.0.0.0/8]}\n"
                                            "spool: {max_bytes: 1GiB}\n"
                                            "metrics: {listen: '127.0.0.1:9999'}\n"
                                            "rules: {reload_check_seconds: 5}\n"
                                            "transcoding: {threads: 3}\n"
                                            "admin: {socket: /tmp/other.sock}\n"));
  EXPECT_EQ(differing,
            (std::vector<std::string>{"network_threads", "listener", "spool", "metrics",
                                      "rules.reload_check_seconds", "transcoding", "admin"}));
  EXPECT_EQ(SettingsNeedingRestart(running, Parse("listener: {port: 104}\n")),
            std::vector<std::string>{"listener"});
}

TEST(ReloadableConfig, KeepsTheRunningStartupSettingsAndTakesTheRest) {
  const config::Config running = Parse("listener: {port: 2000}\nspool: {max_bytes: 1GiB}\n");
  const config::Config loaded = Parse(
      "log_level: warning\nlistener: {port: 3000}\nspool: {max_bytes: 2GiB}\n"
      "rules: {file: /r.yaml, reload_check_seconds: 9}\n"
      "destinations: [{name: A, host: 127.0.0.1, called_ae: A}]\n");
  const config::Config next = ReloadableConfig(running, loaded);
  EXPECT_EQ(next.listener.port, 2000);
  EXPECT_EQ(next.spool.max_bytes, 1ULL << 30);
  EXPECT_EQ(next.rules.reload_check_interval, running.rules.reload_check_interval);
  EXPECT_EQ(next.rules.file, "/r.yaml");
  EXPECT_EQ(next.log_level, config::LogLevel::kWarning);
  ASSERT_EQ(next.destinations.size(), 1U);
  EXPECT_EQ(next.destinations[0].name, "A");
}

// A ForwardingService (not started: no forwarder runs) and rules over a temporary directory.
class ConfigReloaderTest : public ::testing::Test {
 protected:
  ConfigReloaderTest()
      : directory_(std::filesystem::temp_directory_path() /
                   ("conduit_reloader_" + std::to_string(::getpid()) + "_" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_ / "spool" / "instances");
  }
  ~ConfigReloaderTest() override {
    reloader_.reset();
    forwarding_.reset();
    std::filesystem::remove_all(directory_);
  }

  std::filesystem::path Write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = directory_ / name;
    std::ofstream(path) << text;
    return path;
  }

  // The configuration file's text with `destinations` and the rules file.
  std::string ConfigText(const std::string& destinations, const std::string& extra = "") {
    return "spool: {directory: " + (directory_ / "spool").string() + "}\n" +
           "rules: {file: " + (directory_ / "rules.yaml").string() + "}\n" +
           "destinations: " + destinations + "\n" + extra;
  }

  void Start(const std::string& config_text, const std::string& rules_text) {
    Write("rules.yaml", rules_text);
    config_file_ = Write("conduit.yaml", config_text);
    auto config = std::make_shared<const config::Config>(Parse(config_text));
    rules_ = std::make_unique<routing::RulesRuntime>(*config, routing_metrics_);
    ASSERT_TRUE(rules_->LoadInitial().empty());
    forwarding_ = std::make_unique<forward::ForwardingService>(
        config, directory_ / "spool" / "instances", usage_, io_, forward_metrics_,
        transcode_metrics_);
    forwarding_->Recover();
    reloader_ = std::make_unique<ConfigReloader>(config_file_, config, *rules_, *forwarding_,
                                                 reload_metrics_);
  }

  std::map<std::string, std::string> Kinds() {
    std::map<std::string, std::string> kinds;
    for (const auto& summary : forwarding_->Summaries()) kinds[summary.name] = summary.kind;
    return kinds;
  }

  double Reloads(const std::string& result) {
    for (const auto& family : registry_.Collect()) {
      if (family.name != "conduit_config_reloads_total") continue;
      for (const auto& metric : family.metric) {
        if (metric.label.at(0).value == result) return metric.counter.value;
      }
    }
    return -1;
  }

  std::filesystem::path directory_;
  std::filesystem::path config_file_;
  prometheus::Registry registry_;
  metrics::RoutingMetrics routing_metrics_{registry_};
  metrics::ForwardMetrics forward_metrics_{registry_};
  metrics::TranscodeMetrics transcode_metrics_{registry_};
  metrics::ConfigReloadMetrics reload_metrics_{registry_};
  spool::SpoolUsage usage_{directory_, 1ULL << 40, 0};
  boost::asio::io_context io_;
  std::unique_ptr<routing::RulesRuntime> rules_;
  std::unique_ptr<forward::ForwardingService> forwarding_;
  std::unique_ptr<ConfigReloader> reloader_;
};

constexpr const char* kRulesToA = "version: 1\nrules:\n  - name: all\n    route: [A]\n";
constexpr const char* kRulesToC = "version: 1\nrules:\n  - name: all\n    route: [C]\n";

TEST_F(ConfigReloaderTest, AddsChangesAndRemovesDestinationsWithTheirRules) {
  Start(ConfigText("[{name: A, host: 127.0.0.1, port: 1000, called_ae: A},"
                   " {name: B, type: folder, path: /nonexistent}]"),
        kRulesToA);
  EXPECT_EQ(Kinds(), (std::map<std::string, std::string>{{"A", "dimse"}, {"B", "folder"}}));

  Write("conduit.yaml", ConfigText("[{name: A, host: 127.0.0.1, port: 2000, called_ae: A},"
                                   " {name: C, type: folder, path: /elsewhere}]",
                                   "log_level: debug\n"));
  Write("rules.yaml", kRulesToC);
  const ConfigReloadReport report = reloader_->Reload("test");
  EXPECT_TRUE(report.ok) << report.summary;
  EXPECT_EQ(report.summary, "rules generation 2; destinations added C; changed A; removed B");
  EXPECT_TRUE(report.restart_needed.empty());
  // B keeps its queue, not configured; C is new.
  EXPECT_EQ(Kinds(),
            (std::map<std::string, std::string>{{"A", "dimse"}, {"B", "-"}, {"C", "folder"}}));
  EXPECT_EQ(rules_->Current().generation, 2U);
  EXPECT_TRUE(log::Enabled(config::LogLevel::kDebug));
  log::SetLevel(config::LogLevel::kInfo);
  EXPECT_EQ(Reloads("ok"), 1);

  // Unchanged: nothing restarts.
  EXPECT_EQ(reloader_->Reload("test").summary, "rules generation 3; destinations unchanged");
}

TEST_F(ConfigReloaderTest, AnInvalidConfigurationIsRefusedWithFileAndLine) {
  Start(ConfigText("[{name: A, host: 127.0.0.1, called_ae: A}]"), kRulesToA);
  Write("conduit.yaml", ConfigText("[{name: A, host: 127.0.0.1, called_ae: A, prot: 1}]"));
  const ConfigReloadReport report = reloader_->Reload("test");
  EXPECT_FALSE(report.ok);
  EXPECT_NE(report.summary.find("conduit.yaml:3:"), std::string::npos) << report.summary;
  EXPECT_NE(report.summary.find("the running configuration stays"), std::string::npos);
  ASSERT_TRUE(reloader_->LastReload());
  EXPECT_FALSE(reloader_->LastReload()->ok);
  EXPECT_EQ(Reloads("failed"), 1);
  EXPECT_EQ(Reloads("ok"), 0);
  EXPECT_EQ(rules_->Current().generation, 1U);
  EXPECT_EQ(Kinds(), (std::map<std::string, std::string>{{"A", "dimse"}}));
}

TEST_F(ConfigReloaderTest, RulesNamingARemovedDestinationRefuseTheWholeReload) {
  Start(ConfigText("[{name: A, host: 127.0.0.1, called_ae: A}]"), kRulesToA);
  // The new configuration drops A, but the rules (unchanged) still route to it.
  Write("conduit.yaml", ConfigText("[{name: C, type: folder, path: /x}]"));
  const ConfigReloadReport report = reloader_->Reload("test");
  EXPECT_FALSE(report.ok);
  EXPECT_NE(report.summary.find("rules.yaml:4:"), std::string::npos) << report.summary;
  EXPECT_EQ(Kinds(), (std::map<std::string, std::string>{{"A", "dimse"}})) << "nothing changed";
  EXPECT_EQ(rules_->Current().generation, 1U);
  ASSERT_TRUE(rules_->LastLoad());
  EXPECT_FALSE(rules_->LastLoad()->ok);
}

TEST_F(ConfigReloaderTest, StartupOnlySettingsKeepRunningAndAreReported) {
  Start(ConfigText("[{name: A, host: 127.0.0.1, called_ae: A}]"), kRulesToA);
  Write("conduit.yaml", ConfigText("[{name: A, host: 127.0.0.1, called_ae: A}]",
                                   "transcoding: {threads: 3}\nnetwork_threads: 9\n"));
  const ConfigReloadReport report = reloader_->Reload("test");
  EXPECT_TRUE(report.ok);
  EXPECT_EQ(report.restart_needed, (std::vector<std::string>{"network_threads", "transcoding"}));
  EXPECT_NE(report.summary.find("needs a restart: network_threads, transcoding"), std::string::npos)
      << report.summary;
}

}  // namespace
}  // namespace conduit::app
