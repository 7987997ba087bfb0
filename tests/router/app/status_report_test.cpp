#include "router/app/status_report.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace conduit::app {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

DaemonStatus Healthy() {
  DaemonStatus status;
  status.now = std::chrono::system_clock::now();
  status.uptime = hours(3);
  status.listener_address = "0.0.0.0:11112";
  status.ae_title = "CONDUIT";
  status.associations_active = 3;
  status.max_associations = 64;
  status.config_file = "/etc/conduit/conduit.yaml";
  status.rules_file = "/etc/conduit/rules.yaml";
  status.rules_generation = 4;
  status.last_rules_load = routing::RulesLoadReport{status.now - minutes(5), "SIGHUP", true, 0, ""};
  status.spool_instances = 1234;
  status.spool_max_instances = 1000000;
  status.spool_bytes = 5ULL << 30;
  status.spool_max_bytes = 64ULL << 30;
  status.disk_free_bytes = 120ULL << 30;
  status.disk_min_free_bytes = 1ULL << 30;
  forward::DestinationSummary pacs;
  pacs.name = "pacs";
  pacs.kind = "dimse";
  pacs.state = "sending";
  pacs.owed = 12;
  pacs.oldest_age = seconds(3);
  forward::DestinationSummary old;
  old.name = "old";
  old.kind = "-";
  old.state = "not-configured";
  old.owed = 2;
  old.dead_lettered = 1;
  status.destinations = {pacs, old};
  status.transcode_workers = 2;
  status.transcode_busy = 1;
  return status;
}

TEST(FormatDaemonStatus, OneLinePerPartAndOnePerDestination) {
  const std::string text = FormatDaemonStatus(Healthy());
  EXPECT_NE(text.find("conduit: ready, healthy, up 3h\n"), std::string::npos) << text;
  EXPECT_NE(text.find("listener: 0.0.0.0:11112 as CONDUIT; 3/64 associations open\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("config: /etc/conduit/conduit.yaml\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rules: /etc/conduit/rules.yaml; generation 4, loaded 5m ago (SIGHUP)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("spool: 1234 instances (max 1000000), 5.0 GiB of 64.0 GiB; disk free 120.0 "
                      "GiB (min 1.0 GiB); accepting\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  pacs                 dimse   sending              12       0      3s\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  old                  -       not-configured        2       1       -\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("transcoding: 2 workers, 1 busy, 0 jobs waiting\n"), std::string::npos)
      << text;
}

TEST(FormatDaemonStatus, ProblemsAreSpelledOut) {
  DaemonStatus status = Healthy();
  status.not_ready = "stopping: no new associations are accepted";
  status.stuck = "spool commits: no progress for 42 s";
  status.last_rules_load = routing::RulesLoadReport{status.now - seconds(30), "rules file changed",
                                                    false, 3, "rules.yaml:4:7: unknown keyword"};
  status.last_config_reload = ConfigReloadReport{
      status.now - minutes(2), true, "rules generation 4; destinations added x", {"listener"}};
  status.spool_accepting = false;
  status.destinations.clear();
  const std::string text = FormatDaemonStatus(status);
  EXPECT_NE(text.find("conduit: NOT READY (stopping: no new associations are accepted), STUCK "
                      "(spool commits: no progress for 42 s)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("generation 4 in force; STALE: the file was refused 30s ago (rules file "
                      "changed, 3 errors, first: rules.yaml:4:7: unknown keyword)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("last reload 2m ago: ok, rules generation 4; destinations added x"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("NOT ACCEPTING"), std::string::npos) << text;
  EXPECT_NE(text.find("destinations: none\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace conduit::app
