// What a rule set decides: order, stop, discard, default, priority, one route per destination,
// and the settings each route carries.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <initializer_list>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rules/rule_set.h"
#include "tests/rules/fake_attributes.h"

namespace conduit::rules {
namespace {

using testing::FakeAttributes;
using testing::LoadOrFail;

std::vector<std::string> Destinations(const RoutingDecision& decision) {
  std::vector<std::string> names;
  for (const Route& route : decision.routes) {
    names.push_back(route.destination);
  }
  return names;
}

FakeAttributes WithModality(std::string modality) {
  FakeAttributes attributes;
  attributes.Add("Modality", "CS", {std::move(modality)});
  return attributes;
}

constexpr std::string_view kLayered = R"(version: 1
default:
  route: [ARCHIVE]
rules:
  - name: drop-presentation-states
    when: { attribute: Modality, in: [PR, KO] }
    discard: true
  - name: ct-to-pacs
    when: { attribute: Modality, equals: CT }
    route:
      - destination: PACS
        priority: 10
      - RESEARCH
  - name: ct-and-mr-to-ai
    when: { attribute: Modality, in: [CT, MR] }
    route:
      - AI
      - destination: PACS
        priority: 99
  - name: mr-only-to-research
    when: { attribute: Modality, equals: MR }
    route: [RESEARCH]
    stop: true
  - name: after-stop
    route:
      - destination: ARCHIVE
        priority: 5
)";

TEST(RuleEvaluationTest, RulesAddRoutesInOrderFirstRouteToADestinationWins) {
  const auto rules = LoadOrFail(kLayered);
  ASSERT_TRUE(rules);
  const RoutingDecision decision = rules->Evaluate(WithModality("CT"), {});
  // PACS comes from ct-to-pacs (priority 10), not from the later rule's priority 99.
  EXPECT_EQ(Destinations(decision),
            (std::vector<std::string>{"PACS", "ARCHIVE", "RESEARCH", "AI"}));
  EXPECT_EQ(decision.routes[0].priority, 10);
  EXPECT_EQ(decision.routes[0].rule, "ct-to-pacs");
  EXPECT_EQ(decision.routes[1].rule, "after-stop");
  EXPECT_EQ(decision.matched_rules,
            (std::vector<std::string>{"ct-to-pacs", "ct-and-mr-to-ai", "after-stop"}));
  EXPECT_FALSE(decision.used_default);
  EXPECT_FALSE(decision.discarded);
}

TEST(RuleEvaluationTest, StopEndsMatching) {
  const auto rules = LoadOrFail(kLayered);
  ASSERT_TRUE(rules);
  const RoutingDecision decision = rules->Evaluate(WithModality("MR"), {});
  EXPECT_EQ(Destinations(decision), (std::vector<std::string>{"PACS", "AI", "RESEARCH"}));
  EXPECT_EQ(decision.matched_rules,
            (std::vector<std::string>{"ct-and-mr-to-ai", "mr-only-to-research"}));
}

TEST(RuleEvaluationTest, DiscardStopsAndClearsRoutes) {
  const auto rules = LoadOrFail(kLayered);
  ASSERT_TRUE(rules);
  const RoutingDecision decision = rules->Evaluate(WithModality("PR"), {});
  EXPECT_TRUE(decision.discarded);
  EXPECT_EQ(decision.discarded_by, "drop-presentation-states");
  EXPECT_TRUE(decision.routes.empty());
  EXPECT_EQ(decision.matched_rules, (std::vector<std::string>{"drop-presentation-states"}));
  EXPECT_FALSE(decision.used_default);
}

TEST(RuleEvaluationTest, DiscardWinsOverRoutesCollectedBeforeIt) {
  const auto rules = LoadOrFail(R"(version: 1
rules:
  - name: everything-to-archive
    route: [ARCHIVE]
  - name: but-not-test-patients
    when: { attribute: PatientID, wildcard: "TEST*" }
    discard: true
  - name: never-reached
    route: [PACS]
)");
  ASSERT_TRUE(rules);
  FakeAttributes test_patient;
  test_patient.Add("PatientID", "LO", {"TEST-01"});
  const RoutingDecision discarded = rules->Evaluate(test_patient, {});
  EXPECT_TRUE(discarded.discarded);
  EXPECT_TRUE(discarded.routes.empty());
  EXPECT_EQ(discarded.matched_rules,
            (std::vector<std::string>{"everything-to-archive", "but-not-test-patients"}));

  FakeAttributes patient;
  patient.Add("PatientID", "LO", {"12345"});
  EXPECT_EQ(Destinations(rules->Evaluate(patient, {})),
            (std::vector<std::string>{"ARCHIVE", "PACS"}));
}

TEST(RuleEvaluationTest, DefaultAppliesOnlyWhenNothingMatched) {
  const auto rules = LoadOrFail(R"(version: 1
default:
  route:
    - destination: ARCHIVE
      priority: 3
  level: study
  quiet_period_seconds: 300
rules:
  - name: ct
    when: { attribute: Modality, equals: CT }
    route: [PACS]
)");
  ASSERT_TRUE(rules);
  const RoutingDecision fallback = rules->Evaluate(WithModality("US"), {});
  EXPECT_TRUE(fallback.used_default);
  EXPECT_TRUE(fallback.matched_rules.empty());
  ASSERT_EQ(fallback.routes.size(), 1U);
  EXPECT_EQ(fallback.routes[0].destination, "ARCHIVE");
  EXPECT_EQ(fallback.routes[0].rule, "default");
  EXPECT_EQ(fallback.routes[0].priority, 3);
  EXPECT_EQ(fallback.routes[0].level, RoutingLevel::kStudy);
  EXPECT_EQ(fallback.routes[0].quiet_period, std::chrono::seconds(300));

  const RoutingDecision matched = rules->Evaluate(WithModality("CT"), {});
  EXPECT_FALSE(matched.used_default);
  EXPECT_EQ(Destinations(matched), (std::vector<std::string>{"PACS"}));
}

TEST(RuleEvaluationTest, NoMatchAndNoDefaultIsNoRoute) {
  const auto rules = LoadOrFail(R"(version: 1
rules:
  - name: ct
    when: { attribute: Modality, equals: CT }
    route: [PACS]
)");
  ASSERT_TRUE(rules);
  const RoutingDecision decision = rules->Evaluate(WithModality("MR"), {});
  EXPECT_TRUE(decision.routes.empty());
  EXPECT_FALSE(decision.used_default);
  EXPECT_FALSE(decision.discarded);
  EXPECT_TRUE(decision.matched_rules.empty());
}

TEST(RuleEvaluationTest, RoutesSortByPriorityHighestFirstStable) {
  const auto rules = LoadOrFail(R"(version: 1
rules:
  - name: a
    route:
      - destination: ARCHIVE
      - destination: RESEARCH
        priority: -5
      - destination: PACS
        priority: 20
      - AI
)");
  ASSERT_TRUE(rules);
  EXPECT_EQ(Destinations(rules->Evaluate(FakeAttributes{}, {})),
            (std::vector<std::string>{"PACS", "ARCHIVE", "AI", "RESEARCH"}));
}

TEST(RuleEvaluationTest, RouteSettings) {
  const auto rules = LoadOrFail(R"(version: 1
rules:
  - name: ct-to-pacs
    route:
      - destination: PACS
        priority: 10
        transcode: htj2k-lossless
        edits:
          - set: { attribute: InstitutionName, value: "Site A" }
          - copy: { from: AccessionNumber, to: StudyID }
      - RESEARCH
    level: study
    quiet_period_seconds: 120
  - name: series
    route: [AI]
    level: series
)");
  ASSERT_TRUE(rules);
  const RoutingDecision decision = rules->Evaluate(FakeAttributes{}, {});
  ASSERT_EQ(decision.routes.size(), 3U);
  const Route& pacs = decision.routes[0];
  EXPECT_EQ(pacs.destination, "PACS");
  EXPECT_EQ(pacs.transcode_profile, "htj2k-lossless");
  EXPECT_EQ(pacs.level, RoutingLevel::kStudy);
  EXPECT_EQ(pacs.quiet_period, std::chrono::seconds(120));
  ASSERT_EQ(pacs.edits.size(), 2U);
  EXPECT_EQ(pacs.edits[0].kind, TagEdit::Kind::kSet);
  EXPECT_EQ(pacs.edits[0].target_text, "InstitutionName");
  EXPECT_EQ(pacs.edits[0].value, "Site A");
  EXPECT_EQ(pacs.edits[1].kind, TagEdit::Kind::kCopy);
  EXPECT_EQ(pacs.edits[1].source_text, "AccessionNumber");
  EXPECT_EQ(pacs.edits[1].target_text, "StudyID");
  const Route& research = decision.routes[1];
  EXPECT_EQ(research.destination, "RESEARCH");
  EXPECT_EQ(research.transcode_profile, "");
  EXPECT_EQ(research.level, RoutingLevel::kStudy);
  EXPECT_TRUE(research.edits.empty());
  const Route& ai = decision.routes[2];
  EXPECT_EQ(ai.level, RoutingLevel::kSeries);
  EXPECT_EQ(ai.quiet_period, std::chrono::seconds(60));  // the default for series and study
  EXPECT_EQ(ai.rule, "series");
}

TEST(RuleEvaluationTest, InstanceLevelIsTheDefault) {
  const auto rules = LoadOrFail("version: 1\nrules:\n  - name: a\n    route: [PACS]\n");
  ASSERT_TRUE(rules);
  const RoutingDecision decision = rules->Evaluate(FakeAttributes{}, {});
  ASSERT_EQ(decision.routes.size(), 1U);
  EXPECT_EQ(decision.routes[0].level, RoutingLevel::kInstance);
  EXPECT_EQ(decision.routes[0].quiet_period, std::chrono::seconds(0));
  EXPECT_EQ(decision.routes[0].priority, 0);
}

TEST(RuleEvaluationTest, RuleNamesInFileOrder) {
  const auto rules = LoadOrFail(kLayered);
  ASSERT_TRUE(rules);
  EXPECT_EQ(rules->rule_names(),
            (std::vector<std::string>{"drop-presentation-states", "ct-to-pacs", "ct-and-mr-to-ai",
                                      "mr-only-to-research", "after-stop"}));
}

TEST(RuleEvaluationTest, EmptyRuleListOrOnlyDefault) {
  const auto only_default = LoadOrFail("version: 1\ndefault: {route: [ARCHIVE]}\n");
  ASSERT_TRUE(only_default);
  EXPECT_TRUE(only_default->Evaluate(FakeAttributes{}, {}).used_default);
  const auto nothing = LoadOrFail("version: 1\nrules:\n");
  ASSERT_TRUE(nothing);
  EXPECT_TRUE(nothing->Evaluate(FakeAttributes{}, {}).routes.empty());
}

TEST(RuleEvaluationTest, ExplainDecidesWhatEvaluateDecides) {
  const auto rules = LoadOrFail(kLayered);
  ASSERT_TRUE(rules);
  for (const char* modality : {"CT", "MR", "PR", "US"}) {
    const FakeAttributes attributes = WithModality(modality);
    const RoutingDecision evaluated = rules->Evaluate(attributes, {});
    const RoutingDecision explained = rules->Explain(attributes, {}).decision;
    EXPECT_EQ(Destinations(explained), Destinations(evaluated)) << modality;
    EXPECT_EQ(explained.matched_rules, evaluated.matched_rules) << modality;
    EXPECT_EQ(explained.discarded, evaluated.discarded) << modality;
    EXPECT_EQ(explained.used_default, evaluated.used_default) << modality;
  }
}

// Evaluate skips rules whose leading equality test fails (one lookup for all of them); Explain
// walks every condition. On any input both must decide the same.
TEST(RuleEvaluationTest, ShortcutsNeverChangeTheDecision) {
  const auto rules = LoadOrFail(R"yaml(version: 1
rules:
  - {name: ct, when: {attribute: Modality, equals: CT}, route: [PACS]}
  - {name: ct-or-mr, when: {attribute: Modality, in: [MR, CT]}, route: [PACS]}
  - name: axial-512
    when: {all: [{attribute: ImageType, equals: AXIAL}, {attribute: Rows, equals: 512}]}
    route: [PACS]
  - {name: series, when: {attribute: SeriesNumber, in: [3, 4]}, route: [PACS]}
  - {name: calling, when: {calling_ae: {in: [CT1, CT2]}}, route: [PACS]}
  - {name: called, when: {called_ae: CONDUIT}, route: [PACS]}
  - {name: folded, when: {attribute: Modality, equals: ct, ignore_case: true}, route: [PACS]}
  - name: head-not-mr
    when: {all: [{attribute: BodyPartExamined, equals: HEAD}, {not: {attribute: Modality, equals: MR}}]}
    route: [PACS]
  - name: private
    when: {attribute: '(0019,xx10)', creator: X, equals: '2.5'}
    route: [PACS]
  - {name: any, when: {any: [{attribute: Modality, equals: US}, {calling_ae: CT2}]}, route: [PACS]}
)yaml");
  ASSERT_TRUE(rules);
  std::mt19937 random(1234);
  const auto pick = [&](std::initializer_list<const char*> choices) {
    return std::string(*(choices.begin() + std::uniform_int_distribution<std::size_t>(
                                               0, choices.size() - 1)(random)));
  };
  for (int round = 0; round < 3000; ++round) {
    FakeAttributes attributes;
    const std::string modality = pick({"CT", "MR", "ct", " CT ", "US", "-", ""});
    if (modality == "-") {
      attributes.Add("Modality", "CS", {});
    } else if (!modality.empty()) {
      attributes.Add("Modality", pick({"CS", "UN", "DS"}), {modality});
    }
    attributes.Add("ImageType", "CS",
                   {pick({"ORIGINAL", "DERIVED"}), pick({"AXIAL", "LOCALIZER"})});
    attributes.Add("Rows", "US", {pick({"512", "256", "0512"})});
    attributes.Add("SeriesNumber", pick({"IS", "LO", "UN"}), {pick({" 3", "03", "3.0", "x", "4"})});
    attributes.Add("BodyPartExamined", "CS", {pick({"HEAD", "HEAD ", "CHEST"})});
    attributes.Add("(0019,xx10)", pick({"UN", "DS"}), {pick({"2.50", "2.5", "x"})}, "X");
    AssociationFacts facts;
    facts.calling_ae = pick({"CT1", " CT2", "ct1", "", "MR1"});
    facts.called_ae = pick({"CONDUIT", "OTHER", ""});
    const RoutingDecision evaluated = rules->Evaluate(attributes, facts);
    const RoutingDecision explained = rules->Explain(attributes, facts).decision;
    ASSERT_EQ(evaluated.matched_rules, explained.matched_rules)
        << "round " << round << ": modality '" << modality << "', calling '" << facts.calling_ae
        << "'";
  }
}

TEST(RuleEvaluationTest, ConcurrentEvaluationsShareOneRuleSet) {
  const auto rules = LoadOrFail(kLayered);
  ASSERT_TRUE(rules);
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      const FakeAttributes ct = WithModality("CT");
      for (int i = 0; i < 2000; ++i) {
        if (rules->Evaluate(ct, {}).routes.size() != 4) {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace conduit::rules
