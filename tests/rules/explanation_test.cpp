// Explain: the traces (which rule, which condition, what value) and their text.
#include <gtest/gtest.h>

#include <string>

#include "rules/rule_set.h"
#include "tests/rules/fake_attributes.h"

namespace conduit::rules {
namespace {

using testing::FakeAttributes;
using testing::LoadOrFail;

constexpr std::string_view kRules = R"yaml(version: 1
default:
  route: [ARCHIVE]
rules:
  - name: drop-presentation-states
    when: { attribute: Modality, in: [PR, KO] }
    discard: true
  - name: ct-to-pacs
    when:
      all:
        - attribute: Modality
          equals: CT
        - any:
            - calling_ae: { in: [CT1, CT2] }
            - not: { attribute: BodyPartExamined, absent: true }
    route:
      - destination: PACS
        priority: 10
        transcode: htj2k-lossless
        edits:
          - set: { attribute: InstitutionName, value: "Site A" }
          - prefix: { attribute: PatientID, value: "SITEA-" }
          - suffix: { attribute: AccessionNumber, value: "-A" }
          - delete: { attribute: PatientName }
          - copy: { from: AccessionNumber, to: StudyID }
          - replace: { attribute: PatientID, regex: "^0+", with: "" }
      - RESEARCH
    level: study
    quiet_period_seconds: 120
    stop: true
  - name: everything-to-ai
    route: [AI]
)yaml";

FakeAttributes Ct() {
  FakeAttributes attributes;
  attributes.Add("Modality", "CS", {"CT"}).Add("BodyPartExamined", "CS", {"HEAD "});
  return attributes;
}

TEST(ExplanationTest, TracesEveryEvaluatedConditionWithDepthAndValue) {
  const auto rules = LoadOrFail(kRules);
  ASSERT_TRUE(rules);
  AssociationFacts facts;
  facts.calling_ae = "MR7";
  const Explanation explanation = rules->Explain(Ct(), facts);
  ASSERT_EQ(explanation.rules.size(), 3U);

  const RuleTrace& drop = explanation.rules[0];
  EXPECT_EQ(drop.name, "drop-presentation-states");
  EXPECT_EQ(drop.line, 5);
  EXPECT_TRUE(drop.evaluated);
  EXPECT_FALSE(drop.matched);
  ASSERT_EQ(drop.conditions.size(), 1U);
  EXPECT_EQ(drop.conditions[0].description, "Modality in [PR, KO]");
  EXPECT_EQ(drop.conditions[0].seen, "CT");

  const RuleTrace& ct = explanation.rules[1];
  EXPECT_EQ(ct.line, 8);
  EXPECT_TRUE(ct.matched);
  ASSERT_EQ(ct.conditions.size(), 6U);
  EXPECT_EQ(ct.conditions[0].depth, 0);
  EXPECT_EQ(ct.conditions[0].description, "all of");
  EXPECT_EQ(ct.conditions[1].depth, 1);
  EXPECT_EQ(ct.conditions[2].description, "any of");
  EXPECT_EQ(ct.conditions[3].depth, 2);
  EXPECT_EQ(ct.conditions[3].description, "calling AE in [CT1, CT2]");
  EXPECT_EQ(ct.conditions[3].seen, "MR7");
  EXPECT_FALSE(ct.conditions[3].matched);
  EXPECT_EQ(ct.conditions[4].description, "not");
  EXPECT_TRUE(ct.conditions[4].matched);
  EXPECT_EQ(ct.conditions[5].depth, 3);
  EXPECT_EQ(ct.conditions[5].description, "BodyPartExamined is absent");
  EXPECT_EQ(ct.conditions[5].seen, "HEAD");
  EXPECT_FALSE(ct.conditions[5].matched);

  const RuleTrace& after = explanation.rules[2];
  EXPECT_FALSE(after.evaluated);
  EXPECT_FALSE(after.matched);
  EXPECT_TRUE(after.conditions.empty());
}

TEST(ExplanationTest, FormatsRulesConditionsAndRoutes) {
  const auto rules = LoadOrFail(kRules);
  ASSERT_TRUE(rules);
  AssociationFacts facts;
  facts.calling_ae = "CT2";
  EXPECT_EQ(FormatExplanation(rules->Explain(Ct(), facts)),
            "rule 'drop-presentation-states' (line 5): not matched\n"
            "  \u2717 Modality in [PR, KO]  (seen: CT)\n"
            "rule 'ct-to-pacs' (line 8): matched\n"
            "  \u2713 all of\n"
            "    \u2713 Modality equals CT  (seen: CT)\n"
            "    \u2713 any of\n"
            "      \u2713 calling AE in [CT1, CT2]  (seen: CT2)\n"
            "rule 'everything-to-ai' (line 31): not evaluated (an earlier rule stopped "
            "evaluation)\n"
            "\n"
            "decision: 2 routes\n"
            "  PACS: priority 10, transcode htj2k-lossless, level study (quiet period 120 s), "
            "from rule 'ct-to-pacs'\n"
            "      edit: set InstitutionName to \"Site A\"\n"
            "      edit: prefix PatientID with \"SITEA-\"\n"
            "      edit: suffix AccessionNumber with \"-A\"\n"
            "      edit: delete PatientName\n"
            "      edit: copy AccessionNumber to StudyID\n"
            "      edit: replace \"^0+\" in PatientID with \"\"\n"
            "  RESEARCH: priority 0, sent as stored, level study (quiet period 120 s), from rule "
            "'ct-to-pacs'\n");
}

TEST(ExplanationTest, FormatsDiscard) {
  const auto rules = LoadOrFail(kRules);
  ASSERT_TRUE(rules);
  FakeAttributes pr;
  pr.Add("Modality", "CS", {"PR"});
  const std::string text = FormatExplanation(rules->Explain(pr, {}));
  EXPECT_NE(text.find("rule 'drop-presentation-states' (line 5): matched\n"
                      "  \u2713 Modality in [PR, KO]  (seen: PR)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("decision: discarded by rule 'drop-presentation-states' (acknowledged, "
                      "counted, not forwarded)\n"),
            std::string::npos)
      << text;
}

TEST(ExplanationTest, FormatsDefaultAndNoRoute) {
  const auto with_default = LoadOrFail(R"yaml(version: 1
default:
  route: [ARCHIVE]
rules:
  - name: ct
    when: { attribute: Modality, equals: CT }
    route: [PACS]
)yaml");
  ASSERT_TRUE(with_default);
  FakeAttributes absent;
  EXPECT_EQ(FormatExplanation(with_default->Explain(absent, {})),
            "rule 'ct' (line 5): not matched\n"
            "  \u2717 Modality equals CT  (seen: <absent>)\n"
            "\n"
            "decision: 1 route (no rule matched: the default route applies)\n"
            "  ARCHIVE: priority 0, sent as stored, level instance, default route\n");

  const auto without_default = LoadOrFail(R"yaml(version: 1
rules:
  - name: ct
    when: { attribute: Modality, equals: CT }
    route: [PACS]
)yaml");
  ASSERT_TRUE(without_default);
  FakeAttributes empty;
  empty.Add("Modality", "CS", {"  "});
  EXPECT_EQ(FormatExplanation(without_default->Explain(empty, {})),
            "rule 'ct' (line 3): not matched\n"
            "  \u2717 Modality equals CT  (seen: <empty>)\n"
            "\n"
            "decision: no route (no rule matched and there is no default route)\n");
}

TEST(ExplanationTest, RuleWithoutConditionsAndTimeConditions) {
  const auto rules = LoadOrFail(R"yaml(version: 1
rules:
  - name: weekend
    when: { day_of_week: [sat, sun] }
    route: [AI]
  - name: always
    route: [PACS]
)yaml");
  ASSERT_TRUE(rules);
  const std::string text = FormatExplanation(rules->Explain(FakeAttributes{}, {}));
  // received_at is the epoch: a Thursday (or Wednesday west of Greenwich).
  EXPECT_NE(text.find("day of week in [sat, sun]  (seen: "), std::string::npos) << text;
  EXPECT_NE(text.find("(local))\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rule 'always' (line 6): matched (it has no conditions)\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace conduit::rules
