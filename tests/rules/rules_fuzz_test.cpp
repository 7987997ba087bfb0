// Fuzz-style robustness: random bytes, byte-level mutations of a valid file, and random YAML
// trees built from the grammar's own keys and values. The loader must answer each with
// diagnostics or a rule set — never throw, never crash — and whatever loads must evaluate,
// explain and edit without trouble. Deterministic (fixed seeds) so a failure reproduces; run it
// under -fsanitize=address,undefined to check memory too.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "rules/rule_set.h"
#include "tests/rules/fake_attributes.h"

namespace conduit::rules {
namespace {

using testing::FakeAttributes;
using testing::TestContext;

constexpr int kRandomByteStrings = 3000;
constexpr int kMutatedFiles = 3000;
constexpr int kRandomTrees = 3000;

// CONDUIT_RULES_FUZZ_ROUNDS=N runs N times as many cases (for a long sanitizer run).
int Rounds() {
  const char* rounds = std::getenv("CONDUIT_RULES_FUZZ_ROUNDS");
  return rounds == nullptr ? 1 : std::max(1, std::atoi(rounds));
}

constexpr std::string_view kValidFile = R"yaml(version: 1
default:
  route: [ARCHIVE]
rules:
  - name: ct-to-pacs
    when:
      all:
        - attribute: Modality
          equals: CT
        - calling_ae: { in: [CT1, CT2] }
        - any:
            - { attribute: StudyTime, range: { from: "2200", to: "0600" } }
            - { time_of_day: { from: "18:00", to: "07:00" } }
            - { day_of_week: [sat, sun] }
        - not: { source: [10.0.0.0/8, "fd00::/8"] }
        - { attribute: "(0019,xx10)", creator: GEMS_ACQU_01, regex: "F.*", ignore_case: true }
    route:
      - destination: PACS
        priority: 10
        transcode: htj2k-lossless
        edits:
          - set: { attribute: InstitutionName, value: "Site A" }
          - prefix: { attribute: PatientID, value: "SITEA-" }
          - replace: { attribute: PatientID, regex: "^0+", with: "" }
          - copy: { from: AccessionNumber, to: StudyID }
      - RESEARCH
    level: study
    quiet_period_seconds: 120
    stop: true
  - name: drop
    when: { attribute: Modality, in: [PR, KO] }
    discard: true
)yaml";

// Everything the grammar knows, plus near misses.
constexpr auto kKeys =
    std::to_array<std::string_view>({"version",     "default",     "rules",
                                     "name",        "when",        "route",
                                     "discard",     "level",       "quiet_period_seconds",
                                     "stop",        "destination", "priority",
                                     "transcode",   "edits",       "all",
                                     "any",         "not",         "attribute",
                                     "calling_ae",  "called_ae",   "source",
                                     "time_of_day", "day_of_week", "equals",
                                     "in",          "wildcard",    "regex",
                                     "range",       "present",     "absent",
                                     "empty",       "creator",     "ignore_case",
                                     "min",         "max",         "from",
                                     "to",          "set",         "delete",
                                     "prefix",      "suffix",      "copy",
                                     "replace",     "value",       "with",
                                     "equal",       "<<",          ""});
constexpr auto kScalars =
    std::to_array<std::string_view>({"1",
                                     "2",
                                     "0",
                                     "-1",
                                     "1.5",
                                     "1e400",
                                     "true",
                                     "false",
                                     "yes",
                                     "~",
                                     "",
                                     " ",
                                     "CT",
                                     "MR",
                                     "PR",
                                     "Modality",
                                     "PatientID",
                                     "StudyDate",
                                     "StudyTime",
                                     "AcquisitionDateTime",
                                     "SliceThickness",
                                     "RequestAttributesSequence/ScheduledProcedureStepID",
                                     "ReferencedStudySequence[0].(0008,1155)",
                                     "(0008,0060)",
                                     "0008,0060",
                                     "(0019,xx10)",
                                     "(0019,1010)",
                                     "(FFFE,E000)",
                                     "Modalty",
                                     "GEMS_ACQU_01",
                                     "PACS",
                                     "ARCHIVE",
                                     "RESEARCH",
                                     "AI",
                                     "NOWHERE",
                                     "htj2k-lossless",
                                     "study",
                                     "series",
                                     "instance",
                                     "20240101",
                                     "2024",
                                     "20241301",
                                     "0800",
                                     "18:00",
                                     "25:00",
                                     "sat",
                                     "sun",
                                     "funday",
                                     "10.0.0.0/8",
                                     "fd00::/8",
                                     "10.0.0.1/8",
                                     "*",
                                     "?",
                                     "HEAD*",
                                     "(",
                                     "^0+",
                                     "\\1",
                                     "\\9",
                                     "a\\b",
                                     "x",
                                     "default",
                                     "ct-to-pacs",
                                     "-2147483649",
                                     "99999999999999999999"});

class Fuzzer {
 public:
  explicit Fuzzer(std::uint32_t seed) : random_(seed) {}

  int Below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }
  bool Chance(int percent) { return Below(100) < percent; }

  std::string RandomBytes() {
    static constexpr std::string_view kSyntax = "-:{}[],&*!|>'\"#%@?\n\t \\";
    std::string bytes;
    const int length = Below(200);
    for (int i = 0; i < length; ++i) {
      bytes += Chance(50)
                   ? kSyntax[static_cast<std::size_t>(Below(static_cast<int>(kSyntax.size())))]
                   : static_cast<char>(Below(256));
    }
    return bytes;
  }

  std::string Mutate(std::string_view text) {
    std::string mutated(text);
    const int edits = 1 + Below(8);
    for (int i = 0; i < edits && !mutated.empty(); ++i) {
      const auto at = static_cast<std::size_t>(Below(static_cast<int>(mutated.size())));
      switch (Below(4)) {
        case 0:
          mutated[at] = static_cast<char>(Below(256));
          break;
        case 1:
          mutated.erase(at, 1 + static_cast<std::size_t>(Below(10)));
          break;
        case 2:
          mutated.insert(at, std::string(Word(kScalars)));
          break;
        default:
          mutated.insert(at, 1, "-:{}[], \n'\"&*"[Below(14)]);
          break;
      }
    }
    return mutated;
  }

  // A document shaped like a rules file, with random nodes swapped in at any level.
  YAML::Node Document() {
    YAML::Node document(YAML::NodeType::Map);
    if (!Chance(5)) {
      document["version"] = Chance(90) ? "1" : std::string(Word(kScalars));
    }
    if (Chance(40)) {
      YAML::Node fallback(YAML::NodeType::Map);
      fallback["route"] = Routes(2);
      document["default"] = Maybe(fallback, 2);
    }
    YAML::Node rules(YAML::NodeType::Sequence);
    const int count = Below(6);
    for (int i = 0; i < count; ++i) {
      rules.push_back(Maybe(Rule(), 1));
    }
    document["rules"] = Maybe(rules, 1);
    if (Chance(10)) {
      document[std::string(Word(kKeys))] = Any(2);
    }
    return Maybe(document, 0);
  }

 private:
  template <std::size_t N>
  std::string_view Word(const std::array<std::string_view, N>& words) {
    return words[static_cast<std::size_t>(Below(static_cast<int>(N)))];
  }

  YAML::Node Scalar() {
    if (Chance(90)) {
      return YAML::Node(std::string(Word(kScalars)));
    }
    std::string text;
    const int length = Below(12);
    for (int i = 0; i < length; ++i) {
      text += static_cast<char>(32 + Below(95));
    }
    return YAML::Node(text);
  }

  // Anything at all: scalars, lists and mappings with grammar keys.
  YAML::Node Any(int depth) {
    const int kind = depth > 4 ? 0 : Below(4);
    if (kind == 0) {
      return Scalar();
    }
    if (kind == 1) {
      return YAML::Node(YAML::NodeType::Null);
    }
    if (kind == 2) {
      YAML::Node list(YAML::NodeType::Sequence);
      const int count = Below(4);
      for (int i = 0; i < count; ++i) {
        list.push_back(Any(depth + 1));
      }
      return list;
    }
    YAML::Node map(YAML::NodeType::Map);
    const int count = Below(4);
    for (int i = 0; i < count; ++i) {
      map[std::string(Word(kKeys))] = Any(depth + 1);
    }
    return map;
  }

  // `node` most of the time; now and then something random instead.
  YAML::Node Maybe(const YAML::Node& node, int depth) { return Chance(8) ? Any(depth) : node; }

  YAML::Node Rule() {
    YAML::Node rule(YAML::NodeType::Map);
    if (!Chance(5)) {
      rule["name"] = Chance(70) ? "rule" + std::to_string(Below(8)) : std::string(Word(kScalars));
    }
    if (Chance(80)) {
      rule["when"] = Chance(20) ? Conditions(1) : Condition(1);
    }
    if (Chance(85)) {
      rule["route"] = Routes(2);
    }
    if (Chance(15)) {
      rule["discard"] = Chance(80) ? "true" : std::string(Word(kScalars));
    }
    if (Chance(20)) {
      rule["level"] = Chance(70) ? "study" : std::string(Word(kScalars));
    }
    if (Chance(15)) {
      rule["quiet_period_seconds"] = Scalar();
    }
    if (Chance(20)) {
      rule["stop"] = Chance(70) ? "true" : std::string(Word(kScalars));
    }
    if (Chance(5)) {
      rule[std::string(Word(kKeys))] = Any(2);
    }
    return rule;
  }

  YAML::Node Conditions(int depth) {
    YAML::Node list(YAML::NodeType::Sequence);
    const int count = Below(4);
    for (int i = 0; i < count; ++i) {
      list.push_back(Condition(depth + 1));
    }
    return Maybe(list, depth);
  }

  YAML::Node Condition(int depth) {
    YAML::Node condition(YAML::NodeType::Map);
    switch (depth > 6 ? 3 : Below(9)) {
      case 0:
        condition["all"] = Conditions(depth);
        break;
      case 1:
        condition["any"] = Conditions(depth);
        break;
      case 2:
        condition["not"] = Condition(depth + 1);
        break;
      case 3:
      case 4: {
        condition["attribute"] = Scalar();
        static constexpr auto kOperators = std::to_array<std::string_view>(
            {"equals", "in", "wildcard", "regex", "range", "present", "absent", "empty"});
        const std::string op(Word(kOperators));
        if (op == "in") {
          YAML::Node values(YAML::NodeType::Sequence);
          values.push_back(Scalar());
          values.push_back(Scalar());
          condition[op] = Maybe(values, depth);
        } else if (op == "range") {
          YAML::Node range(YAML::NodeType::Map);
          range[Chance(50) ? "min" : "from"] = Scalar();
          range[Chance(50) ? "max" : "to"] = Scalar();
          condition[op] = Maybe(range, depth);
        } else {
          condition[op] = Scalar();
        }
        if (Chance(20)) {
          condition["ignore_case"] = Scalar();
        }
        if (Chance(15)) {
          condition["creator"] = Scalar();
        }
        break;
      }
      case 5:
        condition[Chance(50) ? "calling_ae" : "called_ae"] = Chance(50) ? Scalar() : Any(depth);
        break;
      case 6: {
        YAML::Node networks(YAML::NodeType::Sequence);
        networks.push_back(Scalar());
        condition["source"] = Maybe(networks, depth);
        break;
      }
      case 7: {
        YAML::Node window(YAML::NodeType::Map);
        window["from"] = Scalar();
        window["to"] = Scalar();
        condition["time_of_day"] = Maybe(window, depth);
        break;
      }
      default: {
        YAML::Node days(YAML::NodeType::Sequence);
        days.push_back(Scalar());
        condition["day_of_week"] = Maybe(days, depth);
        break;
      }
    }
    if (Chance(5)) {
      condition[std::string(Word(kKeys))] = Any(depth + 1);
    }
    return Maybe(condition, depth);
  }

  YAML::Node Routes(int depth) {
    YAML::Node routes(YAML::NodeType::Sequence);
    const int count = Below(4);
    for (int i = 0; i < count; ++i) {
      if (Chance(40)) {
        routes.push_back(Scalar());
        continue;
      }
      YAML::Node route(YAML::NodeType::Map);
      route["destination"] = Scalar();
      if (Chance(30)) {
        route["priority"] = Scalar();
      }
      if (Chance(20)) {
        route["transcode"] = Scalar();
      }
      if (Chance(40)) {
        YAML::Node edits(YAML::NodeType::Sequence);
        static constexpr auto kEdits = std::to_array<std::string_view>(
            {"set", "delete", "prefix", "suffix", "copy", "replace"});
        const int edit_count = Below(4);
        for (int e = 0; e < edit_count; ++e) {
          YAML::Node body(YAML::NodeType::Map);
          body[Chance(80) ? "attribute" : "from"] = Scalar();
          body[Chance(50) ? "value" : Chance(50) ? "regex" : "to"] = Scalar();
          if (Chance(40)) {
            body["with"] = Scalar();
          }
          YAML::Node edit(YAML::NodeType::Map);
          edit[std::string(Word(kEdits))] = Maybe(body, depth + 2);
          edits.push_back(Maybe(edit, depth + 1));
        }
        route["edits"] = edits;
      }
      routes.push_back(Maybe(route, depth + 1));
    }
    return Maybe(routes, depth);
  }

  std::mt19937 random_;
};

// Loads `text`; whatever loads is exercised. Returns whether it loaded.
bool Exercise(const std::string& text, Fuzzer& fuzzer) {
  RuleSetResult result;
  EXPECT_NO_THROW(result = LoadRulesText(text, "fuzz.yaml", TestContext())) << text;
  if (const auto* errors = std::get_if<std::vector<Diagnostic>>(&result)) {
    EXPECT_FALSE(errors->empty()) << text;
    for (const Diagnostic& error : *errors) {
      EXPECT_GE(error.line, 1) << text;
      EXPECT_FALSE(error.message.empty()) << text;
    }
    return false;
  }
  const auto& rules = std::get<std::shared_ptr<const RuleSet>>(result);
  EXPECT_NE(rules, nullptr);
  if (!rules) {
    return false;
  }
  FakeAttributes attributes;
  attributes.Add("Modality", "CS", {fuzzer.Chance(50) ? "CT" : "PR"})
      .Add("PatientID", "LO", {"000123"})
      .Add("StudyTime", "TM", {"2330"})
      .Add("SliceThickness", "DS", {"x", "1"})
      .Add("StudyDate", "DA", {})
      .Add("(0019,xx10)", "UN", {"FAST"}, "GEMS_ACQU_01");
  AssociationFacts facts;
  facts.calling_ae = "CT1";
  facts.peer_address = fuzzer.Chance(50) ? "10.1.2.3" : "fd00::1";
  facts.received_at =
      std::chrono::system_clock::time_point(std::chrono::seconds(fuzzer.Below(7 * 86'400)));
  const RoutingDecision decision = rules->Evaluate(attributes, facts);
  const Explanation explanation = rules->Explain(attributes, facts);
  EXPECT_EQ(explanation.decision.routes.size(), decision.routes.size()) << text;
  EXPECT_FALSE(FormatExplanation(explanation).empty());
  for (const Route& route : decision.routes) {
    FakeAttributes copy = attributes;
    ApplyEdits(route.edits, copy);
  }
  return true;
}

TEST(RulesFuzzTest, RandomBytesNeverCrashTheLoader) {
  Fuzzer fuzzer(20240601);
  for (int i = 0; i < kRandomByteStrings * Rounds(); ++i) {
    Exercise(fuzzer.RandomBytes(), fuzzer);
  }
}

TEST(RulesFuzzTest, MutatedRulesFilesNeverCrashTheLoader) {
  Fuzzer fuzzer(7);
  ASSERT_TRUE(Exercise(std::string(kValidFile), fuzzer));
  int loaded = 0;
  for (int i = 0; i < kMutatedFiles * Rounds(); ++i) {
    loaded += Exercise(fuzzer.Mutate(kValidFile), fuzzer) ? 1 : 0;
  }
  EXPECT_GT(loaded, 0);  // some mutations are harmless: evaluation got exercised too
}

TEST(RulesFuzzTest, RandomGrammarTreesNeverCrashTheLoader) {
  Fuzzer fuzzer(42);
  int loaded = 0;
  for (int i = 0; i < kRandomTrees * Rounds(); ++i) {
    YAML::Emitter emitter;
    emitter << fuzzer.Document();
    ASSERT_TRUE(emitter.good()) << emitter.GetLastError();
    loaded += Exercise(emitter.c_str(), fuzzer) ? 1 : 0;
  }
  EXPECT_GT(loaded, 10);
  EXPECT_LT(loaded, kRandomTrees * Rounds());
}

}  // namespace
}  // namespace conduit::rules
