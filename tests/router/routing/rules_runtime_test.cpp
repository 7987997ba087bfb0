#include "router/routing/rules_runtime.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "router/metrics/routing_metrics.h"

namespace conduit::routing {
namespace {

class RulesRuntimeTest : public ::testing::Test {
 protected:
  RulesRuntimeTest()
      : directory_(std::filesystem::temp_directory_path() /
                   ("conduit_rules_runtime_" + std::to_string(::getpid()) + "_" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name())) {
    std::filesystem::create_directories(directory_);
  }
  ~RulesRuntimeTest() override { std::filesystem::remove_all(directory_); }

  std::filesystem::path Write(const std::string& name, const std::string& text) {
    const std::filesystem::path path = directory_ / name;
    std::ofstream(path) << text;
    return path;
  }

  config::Config WithDestinations(std::vector<std::string> names, std::filesystem::path rules) {
    config::Config config;
    config.rules.file = std::move(rules);
    for (std::string& name : names) {
      config::DestinationConfig destination;
      destination.name = std::move(name);
      config.destinations.push_back(destination);
    }
    return config;
  }

  std::filesystem::path directory_;
  prometheus::Registry registry_;
  metrics::RoutingMetrics metrics_{registry_};
};

constexpr const char* kRouteToA = "version: 1\nrules:\n  - name: all\n    route: [A]\n";
constexpr const char* kRouteToB = "version: 1\nrules:\n  - name: all\n    route: [B]\n";

TEST_F(RulesRuntimeTest, PrepareChecksAgainstTheNewDestinationsAndCommitPutsThemInForce) {
  const auto rules_a = Write("a.yaml", kRouteToA);
  RulesRuntime runtime(WithDestinations({"A"}, rules_a), metrics_);
  ASSERT_TRUE(runtime.LoadInitial().empty());
  EXPECT_TRUE(runtime.Loaded());
  EXPECT_EQ(runtime.Current().generation, 1U);

  // Rules that route to B: refused while B is not configured, and nothing changes.
  const auto rules_b = Write("b.yaml", kRouteToB);
  auto refused = runtime.Prepare(WithDestinations({"A"}, rules_b), "test");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().front().line, 4);
  EXPECT_EQ(runtime.Current().generation, 1U);
  EXPECT_EQ(runtime.file(), rules_a);
  ASSERT_TRUE(runtime.LastLoad());
  EXPECT_FALSE(runtime.LastLoad()->ok);
  EXPECT_EQ(runtime.LastLoad()->reason, "test");

  // With B in the configuration they pass, and the new file is the one watched from now on.
  auto prepared = runtime.Prepare(WithDestinations({"A", "B"}, rules_b), "test");
  ASSERT_TRUE(prepared);
  EXPECT_EQ(runtime.Current().generation, 1U) << "not in force before Commit";
  runtime.Commit(std::move(prepared.value()), "test");
  EXPECT_EQ(runtime.Current().generation, 2U);
  EXPECT_EQ(runtime.file(), rules_b);
  EXPECT_TRUE(runtime.LastLoad()->ok);
}

TEST_F(RulesRuntimeTest, DroppingTheRulesFileKeepsInstancesWithoutRoutes) {
  RulesRuntime runtime(WithDestinations({"A"}, Write("a.yaml", kRouteToA)), metrics_);
  ASSERT_TRUE(runtime.LoadInitial().empty());
  auto prepared = runtime.Prepare(WithDestinations({"A"}, {}), "test");
  ASSERT_TRUE(prepared);
  runtime.Commit(std::move(prepared.value()), "test");
  EXPECT_EQ(runtime.Current().rules, nullptr);
  EXPECT_EQ(runtime.Current().generation, 2U);
  EXPECT_TRUE(runtime.file().empty());
}

TEST_F(RulesRuntimeTest, NoRulesFileIsLoadedFromTheStart) {
  RulesRuntime runtime(WithDestinations({}, {}), metrics_);
  EXPECT_FALSE(runtime.Loaded());
  EXPECT_TRUE(runtime.LoadInitial().empty());
  EXPECT_TRUE(runtime.Loaded());
  EXPECT_EQ(runtime.Current().generation, 0U);
}

}  // namespace
}  // namespace conduit::routing
