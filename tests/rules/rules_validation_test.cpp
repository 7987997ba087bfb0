// Every mistake in a rules file is reported at once, as file:line:column: message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "rules/rule_set.h"
#include "tests/rules/fake_attributes.h"

namespace conduit::rules {
namespace {

using testing::LoadErrors;
using testing::LoadOrFail;
using testing::TestContext;
using Lines = std::vector<std::string>;

// The expected diagnostics below are long messages split over adjacent string literals, which
// bugprone-suspicious-missing-comma takes for forgotten commas.
// NOLINTBEGIN(bugprone-suspicious-missing-comma)

TEST(RulesValidationTest, ReportsEveryMistakeWithItsPosition) {
  EXPECT_EQ(LoadErrors(R"yaml(version: 2
default:
  route: [ARCHIV]
rules:
  - name: ct-to-pacs
    when:
      all:
        - attribute: Modalty
          equals: CT
        - calling_ae: { in: [] }
        - attribute: PatientID
          regex: "(unclosed"
        - attribute: SliceThickness
          range: { min: 5, max: 1 }
        - attribute: StudyDate
          range: { from: "20241301", to: "20240101" }
        - day_of_week: [sat, funday]
        - time_of_day: { from: "25:00", to: "07:00" }
        - source: [10.0.0.1/8, "not-a-network"]
        - attribute: Modality
          equals: CT
          in: [MR]
        - attribute: (0008,006G)
          present: true
        - attribute: SeriesNumber
          equals: abc
    route:
      - destination: PAC
        transcode: j2k
        priority: high
    levle: study
  - name: ct-to-pacs
    when: { attribute: Modality, equals: CT }
  - name: both
    route: [PACS]
    discard: true
)yaml"),
            (Lines{
                "rules.yaml:1:10: unsupported version '2'; this Conduit reads version 1",
                "rules.yaml:3:11: unknown destination 'ARCHIV' (did you mean 'ARCHIVE'?); known "
                "destinations: AI, ARCHIVE, PACS, RESEARCH",
                "rules.yaml:8:22: attribute: unknown attribute keyword 'Modalty' (did you mean "
                "'Modality'?)",
                "rules.yaml:10:29: in: the list is empty; give at least one item",
                "rules.yaml:12:18: regex: bad regex '(unclosed': missing ): (unclosed",
                "rules.yaml:14:18: impossible range: min 5 is greater than max 1",
                "rules.yaml:16:26: from: '20241301' is not a date YYYYMMDD",
                "rules.yaml:17:30: day_of_week: bad day 'funday'; use mon, tue, wed, thu, fri, "
                "sat, sun",
                "rules.yaml:18:32: from: bad time '25:00'; expected HH:MM or HH:MM:SS from 00:00 "
                "to 23:59:59",
                "rules.yaml:19:20: source: bad network '10.0.0.1/8'; expected an IPv4 or IPv6 "
                "address or network such as 10.0.0.0/8, 192.168.1.7 or fd00::/8, with no bits "
                "set after the prefix",
                "rules.yaml:19:32: source: bad network 'not-a-network'; expected an IPv4 or IPv6 "
                "address or network such as 10.0.0.0/8, 192.168.1.7 or fd00::/8, with no bits "
                "set after the prefix",
                "rules.yaml:22:11: one operator per condition: 'equals' and 'in' are both here; "
                "combine conditions under all: or any:",
                "rules.yaml:23:22: attribute: bad tag '(0008,006G)': the element must be four "
                "hexadecimal digits (or xxEE in a private group)",
                "rules.yaml:26:19: equals: 'abc' is not a number, and SeriesNumber (VR IS) "
                "compares as a number",
                "rules.yaml:28:22: unknown destination 'PAC' (did you mean 'PACS'?); known "
                "destinations: AI, ARCHIVE, PACS, RESEARCH",
                "rules.yaml:29:20: unknown transcode profile 'j2k'; known transcode profiles: "
                "htj2k-lossless, jpegls-lossless",
                "rules.yaml:30:19: priority: expected a whole number, got 'high'",
                "rules.yaml:31:5: unknown key 'levle' in a rule (did you mean 'level'?); allowed "
                "keys: name, when, route, discard, level, quiet_period_seconds, stop",
                "rules.yaml:32:5: rule 'ct-to-pacs' has neither route: nor discard: true; say "
                "where matching instances go, or discard them",
                "rules.yaml:32:11: duplicate rule name 'ct-to-pacs'; it is already used on line 5",
                "rules.yaml:35:5: rule 'both' has both route: and discard: true; a rule either "
                "routes or discards",
            }));
}

TEST(RulesValidationTest, ConditionShapesAndVrMismatches) {
  EXPECT_EQ(LoadErrors(R"yaml(version: 1
rules:
  - name: default
    route: [PACS]
  - name: a
    when:
      attribute: Modality
      range: { min: 1 }
      ignore_case: true
    route: [PACS]
  - name: b
    when:
      - { attribute: StudyDate, range: { min: 1 } }
      - { attribute: SliceThickness, range: { from: "20240101" } }
      - { attribute: PatientName, range: { max: 1 } }
      - { time_of_day: { from: "08:00", to: "08:00" } }
      - { calling_ae: "ABCDEFGHIJKLMNOPQ" }
      - { attribute: Modality, equals: [CT, MR] }
      - { attribute: Modality, equals: 'CT\MR' }
      - { attribute: Modality, equals: "" }
      - { attribute: Modality, creator: X, equals: CT }
      - { equals: CT }
      - { }
      - calling_ae: { equals: CT1, in: [CT2] }
      - { attribute: Modality, equals: CT, calling_ae: CT1 }
      - { not: { not: { not: { attribute: Modality } } } }
      - { attribute: Modality, equal: CT }
      - { all: [] }
      - "Modality == CT"
    route: [PACS]
)yaml"),
            (Lines{
                "rules.yaml:3:11: name: 'default' is reserved for the default route; choose "
                "another name",
                "rules.yaml:8:14: range: Modality has VR CS, which is text, not a number, date or "
                "time",
                "rules.yaml:9:7: ignore_case applies to equals, in, wildcard and regex, not to "
                "range",
                "rules.yaml:13:40: range: StudyDate has VR DA, compared as a date or time: write "
                "range: {from: ..., to: ...}",
                "rules.yaml:14:45: range: SliceThickness has VR DS, a number: write range: {min: "
                "..., max: ...}",
                "rules.yaml:15:42: range: PatientName has VR PN, which is text, not a number, "
                "date or time",
                "rules.yaml:16:24: time_of_day: from and to are the same time; the window would "
                "be empty (leave time_of_day out to match the whole day)",
                "rules.yaml:17:23: equals: 'ABCDEFGHIJKLMNOPQ' is not an AE title (at most 16 "
                "characters)",
                "rules.yaml:18:40: equals: expected one value, got a list; use in: for a list",
                "rules.yaml:19:40: equals: 'CT\\MR' holds a backslash, which separates values; "
                "list the values with in:",
                "rules.yaml:20:40: equals: an empty value never matches (empty attributes match "
                "only 'empty: true')",
                "rules.yaml:21:22: attribute: creator 'X' is given but 'Modality' has no private "
                "tag in (gggg,xxEE) form",
                "rules.yaml:22:9: 'equals' needs the attribute it tests: add attribute: (or "
                "write calling_ae: {equals: ...})",
                "rules.yaml:23:9: a condition needs one of: all, any, not, attribute, calling_ae, "
                "called_ae, source, time_of_day, day_of_week",
                "rules.yaml:24:36: calling_ae: give exactly one of equals, in, wildcard, regex",
                "rules.yaml:25:44: one condition per mapping: 'attribute' and 'calling_ae' are "
                "both here; combine them under all: or any:",
                "rules.yaml:26:30: the condition on 'Modality' needs one of: equals, in, "
                "wildcard, regex, range, present, absent, empty",
                "rules.yaml:27:32: unknown key 'equal' in a condition (did you mean 'equals'?); "
                "allowed keys: all, any, not, attribute, calling_ae, called_ae, source, "
                "time_of_day, day_of_week, equals, in, wildcard, regex, range, present, absent, "
                "empty, creator, ignore_case",
                "rules.yaml:28:16: all: the list is empty; give at least one item",
                "rules.yaml:29:9: expected a mapping of keys in a condition, got a single value",
            }));
}

TEST(RulesValidationTest, RoutesAndEdits) {
  EXPECT_EQ(LoadErrors(R"yaml(version: 1
rules:
  - name: bad-edits
    route:
      - destination: PACS
        edits:
          - set: { attribute: InstitutionNam, value: X }
          - prefix: { attribute: PatientID }
          - replace: { attribute: PatientID, regex: "a(b", with: "" }
          - replace: { attribute: PatientID, regex: "a(b)", with: "\\2" }
          - rename: { attribute: PatientID }
          - set: { attribute: RequestAttributesSequence, value: X }
          - prefix: { attribute: RequestAttributesSequence/ScheduledProcedureStepID, value: X }
          - prefix: { attribute: PatientID, value: 'A\B' }
          - { set: { attribute: StudyID, value: A }, delete: { attribute: PatientName } }
      - [PACS]
    level: instance
    quiet_period_seconds: 30
  - when: { attribute: Modality, equals: CT }
    route: PACS
  - name: c
    discard: true
    level: study
    stop: maybe
  - "just a string"
  - name: d
    route: [PACS, AI, PACS]
    level: hourly
  - name: e
    route: []
)yaml"),
            (Lines{
                "rules.yaml:7:31: attribute: unknown attribute keyword 'InstitutionNam' (did you "
                "mean 'InstitutionName'?)",
                "rules.yaml:8:21: prefix needs value:",
                "rules.yaml:9:53: regex: bad regex 'a(b': missing ): a(b",
                "rules.yaml:10:67: with: Rewrite schema requests 2 matches, but the regexp only "
                "has 1 parenthesized subexpressions.",
                "rules.yaml:11:13: unknown key 'rename' in an edit; allowed keys: set, delete, "
                "prefix, suffix, copy, replace",
                "rules.yaml:12:31: attribute: 'RequestAttributesSequence' is a sequence; only "
                "delete applies to a whole sequence",
                "rules.yaml:13:34: attribute: 'RequestAttributesSequence/ScheduledProcedureStepID'"
                " goes through a sequence without an item index; write e.g. Sequence[0]/Attribute"
                " (only delete applies to every item)",
                "rules.yaml:14:52: prefix value: give some text, without a backslash (which "
                "separates values)",
                "rules.yaml:15:54: one edit per list item: 'set' and 'delete' are both here; "
                "start each with '-'",
                "rules.yaml:16:9: a route is a destination name or a mapping with destination:, "
                "got a list",
                "rules.yaml:18:5: quiet_period_seconds applies only with level: series or level: "
                "study",
                "rules.yaml:19:5: a rule needs a name: (unique, used in logs, metrics and explain)",
                "rules.yaml:20:12: route: expected a list of destinations, e.g. [PACS] or "
                "[{destination: PACS}], got a single value",
                "rules.yaml:23:5: level has no effect on a rule that discards",
                "rules.yaml:24:11: stop: expected true or false, got 'maybe'",
                "rules.yaml:25:5: expected a mapping of keys in a rule, got a single value",
                "rules.yaml:27:23: destination 'PACS' is listed twice in this route (first on "
                "line 27)",
                "rules.yaml:28:12: level: unknown level 'hourly'; use instance, series or study",
                "rules.yaml:30:12: route: the list is empty; give at least one item",
            }));
}

TEST(RulesValidationTest, VersionAndTopLevel) {
  EXPECT_EQ(LoadErrors(""),
            (Lines{"rules.yaml:1:1: version is missing: a rules file starts with 'version: 1'"}));
  EXPECT_EQ(LoadErrors("# only a comment\n"),
            (Lines{"rules.yaml:1:1: version is missing: a rules file starts with 'version: 1'"}));
  EXPECT_EQ(LoadErrors("rules: []\n"),
            (Lines{"rules.yaml:1:1: version is missing: a rules file starts with 'version: 1'"}));
  EXPECT_EQ(LoadErrors("version: [1]\n"),
            (Lines{"rules.yaml:1:10: unsupported version a list; this Conduit reads version 1"}));
  EXPECT_EQ(LoadErrors("- a\n"),
            (Lines{"rules.yaml:1:1: expected a mapping of keys at the top level, got a list"}));
  EXPECT_EQ(LoadErrors("version: 1\nrule: []\nversion: 1\n"),
            (Lines{"rules.yaml:2:1: unknown key 'rule' at the top level (did you mean 'rules'?); "
                   "allowed keys: version, default, rules",
                   "rules.yaml:3:1: duplicate key 'version'; it is already set on line 1"}));
  EXPECT_EQ(LoadErrors("version: 1\nrules: {name: a}\n"),
            (Lines{"rules.yaml:2:8: rules: expected a list of rules (each starting with '- "
                   "name:'), got a mapping"}));
  EXPECT_EQ(LoadErrors("version: 1\ndefault: [ARCHIVE]\n"),
            (Lines{"rules.yaml:2:10: expected a mapping of keys in 'default', got a list"}));
  EXPECT_EQ(LoadErrors("version: 1\ndefault: {level: study}\n"),
            (Lines{"rules.yaml:2:10: default: needs route: (where instances that no rule "
                   "matched go)"}));
  EXPECT_EQ(LoadErrors("version: 1\n---\nrules: []\n"),
            (Lines{"rules.yaml:3:1: the file must hold one YAML document; remove the '---' "
                   "separator and merge what follows into the first"}));
}

TEST(RulesValidationTest, YamlSyntaxErrorIsOneDiagnosticWithItsMark) {
  EXPECT_EQ(LoadErrors("version: 1\nrules:\n  - name: [a\n"),
            (Lines{"rules.yaml:4:1: YAML syntax error: end of sequence flow not found"}));
  EXPECT_EQ(LoadErrors("version: 1\n  rules: x\n"),
            (Lines{"rules.yaml:2:8: YAML syntax error: illegal map value"}));
}

TEST(RulesValidationTest, InputThatMakesYamlCppLoadAllLoopForeverIsAnswered) {
  // yaml-cpp 0.7's LoadAll allocates without end on these (jbeder/yaml-cpp#1040).
  EXPECT_EQ(LoadErrors(",|"),
            (Lines{"rules.yaml:1:1: version is missing: a rules file starts with 'version: 1'"}));
  EXPECT_EQ(LoadErrors(","),
            (Lines{"rules.yaml:1:1: version is missing: a rules file starts with 'version: 1'"}));
  EXPECT_EQ(LoadErrors("[:"), (Lines{"rules.yaml:1:2: YAML syntax error: unknown token"}));
  // A syntax error in a second document is still a syntax error.
  EXPECT_EQ(LoadErrors("version: 1\n---\n["),
            (Lines{"rules.yaml:3:1: YAML syntax error: end of sequence flow not found"}));
  // An empty second document is harmless.
  EXPECT_TRUE(LoadOrFail("version: 1\n---\n"));
}

TEST(RulesValidationTest, TranscodeAndDestinationsWhenNoneAreConfigured) {
  EXPECT_EQ(LoadErrors("version: 1\nrules:\n  - name: a\n    route:\n      - destination: PACS\n"
                       "        transcode: htj2k-lossless\n",
                       RuleContext{{"PACS"}, {}}),
            (Lines{"rules.yaml:6:20: unknown transcode profile 'htj2k-lossless'; no transcode "
                   "profiles are configured"}));
  EXPECT_EQ(LoadErrors("version: 1\nrules:\n  - name: a\n    route: [PACS]\n", RuleContext{}),
            (Lines{"rules.yaml:4:13: unknown destination 'PACS'; no destinations are configured"}));
}

TEST(RulesValidationTest, NestingIsBounded) {
  std::string condition = "{attribute: Modality, equals: CT}";
  for (int i = 0; i < 20; ++i) {
    condition.insert(0, "{not: ").append("}");
  }
  const Lines errors = LoadErrors("version: 1\nrules:\n  - name: a\n    when: " + condition +
                                  "\n    route: [PACS]\n");
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0], "rules.yaml:4:113: conditions are nested deeper than 16 levels");
}

TEST(RulesValidationTest, AliasBombsAreRefused) {
  // Each level doubles the tree (yaml-cpp shares aliased nodes, the reader would not).
  std::string yaml = "version: 1\nanchors:\n";
  yaml = "version: 1\nrules:\n  - name: a\n    route: [PACS]\n    when:\n      any:\n";
  yaml += "        - &c0 {attribute: Modality, equals: CT}\n";
  for (int i = 1; i <= 24; ++i) {
    yaml += "        - &c" + std::to_string(i) + " {any: [*c" + std::to_string(i - 1) + ", *c" +
            std::to_string(i - 1) + "]}\n";
  }
  const Lines errors = LoadErrors(yaml);
  ASSERT_FALSE(errors.empty());
  bool too_large = false;
  for (const std::string& error : errors) {
    too_large = too_large || error.find("too large") != std::string::npos;
  }
  EXPECT_TRUE(too_large) << errors.front();
}

TEST(RulesValidationTest, CopyCreatorGoesToThePrivatePath) {
  EXPECT_TRUE(LoadOrFail(R"yaml(version: 1
rules:
  - name: a
    route:
      - destination: PACS
        edits:
          - copy: { from: "(0019,xx10)", to: StudyID, creator: GEMS_ACQU_01 }
          - set: { attribute: "(0019,xx10)", creator: GEMS_ACQU_01, value: "" }
          - delete: { attribute: RequestAttributesSequence/ScheduledProcedureStepID }
          - prefix: { attribute: "RequestAttributesSequence[0]/ScheduledProcedureStepID", value: X }
)yaml"));
}

TEST(RulesValidationTest, UnreadableFileIsOneDiagnosticWithoutLine) {
  const RuleSetResult missing = LoadRulesFile("/nonexistent/rules.yaml", TestContext());
  const auto* errors = std::get_if<std::vector<Diagnostic>>(&missing);
  ASSERT_NE(errors, nullptr);
  ASSERT_EQ(errors->size(), 1U);
  EXPECT_EQ((*errors)[0].line, 0);
  EXPECT_EQ((*errors)[0].ToString(),
            "/nonexistent/rules.yaml: cannot read the rules: No such file or directory");

  const RuleSetResult directory = LoadRulesFile("/tmp", TestContext());
  ASSERT_TRUE(std::holds_alternative<std::vector<Diagnostic>>(directory));
  EXPECT_EQ(std::get<std::vector<Diagnostic>>(directory)[0].ToString(),
            "/tmp: cannot read the rules: it is a directory");
}

TEST(RulesValidationTest, LoadsAFileAndNamesItInDiagnostics) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("conduit_rules_test_" + std::to_string(::getpid()) + ".yaml");
  {
    std::ofstream file(path);
    file << "version: 1\nrules:\n  - name: a\n    route: [PACS]\n";
  }
  EXPECT_TRUE(
      std::holds_alternative<std::shared_ptr<const RuleSet>>(LoadRulesFile(path, TestContext())));
  {
    std::ofstream file(path);
    file << "version: 1\nrules:\n  - name: a\n    route: [NOWHERE]\n";
  }
  const RuleSetResult result = LoadRulesFile(path, TestContext());
  std::filesystem::remove(path);
  ASSERT_TRUE(std::holds_alternative<std::vector<Diagnostic>>(result));
  EXPECT_EQ(std::get<std::vector<Diagnostic>>(result)[0].ToString(),
            path.string() +
                ":4:13: unknown destination 'NOWHERE'; known destinations: AI, ARCHIVE, PACS, "
                "RESEARCH");
}

TEST(RulesValidationTest, TheDocumentedExampleLoads) {
  EXPECT_TRUE(LoadOrFail(R"yaml(version: 1
default:                 # optional: routes when no rule matched (same shape as a rule's route)
  route: [ARCHIVE]
rules:
  - name: ct-to-pacs     # required, unique
    when:                # optional (absent = always)
      all:
        - attribute: Modality
          equals: CT
        - calling_ae: { in: [CT1, CT2] }
    route:               # a list; an item is a destination name or a mapping:
      - destination: PACS
        priority: 10               # integer, higher first; default 0
        transcode: htj2k-lossless  # a transcode profile name (checked against RuleContext)
        edits:
          - set: { attribute: InstitutionName, value: "Site A" }
          - prefix: { attribute: PatientID, value: "SITEA-" }
          - suffix: { attribute: AccessionNumber, value: "-A" }
          - delete: { attribute: PatientName }
          - copy: { from: AccessionNumber, to: StudyID }
          - replace: { attribute: PatientID, regex: "^0+", with: "" }
      - RESEARCH
    level: study         # instance (default) | series | study
    quiet_period_seconds: 120   # for series/study, default 60
    stop: true           # no further rules are evaluated after this one matches
  - name: drop-presentation-states
    when: { attribute: Modality, in: [PR, KO] }
    discard: true        # acknowledged, not forwarded, counted; discard implies stop
)yaml"));
}

// NOLINTEND(bugprone-suspicious-missing-comma)

}  // namespace
}  // namespace conduit::rules
