#include "router/app/rules_command.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "router/app/cli_config.h"
#include "router/routing/rules_runtime.h"
#include "router/spool/header_reader.h"
#include "router/spool/spool_record.h"
#include "rules/rule_set.h"

namespace conduit::app {
namespace {

constexpr std::string_view kRulesUsage = R"(Usage:
  conduit rules check [--config CONFIG] [RULES]
      Validate a rules file against the destinations of CONFIG. RULES defaults to the
      rules.file of CONFIG. Every error is printed as RULES:LINE:COLUMN: message.
  conduit rules explain [--config CONFIG] [--rules RULES] [--calling-ae AE] [--called-ae AE]
                        [--peer ADDRESS] [--time YYYY-MM-DDTHH:MM] FILE.dcm...
      For each file: every rule, every condition, matched or not and the value seen, then
      the routes and edits the daemon would record. The association facts come from the
      options, else from the file (a spooled file carries them), else are left empty.

CONFIG defaults to /etc/conduit/conduit.yaml when it exists, else the embedded default.
)";

int RulesUsage(std::string_view complaint) {
  std::cerr << "conduit rules: " << complaint << "\n\n" << kRulesUsage;
  return 2;
}

struct Options {
  std::filesystem::path config;
  std::filesystem::path rules;
  std::optional<std::string> calling_ae;
  std::optional<std::string> called_ae;
  std::optional<std::string> peer;
  std::optional<std::chrono::system_clock::time_point> time;
  std::vector<std::filesystem::path> files;
};

std::optional<std::chrono::system_clock::time_point> ParseLocalTime(std::string_view text) {
  std::tm parts{};
  const std::string value(text);
  if (::strptime(value.c_str(), "%Y-%m-%dT%H:%M", &parts) == nullptr) return std::nullopt;
  parts.tm_isdst = -1;
  return std::chrono::system_clock::from_time_t(std::mktime(&parts));
}

// Parses options; a complaint for the usage message, or nullopt when fine.
std::optional<std::string> ParseOptions(const std::vector<std::string_view>& args,
                                        Options& options) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    const bool has_value = i + 1 < args.size();
    auto take = [&]() { return std::string(args[++i]); };
    if (arg == "--config" && has_value) {
      options.config = take();
    } else if (arg == "--rules" && has_value) {
      options.rules = take();
    } else if (arg == "--calling-ae" && has_value) {
      options.calling_ae = take();
    } else if (arg == "--called-ae" && has_value) {
      options.called_ae = take();
    } else if (arg == "--peer" && has_value) {
      options.peer = take();
    } else if (arg == "--time" && has_value) {
      options.time = ParseLocalTime(take());
      if (!options.time) return "--time wants YYYY-MM-DDTHH:MM (local time)";
    } else if (arg.starts_with("--")) {
      return "unknown option or missing value: " + std::string(arg);
    } else {
      options.files.emplace_back(std::string(arg));
    }
  }
  return std::nullopt;
}

// Loads the rules as the daemon would; prints the errors and returns null on failure.
std::shared_ptr<const rules::RuleSet> LoadRules(const config::Config& config,
                                                const std::filesystem::path& rules_file) {
  const rules::RuleSetResult result =
      rules::LoadRulesFile(rules_file, routing::MakeRuleContext(config));
  if (const auto* errors = std::get_if<std::vector<rules::Diagnostic>>(&result)) {
    for (const rules::Diagnostic& error : *errors) std::cerr << error.ToString() << "\n";
    std::cerr << rules_file.string() << ": " << errors->size() << " error"
              << (errors->size() == 1 ? "" : "s") << "\n";
    return nullptr;
  }
  return std::get<std::shared_ptr<const rules::RuleSet>>(result);
}

// The facts the daemon had, as far as the file and the options tell.
rules::AssociationFacts FactsFor(const spool::InstanceHeader& header, const Options& options) {
  rules::AssociationFacts facts;
  facts.received_at = std::chrono::system_clock::now();
  if (auto record = spool::ParseSpoolRecord(header.private_information())) {
    facts = record->facts;
  } else {
    facts.calling_ae = header.meta_string(0x0016);  // SourceApplicationEntityTitle
    facts.called_ae = header.meta_string(0x0018);   // ReceivingApplicationEntityTitle
  }
  if (options.calling_ae) facts.calling_ae = *options.calling_ae;
  if (options.called_ae) facts.called_ae = *options.called_ae;
  if (options.peer) facts.peer_address = *options.peer;
  if (options.time) facts.received_at = *options.time;
  return facts;
}

int Check(const Options& options) {
  if (options.files.size() > 1) return RulesUsage("check takes one rules file");
  const auto config = LoadConfigForCommand(ConfigPathOrSystem(options.config));
  if (!config) return 2;
  const std::filesystem::path file =
      options.files.empty() ? config->rules.file : options.files.front();
  if (file.empty()) return RulesUsage("no rules file given and the configuration names none");
  const auto rules = LoadRules(*config, file);
  if (!rules) return 2;
  std::cout << file.string() << ": OK, " << rules->rule_names().size() << " rules\n";
  return 0;
}

int Explain(const Options& options) {
  if (options.files.empty()) return RulesUsage("explain needs at least one DICOM file");
  const auto config = LoadConfigForCommand(ConfigPathOrSystem(options.config));
  if (!config) return 2;
  const std::filesystem::path rules_file =
      options.rules.empty() ? config->rules.file : options.rules;
  if (rules_file.empty()) return RulesUsage("no --rules given and the configuration names none");
  const auto rules = LoadRules(*config, rules_file);
  if (!rules) return 2;
  spool::ConfigureDcmtkLogging();
  int exit_code = 0;
  for (const std::filesystem::path& file : options.files) {
    std::cout << "== " << file.string() << "\n";
    auto header = spool::InstanceHeader::Read(file);
    if (!header) {
      std::cout << "cannot read: " << header.error() << "\n\n";
      exit_code = 1;
      continue;
    }
    const rules::AssociationFacts facts = FactsFor(*header.value(), options);
    std::cout << "facts: calling_ae=" << facts.calling_ae << " called_ae=" << facts.called_ae
              << " peer=" << (facts.peer_address.empty() ? "<unknown>" : facts.peer_address)
              << "\n";
    std::cout << rules::FormatExplanation(rules->Explain(header.value()->attributes(), facts))
              << "\n";
  }
  return exit_code;
}

}  // namespace

int RunRulesCommand(const std::vector<std::string_view>& args) {
  if (args.empty()) return RulesUsage("a subcommand is required");
  Options options;
  const std::vector<std::string_view> rest(args.begin() + 1, args.end());
  if (auto complaint = ParseOptions(rest, options)) return RulesUsage(*complaint);
  if (args.front() == "check") return Check(options);
  if (args.front() == "explain") return Explain(options);
  return RulesUsage("unknown subcommand '" + std::string(args.front()) + "'");
}

}  // namespace conduit::app
