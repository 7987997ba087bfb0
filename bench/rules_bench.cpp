// Rules engine micro-benchmarks: a realistic 200-rule file (modality, AE, body part, regex,
// wildcard, range, time and nested rules; most do not match, a few do), generated here, evaluated
// against CT and MR headers of about 40 attributes each. The router evaluates once per received
// instance, so the target is at least 200,000 evaluations per second on one core (<= 5 µs).
//
//   build/bin/conduit_rules_bench
//   build/bin/conduit_rules_bench --benchmark_filter=Evaluate --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "rules/attribute_path_parser.h"
#include "rules/rule_set.h"

namespace {

using conduit::rules::AssociationFacts;
using conduit::rules::AttributePath;
using conduit::rules::AttributeSource;
using conduit::rules::AttributeValues;
using conduit::rules::RuleContext;
using conduit::rules::RuleSet;

constexpr int kRules = 200;

// A parsed header as the router's source would present it: values as strings with their
// padding, found by path. The source is searched linearly, as a DICOM item's element list is.
class HeaderSource : public AttributeSource {
 public:
  HeaderSource& Add(const std::string& path, std::string vr, std::vector<std::string> values) {
    auto parsed = conduit::rules::ParseAttributePath(path, "");
    if (const auto* error = std::get_if<std::string>(&parsed)) {
      std::fprintf(stderr, "bad path %s: %s\n", path.c_str(), error->c_str());
      std::abort();
    }
    entries_.push_back({std::get<conduit::rules::ParsedAttributePath>(parsed).path,
                        {std::move(vr), std::move(values)}});
    return *this;
  }

  std::optional<AttributeValues> Find(const AttributePath& path) const override {
    // Like a dataset's element list: compare tags first, the whole path only on a hit.
    for (const auto& [entry_path, values] : entries_) {
      if (entry_path.steps.front().tag == path.steps.front().tag && entry_path == path) {
        return values;
      }
    }
    return std::nullopt;
  }

  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<AttributePath, AttributeValues>> entries_;
};

// The attributes every image header carries, then the modality-specific ones.
HeaderSource CommonHeader(const std::string& modality) {
  HeaderSource source;
  source
      .Add("SOPClassUID", "UI",
           {modality == "CT" ? std::string("1.2.840.10008.5.1.4.1.1.2\0", 26)
                             : std::string("1.2.840.10008.5.1.4.1.1.4\0", 26)})
      .Add("SOPInstanceUID", "UI", {"1.2.826.0.1.3680043.8.498.12345678901234567890.1"})
      .Add("StudyInstanceUID", "UI", {"1.2.826.0.1.3680043.8.498.1111111111"})
      .Add("SeriesInstanceUID", "UI", {"1.2.826.0.1.3680043.8.498.2222222222"})
      .Add("ImageType", "CS", {"ORIGINAL", "PRIMARY", "AXIAL"})
      .Add("StudyDate", "DA", {"20240613"})
      .Add("SeriesDate", "DA", {"20240613"})
      .Add("StudyTime", "TM", {"143012.123"})
      .Add("SeriesTime", "TM", {"143512"})
      .Add("AccessionNumber", "SH", {"ACC20240613001"})
      .Add("Modality", "CS", {modality})
      .Add("Manufacturer", "LO", {modality == "CT" ? "SIEMENS " : "GE MEDICAL SYSTEMS"})
      .Add("InstitutionName", "LO", {"General Hospital"})
      .Add("ReferringPhysicianName", "PN", {"House^Gregory"})
      .Add("StationName", "SH", {modality == "CT" ? "CT01" : "MR03"})
      .Add("StudyDescription", "LO", {modality == "CT" ? "CT HEAD WO CONTRAST" : "MR BRAIN W/WO"})
      .Add("SeriesDescription", "LO", {modality == "CT" ? "AXIAL 5MM" : "T1 SAG"})
      .Add("OperatorsName", "PN", {"Tech^One"})
      .Add("ManufacturerModelName", "LO", {modality == "CT" ? "SOMATOM Force" : "SIGNA Premier"})
      .Add("PatientName", "PN", {"Doe^Jane^^^"})
      .Add("PatientID", "LO", {"00012345"})
      .Add("PatientBirthDate", "DA", {"19700101"})
      .Add("PatientSex", "CS", {"F "})
      .Add("PatientAge", "AS", {"054Y"})
      .Add("BodyPartExamined", "CS", {modality == "CT" ? "HEAD" : "BRAIN "})
      .Add("ProtocolName", "LO", {modality == "CT" ? "Routine Head" : "Brain Routine"})
      .Add("StudyID", "SH", {"1 "})
      .Add("SeriesNumber", "IS", {"3 "})
      .Add("InstanceNumber", "IS", {"42"})
      .Add("ImagePositionPatient", "DS", {"-125.000", "-125.000", "42.500"})
      .Add("ImageOrientationPatient", "DS", {"1", "0", "0", "0", "1", "0"})
      .Add("FrameOfReferenceUID", "UI", {"1.2.826.0.1.3680043.8.498.3333333333"})
      .Add("SamplesPerPixel", "US", {"1"})
      .Add("PhotometricInterpretation", "CS", {"MONOCHROME2 "})
      .Add("Rows", "US", {"512"})
      .Add("Columns", "US", {"512"})
      .Add("PixelSpacing", "DS", {"0.488281", "0.488281"})
      .Add("BitsAllocated", "US", {"16"})
      .Add("BitsStored", "US", {"12"});
  return source;
}

HeaderSource CtHeader() {
  HeaderSource source = CommonHeader("CT");
  source.Add("SliceThickness", "DS", {"5.0 "})
      .Add("KVP", "DS", {"120"})
      .Add("ConvolutionKernel", "SH", {"Hr40 "})
      .Add("RescaleIntercept", "DS", {"-1024"});
  return source;
}

HeaderSource MrHeader() {
  HeaderSource source = CommonHeader("MR");
  source.Add("SliceThickness", "DS", {"1.2"})
      .Add("MagneticFieldStrength", "DS", {"3"})
      .Add("RepetitionTime", "DS", {"2300"})
      .Add("EchoTime", "DS", {"2.98"});
  return source;
}

std::string Destination(int i) { return "D" + std::to_string(i % 20); }

void Replace(std::string& text, std::string_view placeholder, std::string_view value) {
  for (std::size_t at = text.find(placeholder); at != std::string::npos;
       at = text.find(placeholder, at + value.size())) {
    text.replace(at, placeholder.size(), value);
  }
}

// 200 rules in the proportions a real site might have. `i` varies constants so no two rules are
// alike; only the handful marked "matches" fire for the CT or MR headers above.
std::string GenerateRules() {
  static constexpr std::array<const char*, 12> kOtherModalities = {
      "NM", "PT", "US", "XA", "DX", "CR", "MG", "RF", "OT", "SC", "ECG", "SR"};
  static constexpr std::array<const char*, 8> kBodyParts = {
      "CHEST", "ABDOMEN", "PELVIS", "KNEE", "SPINE", "HAND", "FOOT", "SHOULDER"};
  std::string yaml = "version: 1\ndefault:\n  route: [ARCHIVE]\nrules:\n";
  const auto rule = [&](std::string_view name, std::string_view when, std::string_view route) {
    for (const std::string_view part :
         {std::string_view("  - name: "), name, std::string_view("\n    when: "), when,
          std::string_view("\n    route: "), route, std::string_view("\n")}) {
      yaml += part;
    }
  };
  int n = 0;
  // Matching rules, spread through the file so evaluation cannot stop early.
  const auto matching = [&](int at) {
    switch (at) {
      case 20:
        rule("ct-to-pacs",
             "{all: [{attribute: Modality, equals: CT}, {calling_ae: {in: [CT01, CT02, CTSCAN]}}]}",
             "[{destination: PACS, priority: 10}]");
        return true;
      case 60:
        rule("mr-to-pacs", "{attribute: Modality, in: [MR]}",
             "[{destination: PACS, priority: 10}]");
        return true;
      case 110:
        rule("neuro-to-ai",
             "{any: [{attribute: BodyPartExamined, in: [HEAD, BRAIN]}, "
             "{attribute: StudyDescription, wildcard: '*HEAD*'}]}",
             "[AI]");
        return true;
      case 150:
        rule("research-copy",
             "{all: [{attribute: InstitutionName, regex: 'General.*'}, "
             "{attribute: PatientAge, regex: '0[2-9][0-9]Y'}]}",
             "[{destination: RESEARCH, edits: [{prefix: {attribute: PatientID, value: 'GH-'}}, "
             "{delete: {attribute: PatientName}}]}]");
        return true;
      default:
        return false;
    }
  };
  while (n < kRules) {
    if (matching(n)) {
      ++n;
      continue;
    }
    const int i = n;
    // $M: a modality that is neither CT nor MR, $P: a body part, $I: the rule's number.
    static constexpr std::array<std::string_view, 10> kConditions = {
        "{attribute: Modality, equals: $M}",
        "{calling_ae: {in: [SITE$I, WS$I, PACS$I]}}",
        "{all: [{attribute: BodyPartExamined, in: [$P, $PS]}, "
        "{attribute: Modality, in: [CT, MR, $M]}]}",
        "{attribute: StationName, regex: 'SITE$I[A-Z]?[0-9]+'}",
        "{attribute: StudyDescription, wildcard: '*$P*', ignore_case: true}",
        "{all: [{attribute: Modality, equals: $M}, "
        "{attribute: SliceThickness, range: {min: 0.5, max: 3}}]}",
        "{all: [{attribute: StudyDate, range: {from: '20190$D01', to: '20191231'}}, "
        "{attribute: StudyTime, range: {from: '2200', to: '0600'}}]}",
        "{all: [{attribute: Modality, equals: $M}, "
        "{any: [{time_of_day: {from: '18:00', to: '07:00'}}, {day_of_week: [sat, sun]}]}]}",
        "{all: [{source: [10.$I.0.0/16, 'fd00:$I::/32']}, {not: {called_ae: CONDUIT}}]}",
        "{all: [{attribute: Manufacturer, equals: 'VENDOR$I', ignore_case: true}, "
        "{attribute: ConvolutionKernel, present: true}]}",
    };
    std::string condition(kConditions[static_cast<std::size_t>(i) % kConditions.size()]);
    Replace(condition, "$M",
            kOtherModalities[static_cast<std::size_t>(i) % kOtherModalities.size()]);
    Replace(condition, "$P", kBodyParts[static_cast<std::size_t>(i) % kBodyParts.size()]);
    Replace(condition, "$I", std::to_string(i));
    Replace(condition, "$D", std::to_string(7 + i % 3));
    std::string route = "[";
    route += Destination(i);
    route += "]";
    rule("rule-" + std::to_string(i), condition, route);
    ++n;
  }
  return yaml;
}

RuleContext BenchContext() {
  RuleContext context;
  context.destinations = {"ARCHIVE", "PACS", "AI", "RESEARCH"};
  for (int i = 0; i < 20; ++i) {
    context.destinations.insert(Destination(i));
  }
  return context;
}

std::shared_ptr<const RuleSet> LoadBenchRules() {
  auto result = conduit::rules::LoadRulesText(GenerateRules(), "bench.yaml", BenchContext());
  if (auto* errors = std::get_if<std::vector<conduit::rules::Diagnostic>>(&result)) {
    for (const auto& error : *errors) {
      std::fprintf(stderr, "%s\n", error.ToString().c_str());
    }
    std::abort();
  }
  return std::get<std::shared_ptr<const RuleSet>>(result);
}

AssociationFacts Facts(const std::string& calling_ae) {
  AssociationFacts facts;
  facts.calling_ae = calling_ae;
  facts.called_ae = "CONDUIT";
  facts.peer_address = "192.168.10.21";
  facts.peer_port = 40123;
  facts.received_at = std::chrono::system_clock::now();
  return facts;
}

void Evaluate(benchmark::State& state, const HeaderSource& header, const AssociationFacts& facts) {
  const auto rules = LoadBenchRules();
  std::size_t routes = 0;
  for (auto _ : state) {
    const auto decision = rules->Evaluate(header, facts);
    routes += decision.routes.size();
    benchmark::DoNotOptimize(decision);
  }
  state.counters["evaluations_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["routes"] = static_cast<double>(routes) /
                             static_cast<double>(std::max<std::int64_t>(1, state.iterations()));
  state.counters["attributes"] = static_cast<double>(header.size());
}

void BM_EvaluateCt(benchmark::State& state) { Evaluate(state, CtHeader(), Facts("CT01")); }
BENCHMARK(BM_EvaluateCt);

void BM_EvaluateMr(benchmark::State& state) { Evaluate(state, MrHeader(), Facts("MR03")); }
BENCHMARK(BM_EvaluateMr);

// For scale: what explain costs (it formats every condition's value).
void BM_ExplainCt(benchmark::State& state) {
  const auto rules = LoadBenchRules();
  const HeaderSource header = CtHeader();
  const AssociationFacts facts = Facts("CT01");
  for (auto _ : state) {
    benchmark::DoNotOptimize(rules->Explain(header, facts));
  }
  state.counters["explanations_per_second"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ExplainCt);

// Loading and compiling the 200-rule file (done at start and on reload).
void BM_Load200Rules(benchmark::State& state) {
  const std::string yaml = GenerateRules();
  const RuleContext context = BenchContext();
  for (auto _ : state) {
    benchmark::DoNotOptimize(conduit::rules::LoadRulesText(yaml, "bench.yaml", context));
  }
}
BENCHMARK(BM_Load200Rules)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
