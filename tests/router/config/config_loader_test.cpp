#include "router/config/config_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#ifndef CONDUIT_SOURCE_DIR
#error "CONDUIT_SOURCE_DIR must name the source tree, to find router/config/default_config.yaml"
#endif

namespace conduit::config {
namespace {

using std::chrono::seconds;

constexpr std::string_view kSource = "conduit.yaml";

std::string Describe(const std::vector<ConfigError>& errors) {
  std::string text;
  for (const ConfigError& error : errors) {
    text += error.ToString() + "\n";
  }
  return text;
}

// The loaded configuration; a test failure (and the defaults) if the text has errors.
Config Load(std::string_view yaml) {
  ConfigResult result = LoadConfigText(yaml, kSource);
  if (const auto* errors = std::get_if<std::vector<ConfigError>>(&result)) {
    ADD_FAILURE() << "unexpected errors:\n" << Describe(*errors) << "in:\n" << yaml;
    return Config{};
  }
  return std::get<Config>(std::move(result));
}

// The errors; a test failure (and no errors) if the text loads.
std::vector<ConfigError> Errors(std::string_view yaml) {
  ConfigResult result = LoadConfigText(yaml, kSource);
  if (std::holds_alternative<Config>(result)) {
    ADD_FAILURE() << "expected errors in:\n" << yaml;
    return {};
  }
  return std::get<std::vector<ConfigError>>(std::move(result));
}

bool Contains(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

void ExpectError(const ConfigError& error, int line, int column, std::string_view message_part) {
  EXPECT_EQ(error.file, kSource);
  EXPECT_EQ(error.line, line) << error.ToString();
  EXPECT_EQ(error.column, column) << error.ToString();
  EXPECT_TRUE(Contains(error.message, message_part))
      << "message: " << error.message << "\nexpected to contain: " << message_part;
}

// Exactly one error, at line:column, whose message contains `message_part`.
void ExpectOneError(std::string_view yaml, int line, int column, std::string_view message_part) {
  const std::vector<ConfigError> errors = Errors(yaml);
  ASSERT_EQ(errors.size(), 1u) << Describe(errors);
  ExpectError(errors.front(), line, column, message_part);
}

std::vector<std::string> CidrTexts(const std::vector<rules::Cidr>& cidrs) {
  std::vector<std::string> texts;
  texts.reserve(cidrs.size());
  for (const rules::Cidr& cidr : cidrs) {
    texts.push_back(cidr.text());
  }
  return texts;
}

// Field by field, so that a difference names the field. Extend it with every field added to
// config.h.
void ExpectSameConfig(const Config& actual, const Config& expected) {
  EXPECT_EQ(actual.network_threads, expected.network_threads);
  EXPECT_EQ(actual.log_level, expected.log_level);

  const ListenerConfig& listener = actual.listener;
  const ListenerConfig& expected_listener = expected.listener;
  EXPECT_EQ(listener.bind_address, expected_listener.bind_address);
  EXPECT_EQ(listener.port, expected_listener.port);
  EXPECT_EQ(listener.ae_title, expected_listener.ae_title);
  EXPECT_EQ(listener.require_called_ae, expected_listener.require_called_ae);
  EXPECT_EQ(listener.allowed_calling_aes, expected_listener.allowed_calling_aes);
  EXPECT_EQ(CidrTexts(listener.allowed_networks), CidrTexts(expected_listener.allowed_networks));
  EXPECT_EQ(listener.max_associations, expected_listener.max_associations);
  EXPECT_EQ(listener.max_associations_per_peer, expected_listener.max_associations_per_peer);
  EXPECT_EQ(listener.max_pdu_bytes, expected_listener.max_pdu_bytes);
  EXPECT_EQ(listener.artim_timeout, expected_listener.artim_timeout);
  EXPECT_EQ(listener.idle_timeout, expected_listener.idle_timeout);
  EXPECT_EQ(listener.sop_class_policy, expected_listener.sop_class_policy);
  EXPECT_EQ(listener.accepted_sop_classes, expected_listener.accepted_sop_classes);
  EXPECT_EQ(listener.transfer_syntax_preference, expected_listener.transfer_syntax_preference);
  EXPECT_EQ(listener.accepted_transfer_syntaxes, expected_listener.accepted_transfer_syntaxes);

  EXPECT_EQ(actual.spool.directory, expected.spool.directory);
  EXPECT_EQ(actual.spool.max_bytes, expected.spool.max_bytes);
  EXPECT_EQ(actual.spool.min_free_bytes, expected.spool.min_free_bytes);
  EXPECT_EQ(actual.spool.max_instances, expected.spool.max_instances);
  EXPECT_EQ(actual.spool.sync_threads, expected.spool.sync_threads);
  EXPECT_EQ(actual.spool.writeback_chunk_bytes, expected.spool.writeback_chunk_bytes);

  EXPECT_EQ(actual.metrics.enabled, expected.metrics.enabled);
  EXPECT_EQ(actual.metrics.listen, expected.metrics.listen);
}

std::string ReadSourceFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  EXPECT_TRUE(file.is_open()) << path;
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// ---------------------------------------------------------------------------------------------
// Defaults

TEST(ConfigLoaderTest, EmptyTextYieldsDefaults) { ExpectSameConfig(Load(""), Config{}); }

TEST(ConfigLoaderTest, CommentsOnlyYieldDefaults) {
  ExpectSameConfig(Load("# nothing configured yet\n\n   # still nothing\n"), Config{});
}

TEST(ConfigLoaderTest, ShippedDefaultConfigLoadsToTheDefaults) {
  const std::string text = ReadSourceFile(CONDUIT_SOURCE_DIR "/router/config/default_config.yaml");
  ASSERT_FALSE(text.empty());
  ExpectSameConfig(Load(text), Config{});
}

TEST(ConfigLoaderTest, MissingKeysKeepTheirDefaults) {
  const Config config = Load("listener:\n  port: 104\nspool:\n  sync_threads: 8\n");
  Config expected;
  expected.listener.port = 104;
  expected.spool.sync_threads = 8;
  ExpectSameConfig(config, expected);
}

TEST(ConfigLoaderTest, SectionWithEveryKeyCommentedOutKeepsDefaults) {
  ExpectSameConfig(Load("listener:\n  # port: 104\nspool:\nmetrics: {}\n"), Config{});
}

TEST(ConfigLoaderTest, ListWithEveryEntryCommentedOutIsEmptyNotAnError) {
  const Config config = Load("listener:\n  allowed_calling_aes:\n    # - CT1\n");
  EXPECT_TRUE(config.listener.allowed_calling_aes.empty());
}

// ---------------------------------------------------------------------------------------------
// Parsing

TEST(ConfigLoaderTest, ParsesEveryKey) {
  const Config config = Load(R"(network_threads: 0
log_level: debug
listener:
  bind_address: "::"
  port: 104
  ae_title: ROUTER_1
  require_called_ae: false
  allowed_calling_aes: [CT_1, MR_2]
  allowed_networks:
    - 10.0.0.0/8
    - fd00::/8
  max_associations: 10
  max_associations_per_peer: 2
  max_pdu_bytes: 1MiB
  artim_timeout_seconds: 10
  idle_timeout_seconds: 86400
  sop_classes: [1.2.840.10008.5.1.4.1.1.2, 1.2.840.10008.5.1.4.1.1.4]
  transfer_syntax_preference: listed
  accepted_transfer_syntaxes:
    - 1.2.840.10008.1.2.4.201
    - 1.2.840.10008.1.2.1
spool:
  directory: /var/lib/conduit/spool
  max_bytes: 2TB
  min_free_bytes: 10GiB
  max_instances: 5000
  sync_threads: 64
  writeback_chunk_bytes: 1048576
metrics:
  enabled: false
  listen: "[::1]:9200"
)");
  Config expected;
  expected.network_threads = 0;
  expected.log_level = LogLevel::kDebug;
  ListenerConfig& listener = expected.listener;
  listener.bind_address = "::";
  listener.port = 104;
  listener.ae_title = "ROUTER_1";
  listener.require_called_ae = false;
  listener.allowed_calling_aes = {"CT_1", "MR_2"};
  listener.allowed_networks = {*rules::Cidr::Parse("10.0.0.0/8"), *rules::Cidr::Parse("fd00::/8")};
  listener.max_associations = 10;
  listener.max_associations_per_peer = 2;
  listener.max_pdu_bytes = 1 << 20;
  listener.artim_timeout = seconds(10);
  listener.idle_timeout = seconds(86400);
  listener.sop_class_policy = SopClassPolicy::kListed;
  listener.accepted_sop_classes = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"};
  listener.transfer_syntax_preference = TransferSyntaxPreference::kListed;
  listener.accepted_transfer_syntaxes = {"1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.1"};
  expected.spool.directory = "/var/lib/conduit/spool";
  expected.spool.max_bytes = 2'000'000'000'000;
  expected.spool.min_free_bytes = 10ULL << 30;
  expected.spool.max_instances = 5000;
  expected.spool.sync_threads = 64;
  expected.spool.writeback_chunk_bytes = 1 << 20;
  expected.metrics.enabled = false;
  expected.metrics.listen = "[::1]:9200";
  ExpectSameConfig(config, expected);

  EXPECT_TRUE(config.listener.allowed_networks.at(0).Contains("10.9.8.7"));
  EXPECT_TRUE(config.listener.allowed_networks.at(1).Contains("fd12::1"));
}

TEST(ConfigLoaderTest, ParsesEachLogLevel) {
  EXPECT_EQ(Load("log_level: debug").log_level, LogLevel::kDebug);
  EXPECT_EQ(Load("log_level: info").log_level, LogLevel::kInfo);
  EXPECT_EQ(Load("log_level: warning").log_level, LogLevel::kWarning);
  EXPECT_EQ(Load("log_level: error").log_level, LogLevel::kError);
}

TEST(ConfigLoaderTest, ParsesSopClassPolicyWords) {
  EXPECT_EQ(Load("listener:\n  sop_classes: any").listener.sop_class_policy, SopClassPolicy::kAny);
  EXPECT_EQ(Load("listener:\n  sop_classes: standard").listener.sop_class_policy,
            SopClassPolicy::kStandardStorage);
}

TEST(ConfigLoaderTest, AcceptsYamlBooleanSpellingsAndQuotedNumbers) {
  EXPECT_FALSE(Load("metrics:\n  enabled: False").metrics.enabled);
  EXPECT_TRUE(Load("metrics:\n  enabled: TRUE").metrics.enabled);
  EXPECT_EQ(Load("listener:\n  port: \"104\"").listener.port, 104);
}

TEST(ConfigLoaderTest, AeTitleMayLookLikeANumber) {
  EXPECT_EQ(Load("listener:\n  ae_title: 12345").listener.ae_title, "12345");
}

TEST(ConfigLoaderTest, DropsInsignificantSpacesAroundAeTitles) {
  const Config config =
      Load("listener:\n  ae_title: \" CONDUIT \"\n  allowed_calling_aes: [\"CT 1  \"]\n");
  EXPECT_EQ(config.listener.ae_title, "CONDUIT");
  EXPECT_EQ(config.listener.allowed_calling_aes, std::vector<std::string>{"CT 1"});
}

TEST(ConfigLoaderTest, AeTitleLengthIgnoresInsignificantSpaces) {
  EXPECT_EQ(Load("listener:\n  ae_title: \"  ABCDEFGHIJKLMNOP  \"\n").listener.ae_title,
            "ABCDEFGHIJKLMNOP");
}

TEST(ConfigLoaderTest, AcceptsBoundaryValues) {
  const Config low = Load(R"(network_threads: 0
listener:
  port: 1
  max_associations: 1
  max_associations_per_peer: 1
  max_pdu_bytes: 4096
  artim_timeout_seconds: 1
  idle_timeout_seconds: 1
  ae_title: A
spool:
  sync_threads: 1
  max_bytes: 1
  min_free_bytes: 0
)");
  EXPECT_EQ(low.listener.port, 1);
  EXPECT_EQ(low.listener.max_pdu_bytes, 4096u);
  EXPECT_EQ(low.spool.min_free_bytes, 0u);

  const Config high = Load(R"(network_threads: 64
listener:
  port: 65535
  max_pdu_bytes: 16MiB
  artim_timeout_seconds: 86400
  ae_title: ABCDEFGHIJKLMNOP
)");
  EXPECT_EQ(high.network_threads, 64u);
  EXPECT_EQ(high.listener.port, 65535);
  EXPECT_EQ(high.listener.max_pdu_bytes, 16u << 20);
  EXPECT_EQ(high.listener.artim_timeout, seconds(86400));
}

TEST(ConfigLoaderTest, DefaultPerPeerLimitShrinksToASmallerTotal) {
  const Config config = Load("listener:\n  max_associations: 4\n");
  EXPECT_EQ(config.listener.max_associations, 4u);
  EXPECT_EQ(config.listener.max_associations_per_peer, 4u);
}

TEST(ConfigLoaderTest, PerPeerLimitMayEqualTheTotal) {
  const Config config = Load("listener:\n  max_associations: 4\n  max_associations_per_peer: 4\n");
  EXPECT_EQ(config.listener.max_associations_per_peer, 4u);
}

// ---------------------------------------------------------------------------------------------
// Sizes

struct SizeCase {
  std::string_view text;
  std::uint64_t bytes;
};

constexpr auto kValidSizes = std::to_array<SizeCase>({
    {"0", 0},
    {"131072", 131072},
    {"\"131072\"", 131072},
    {"7B", 7},
    {"10kB", 10'000},
    {"100MB", 100'000'000},
    {"2GB", 2'000'000'000},
    {"3TB", 3'000'000'000'000},
    {"512KiB", 512ULL << 10},
    {"1MiB", 1ULL << 20},
    {"64GiB", 64ULL << 30},
    {"2TiB", 2ULL << 40},
    {"2 GiB", 2ULL << 30},
    {"16777215TiB", 16777215ULL << 40},  // the largest whole number of TiB in 64 bits
});

TEST(ConfigLoaderTest, ParsesSizesWithAndWithoutUnits) {
  for (const SizeCase& size : kValidSizes) {
    const Config config = Load("spool:\n  min_free_bytes: " + std::string(size.text) + "\n");
    EXPECT_EQ(config.spool.min_free_bytes, size.bytes) << size.text;
  }
}

struct BadSizeCase {
  std::string_view text;
  std::string_view message_part;
};

constexpr auto kBadSizes = std::to_array<BadSizeCase>({
    {"-1", "must not be negative"},
    {"-5GiB", "must not be negative"},
    {"lots", "expected a size such as 131072, 512KiB or 2GB, got 'lots'"},
    {"GiB", "expected a size"},
    {"\"\"", "expected a size"},
    {"1.5GiB", "whole number"},
    {"10KB", "unknown size unit 'KB' in '10KB'; use B, kB, MB"},
    {"10 mb", "unknown size unit 'mb'"},
    {"10GiB free", "unknown size unit 'GiB free'"},
    {"99999999999999999999", "too large"},
    {"16777216TiB", "too large"},  // exactly 2^64
    {"[1, 2]", "expected a size such as 131072, 512KiB or 2GB, got a list"},
});

TEST(ConfigLoaderTest, RejectsBadSizesWithAClearMessage) {
  for (const BadSizeCase& size : kBadSizes) {
    const std::string yaml = "spool:\n  min_free_bytes: " + std::string(size.text) + "\n";
    SCOPED_TRACE(yaml);
    ExpectOneError(yaml, 2, 19, size.message_part);
  }
}

TEST(ConfigLoaderTest, RejectsSizesOutOfRange) {
  ExpectOneError("listener:\n  max_pdu_bytes: 4095\n", 2, 18,
                 "listener.max_pdu_bytes: must be between 4KiB and 16MiB, got 4095 bytes");
  ExpectOneError("listener:\n  max_pdu_bytes: 16777217\n", 2, 18, "got 16777217 bytes");
  ExpectOneError("listener:\n  max_pdu_bytes: 32MiB\n", 2, 18, "got 32MiB");
  ExpectOneError("spool:\n  max_bytes: 0\n", 2, 14, "spool.max_bytes: must be at least 1 byte");
  ExpectOneError("spool:\n  writeback_chunk_bytes: 1kB\n", 2, 26,
                 "spool.writeback_chunk_bytes: must be between 4KiB and 1GiB, got 1000 bytes");
}

// ---------------------------------------------------------------------------------------------
// Errors, each at its exact line and column

TEST(ConfigLoaderTest, YamlSyntaxErrorCarriesTheParserPosition) {
  ExpectOneError("listener:\n  port: 1: 2\n", 2, 10, "YAML syntax error: illegal map value");
  ExpectOneError("listener:\n  port: [1, 2\n", 3, 1, "YAML syntax error");
  // Unquoted, "::" is YAML syntax rather than an address.
  ExpectOneError("listener:\n  bind_address: ::\n", 2, 18, "YAML syntax error");
}

TEST(ConfigLoaderTest, UnknownTopLevelKeyListsAllowedKeys) {
  ExpectOneError("log_level: info\nlistenr:\n  port: 104\n", 2, 1,
                 "unknown key 'listenr' at the top level (did you mean 'listener'?); allowed "
                 "keys: network_threads, log_level, listener, spool, metrics");
}

TEST(ConfigLoaderTest, UnknownKeyInSectionListsThatSectionsKeys) {
  ExpectOneError("spool:\n  dir: /tmp\n", 2, 3,
                 "unknown key 'dir' in section 'spool'; allowed keys: directory, max_bytes, "
                 "min_free_bytes, max_instances, sync_threads, writeback_chunk_bytes");
  ExpectOneError("listener:\n  prot: 104\n", 2, 3,
                 "unknown key 'prot' in section 'listener' (did you mean 'port'?)");
  ExpectOneError("metrics:\n  enable: true\n", 2, 3,
                 "(did you mean 'enabled'?); allowed keys: "
                 "enabled, listen");
}

TEST(ConfigLoaderTest, KeyMustBeAName) {
  ExpectOneError("listener:\n  [a, b]: 1\n", 2, 3, "a key must be a plain name, got a list");
}

TEST(ConfigLoaderTest, DuplicateKeyPointsAtTheFirst) {
  ExpectOneError("log_level: info\nlistener:\n  port: 104\n  port: 105\n", 4, 3,
                 "listener.port: duplicate key; it is already set on line 3");
}

TEST(ConfigLoaderTest, SecondYamlDocumentIsAnError) {
  ExpectOneError("log_level: info\n---\nlog_level: debug\n", 3, 1, "one YAML document");
}

TEST(ConfigLoaderTest, WrongTypes) {
  ExpectOneError("- listener\n", 1, 1, "expected a section of 'key: value' lines, got a list");
  ExpectOneError("just text\n", 1, 1, "expected a section of 'key: value' lines, got a single");
  ExpectOneError("listener: 104\n", 1, 11,
                 "listener: expected a section of 'key: value' lines, got a single value");
  ExpectOneError("listener:\n  port: [104]\n", 2, 9,
                 "listener.port: expected a whole number, got a list");
  ExpectOneError("listener:\n  port: one\n", 2, 9,
                 "listener.port: expected a whole number, got 'one'");
  ExpectOneError("listener:\n  port: 104.5\n", 2, 9, "expected a whole number, got '104.5'");
  ExpectOneError("listener:\n  require_called_ae: yes\n", 2, 22,
                 "listener.require_called_ae: expected true or false, got 'yes'");
  ExpectOneError("listener:\n  allowed_calling_aes: CT1\n", 2, 24,
                 "listener.allowed_calling_aes: expected a list, got a single value (write [] for "
                 "an empty list)");
  ExpectOneError("listener:\n  allowed_calling_aes: [[CT1]]\n", 2, 25,
                 "listener.allowed_calling_aes[0]: expected an AE title, got a list");
  ExpectOneError("metrics:\n  listen: {host: x}\n", 2, 11, "expected host:port, got a section");
  ExpectOneError("spool:\n  directory: [a]\n", 2, 14, "expected a directory path, got a list");
}

TEST(ConfigLoaderTest, EmptyValueIsReportedAtItsKey) {
  // yaml-cpp marks an empty value at the next token; the key's line is where the admin looks.
  ExpectOneError("listener:\n  port:\n\n\n  ae_title: X\n", 2, 3,
                 "listener.port: expected a whole number, got an empty value");
  ExpectOneError("log_level: ~\n", 1, 1, "log_level: expected one of debug, info, warning, error");
}

TEST(ConfigLoaderTest, IntegersOutOfRange) {
  ExpectOneError("network_threads: 65\n", 1, 18,
                 "network_threads: must be between 0 and 64, got 65");
  ExpectOneError("network_threads: -1\n", 1, 18, "must be between 0 and 64, got -1");
  ExpectOneError("listener:\n  port: 0\n", 2, 9,
                 "listener.port: must be between 1 and 65535, got 0");
  ExpectOneError("listener:\n  port: 65536\n", 2, 9, "must be between 1 and 65535, got 65536");
  ExpectOneError("listener:\n  port: 99999999999999999999\n", 2, 9,
                 "must be between 1 and 65535, got 99999999999999999999");
  ExpectOneError("listener:\n  max_associations: 0\n", 2, 21,
                 "listener.max_associations: must be at least 1, got 0");
  ExpectOneError("listener:\n  max_associations: 4294967296\n", 2, 21,
                 "must be between 1 and 4294967295, got 4294967296");
  ExpectOneError("listener:\n  max_associations_per_peer: 0\n", 2, 30, "must be at least 1, got 0");
  ExpectOneError("listener:\n  artim_timeout_seconds: 0\n", 2, 26,
                 "listener.artim_timeout_seconds: must be between 1 and 86400, got 0");
  ExpectOneError("listener:\n  idle_timeout_seconds: 86401\n", 2, 25,
                 "listener.idle_timeout_seconds: must be between 1 and 86400, got 86401");
  ExpectOneError("spool:\n  sync_threads: 0\n", 2, 17,
                 "spool.sync_threads: must be between 1 and 64, got 0");
  ExpectOneError("spool:\n  sync_threads: 65\n", 2, 17, "must be between 1 and 64, got 65");
}

TEST(ConfigLoaderTest, PerPeerLimitAboveTheTotal) {
  ExpectOneError("listener:\n  max_associations: 8\n  max_associations_per_peer: 9\n", 3, 30,
                 "listener.max_associations_per_peer: must not exceed listener.max_associations "
                 "(8), got 9");
  // Against the default total of 64 when the total is not set.
  ExpectOneError("listener:\n  max_associations_per_peer: 65\n", 2, 30,
                 "must not exceed listener.max_associations (64), got 65");
}

TEST(ConfigLoaderTest, BadTotalAssociationsDoesNotAlsoBlameThePerPeerLimit) {
  ExpectOneError("listener:\n  max_associations: 0\n  max_associations_per_peer: 9\n", 2, 21,
                 "must be at least 1");
}

TEST(ConfigLoaderTest, BadAeTitles) {
  ExpectOneError("listener:\n  ae_title: ABCDEFGHIJKLMNOPQ\n", 2, 13,
                 "listener.ae_title: 'ABCDEFGHIJKLMNOPQ' is 17 characters long; an AE title has "
                 "at most 16");
  ExpectOneError("listener:\n  ae_title: 'CT\\1'\n", 2, 13, "contains a backslash");
  ExpectOneError("listener:\n  ae_title: \"CT\\x01\"\n", 2, 13, "no control characters");
  ExpectOneError("listener:\n  ae_title: \"CT\\t1\"\n", 2, 13, "no control characters");
  ExpectOneError("listener:\n  ae_title: \"CT\u00e9\"\n", 2, 13, "only printable ASCII");
  ExpectOneError("listener:\n  ae_title: \"    \"\n", 2, 13, "must not be empty or only spaces");
  ExpectOneError("listener:\n  ae_title: \"\"\n", 2, 13, "must not be empty or only spaces");
  ExpectOneError("listener:\n  allowed_calling_aes:\n    - CT1\n    - MR\\2\n", 4, 7,
                 "listener.allowed_calling_aes[1]: 'MR\\2' contains a backslash");
}

TEST(ConfigLoaderTest, BadUids) {
  ExpectOneError("listener:\n  sop_classes: [1.2.840.10008.5.1.4.1.1.2, 1.2.abc]\n", 2, 44,
                 "listener.sop_classes[1]: '1.2.abc' is not a UID: only digits and dots");
  ExpectOneError("listener:\n  accepted_transfer_syntaxes: [1.2..840]\n", 2, 32,
                 "listener.accepted_transfer_syntaxes[0]: '1.2..840' is not a UID: it has an "
                 "empty component");
  ExpectOneError("listener:\n  accepted_transfer_syntaxes: [.1.2]\n", 2, 32, "empty component");
  ExpectOneError("listener:\n  accepted_transfer_syntaxes: [1.2.]\n", 2, 32, "empty component");
  const std::string long_uid = "1." + std::string(63, '2');
  ExpectOneError("listener:\n  accepted_transfer_syntaxes: [" + long_uid + "]\n", 2, 32,
                 "is 65 characters long; a UID has at most 64");
}

TEST(ConfigLoaderTest, BadSopClassesValue) {
  ExpectOneError("listener:\n  sop_classes: listed\n", 2, 16,
                 "unknown SOP class policy 'listed'; expected one of standard, any, or a list of "
                 "SOP Class UIDs");
  ExpectOneError(
      "listener:\n  sop_classes:\n", 2, 3,
      "listener.sop_classes: expected one of standard, any, or a list of SOP Class UIDs, "
      "got an empty value");
  ExpectOneError("listener:\n  sop_classes: []\n", 2, 16,
                 "an empty list would refuse every SOP class");
}

TEST(ConfigLoaderTest, BadCidrInTheListIsReportedAtTheEntry) {
  ExpectOneError("listener:\n  allowed_networks:\n    - 10.0.0.0/8\n    - 10.0.0.0/33\n", 4, 7,
                 "listener.allowed_networks[1]: '10.0.0.0/33' is not a network in CIDR notation");
  ExpectOneError("listener:\n  allowed_networks: [10.1.2.3/8]\n", 2, 22,
                 "no address bits set after the prefix");
  ExpectOneError("listener:\n  allowed_networks: [pacs.example.org]\n", 2, 22,
                 "'pacs.example.org' is not a network in CIDR notation");
}

TEST(ConfigLoaderTest, UnknownEnumWords) {
  ExpectOneError("log_level: verbose\n", 1, 12,
                 "log_level: unknown log level 'verbose'; expected one of debug, info, warning, "
                 "error");
  ExpectOneError("log_level: INFO\n", 1, 12, "unknown log level 'INFO'");
  ExpectOneError("listener:\n  transfer_syntax_preference: mine\n", 2, 31,
                 "unknown transfer syntax preference 'mine'; expected one of sender, listed");
}

TEST(ConfigLoaderTest, BadAddresses) {
  ExpectOneError("listener:\n  bind_address: pacs.local\n", 2, 17,
                 "listener.bind_address: 'pacs.local' is not an IPv4 or IPv6 address");
  ExpectOneError("listener:\n  bind_address: 10.0.0.0/8\n", 2, 17, "is not an IPv4 or IPv6");
  ExpectOneError("metrics:\n  listen: 127.0.0.1\n", 2, 11,
                 "metrics.listen: expected host:port (e.g. 127.0.0.1:9112 or [::1]:9112)");
  ExpectOneError("metrics:\n  listen: \"::1:9112\"\n", 2, 11, "put an IPv6 address in brackets");
  ExpectOneError("metrics:\n  listen: \"[10.0.0.1]:9112\"\n", 2, 11, "is not an IPv6 address");
  ExpectOneError("metrics:\n  listen: localhost:9112\n", 2, 11,
                 "'localhost' in 'localhost:9112' is not an IP address");
  ExpectOneError("metrics:\n  listen: 127.0.0.1:0\n", 2, 11,
                 "the port in '127.0.0.1:0' must be a number between 1 and 65535");
  ExpectOneError("metrics:\n  listen: 127.0.0.1:http\n", 2, 11, "must be a number");
  ExpectOneError("metrics:\n  listen: \"127.0.0.1:\"\n", 2, 11, "must be a number");
  ExpectOneError("spool:\n  directory: \"\"\n", 2, 14,
                 "spool.directory: the directory must not be");
}

TEST(ConfigLoaderTest, ReportsEveryErrorTogetherInFileOrder) {
  const std::vector<ConfigError> errors = Errors(R"(log_level: verbose
listener:
  port: 0
  prot: 11112
  allowed_networks: [10.0.0.0/8, 10.0.0.0/33]
  max_associations: 4
  max_associations_per_peer: 5
spool:
  max_bytes: 12 parsecs
network_threads: many
)");
  ASSERT_EQ(errors.size(), 7u) << Describe(errors);
  ExpectError(errors[0], 1, 12, "unknown log level 'verbose'");
  ExpectError(errors[1], 3, 9, "listener.port: must be between 1 and 65535");
  ExpectError(errors[2], 4, 3, "unknown key 'prot'");
  ExpectError(errors[3], 5, 34, "'10.0.0.0/33' is not a network");
  ExpectError(errors[4], 7, 30, "must not exceed listener.max_associations (4)");
  ExpectError(errors[5], 9, 14, "unknown size unit 'parsecs'");
  ExpectError(errors[6], 10, 18, "network_threads: expected a whole number, got 'many'");
}

TEST(ConfigLoaderTest, ErrorToStringIsFileLineColumnMessage) {
  const ConfigError error{"/etc/conduit/conduit.yaml", 3, 9, "listener.port: must be ..."};
  EXPECT_EQ(error.ToString(), "/etc/conduit/conduit.yaml:3:9: listener.port: must be ...");
  const ConfigError whole_file{"/etc/conduit/conduit.yaml", 0, 0, "cannot read"};
  EXPECT_EQ(whole_file.ToString(), "/etc/conduit/conduit.yaml: cannot read");
}

// ---------------------------------------------------------------------------------------------
// Files

class ConfigFileTest : public testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("conduit_config_loader_test_" + std::to_string(getpid()));
    std::filesystem::create_directories(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  std::filesystem::path Write(std::string_view name, std::string_view contents) {
    std::filesystem::path path = directory_ / name;
    std::ofstream(path) << contents;
    return path;
  }

  std::filesystem::path directory_;
};

TEST_F(ConfigFileTest, LoadsAFile) {
  const ConfigResult result = LoadConfigFile(Write("conduit.yaml", "listener:\n  port: 104\n"));
  ASSERT_TRUE(std::holds_alternative<Config>(result));
  EXPECT_EQ(std::get<Config>(result).listener.port, 104);
}

TEST_F(ConfigFileTest, EmptyFileYieldsDefaults) {
  const ConfigResult result = LoadConfigFile(Write("empty.yaml", ""));
  ASSERT_TRUE(std::holds_alternative<Config>(result));
  ExpectSameConfig(std::get<Config>(result), Config{});
}

TEST_F(ConfigFileTest, ErrorsNameTheFile) {
  const std::filesystem::path path = Write("bad.yaml", "listener:\n  port: 0\n");
  const ConfigResult result = LoadConfigFile(path);
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(result));
  const auto& errors = std::get<std::vector<ConfigError>>(result);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].ToString(),
            path.string() + ":2:9: listener.port: must be between 1 and 65535, got 0");
}

TEST_F(ConfigFileTest, MissingFileIsOneErrorWithoutALine) {
  const std::filesystem::path path = directory_ / "absent.yaml";
  const ConfigResult result = LoadConfigFile(path);
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(result));
  const auto& errors = std::get<std::vector<ConfigError>>(result);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].file, path.string());
  EXPECT_EQ(errors[0].line, 0);
  EXPECT_EQ(errors[0].column, 0);
  EXPECT_EQ(errors[0].ToString(),
            path.string() + ": cannot read the configuration: No such file or directory");
}

TEST_F(ConfigFileTest, DirectoryIsOneErrorWithoutALine) {
  const ConfigResult result = LoadConfigFile(directory_);
  ASSERT_TRUE(std::holds_alternative<std::vector<ConfigError>>(result));
  const auto& errors = std::get<std::vector<ConfigError>>(result);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].line, 0);
  EXPECT_TRUE(Contains(errors[0].message, "it is a directory")) << errors[0].message;
}

}  // namespace
}  // namespace conduit::config

namespace conduit::config {
namespace {

TEST(ConfigLoaderRulesTest, ParsesRulesAndDestinations) {
  const Config config = Load(
      "rules:\n  file: /etc/conduit/rules.yaml\n  reload_check_seconds: 0\n"
      "destinations:\n  - {name: PACS, host: 10.0.0.1, called_ae: MAIN}\n"
      "  - {name: cloud-archive.eu, host: pacs.example.org, port: 11112, called_ae: ARCH}\n");
  EXPECT_EQ(config.rules.file, "/etc/conduit/rules.yaml");
  EXPECT_EQ(config.rules.reload_check_interval, std::chrono::seconds(0));
  ASSERT_EQ(config.destinations.size(), 2U);
  EXPECT_EQ(config.destinations[0].name, "PACS");
  EXPECT_EQ(config.destinations[0].host, "10.0.0.1");
  EXPECT_EQ(config.destinations[0].port, 104);
  EXPECT_EQ(config.destinations[0].calling_ae, "CONDUIT");  // the listener's AE title
  EXPECT_EQ(config.destinations[1].name, "cloud-archive.eu");
  EXPECT_EQ(config.destinations[1].host, "pacs.example.org");
  EXPECT_EQ(config.destinations[1].port, 11112);
  EXPECT_EQ(config.destinations[1].called_ae, "ARCH");
}

TEST(ConfigLoaderRulesTest, ParsesEveryDestinationKey) {
  const Config config = Load(
      "destinations:\n"
      "  - name: pacs\n"
      "    host: 127.0.0.1\n"
      "    port: 4242\n"
      "    called_ae: ORTHANC\n"
      "    calling_ae: ROUTER\n"
      "    max_associations: 8\n"
      "    max_instances_per_association: 0\n"
      "    max_pdu_bytes: 64KiB\n"
      "    connect_timeout_seconds: 3\n"
      "    response_timeout_seconds: 20\n"
      "    idle_timeout_seconds: 5\n"
      "    transfer_syntaxes: [1.2.840.10008.1.2, stored]\n"
      "    warning_is_success: false\n"
      "    retry:\n"
      "      initial_delay_ms: 100\n"
      "      max_delay_seconds: 60\n"
      "      multiplier: 1.5\n"
      "      jitter_percent: 10\n"
      "      max_age_hours: 24\n"
      "      breaker_failures: 5\n"
      "admin:\n  socket: /run/conduit/admin.sock\n");
  ASSERT_EQ(config.destinations.size(), 1U);
  const DestinationConfig& pacs = config.destinations[0];
  EXPECT_EQ(pacs.port, 4242);
  EXPECT_EQ(pacs.calling_ae, "ROUTER");
  EXPECT_EQ(pacs.max_associations, 8U);
  EXPECT_EQ(pacs.max_instances_per_association, 0U);
  EXPECT_EQ(pacs.max_pdu_bytes, 65536U);
  EXPECT_EQ(pacs.connect_timeout, std::chrono::seconds(3));
  EXPECT_EQ(pacs.response_timeout, std::chrono::seconds(20));
  EXPECT_EQ(pacs.idle_timeout, std::chrono::seconds(5));
  EXPECT_EQ(pacs.transfer_syntaxes, (std::vector<std::string>{"1.2.840.10008.1.2", "stored"}));
  EXPECT_FALSE(pacs.warning_is_success);
  EXPECT_EQ(pacs.retry.initial_delay, std::chrono::milliseconds(100));
  EXPECT_EQ(pacs.retry.max_delay, std::chrono::seconds(60));
  EXPECT_DOUBLE_EQ(pacs.retry.multiplier, 1.5);
  EXPECT_DOUBLE_EQ(pacs.retry.jitter, 0.1);
  EXPECT_EQ(pacs.retry.max_age, std::chrono::hours(24));
  EXPECT_EQ(pacs.retry.breaker_failures, 5U);
  EXPECT_EQ(config.admin.socket, "/run/conduit/admin.sock");
}

TEST(ConfigLoaderRulesTest, DefaultsHaveNoRulesAndNoDestinations) {
  const Config config = Load("");
  EXPECT_TRUE(config.rules.file.empty());
  EXPECT_EQ(config.rules.reload_check_interval, std::chrono::seconds(2));
  EXPECT_TRUE(config.destinations.empty());
}

TEST(ConfigLoaderRulesTest, RefusesBadDestinations) {
  ExpectOneError(
      "destinations:\n  - {name: PACS, host: a, called_ae: A}\n"
      "  - {name: PACS, host: b, called_ae: B}\n",
      3, 5, "destination 'PACS' is already defined on line 2");
  ExpectOneError("destinations:\n  - {name: \"my pacs\", host: a, called_ae: A}\n", 2, 12,
                 "is not a destination name");
  const auto errors = Errors("destinations:\n  - hots: 10.0.0.1\n");
  ASSERT_EQ(errors.size(), 4U) << Describe(errors);
  ExpectError(errors[0], 2, 5,
              "unknown key 'hots' in section 'destinations[0]' (did you mean 'host'?)");
  ExpectError(errors[1], 2, 5, "a destination needs a name");
  ExpectError(errors[2], 2, 5, "a destination needs a host");
  ExpectError(errors[3], 2, 5, "a destination needs called_ae");
  ExpectOneError("destinations:\n  - {name: p, host: a, called_ae: A, max_associations: 0}\n", 2,
                 56, "between 1 and 64");
  ExpectOneError(
      "destinations:\n  - {name: p, host: a, called_ae: A, transfer_syntaxes: "
      "[1.2.840.10008.1.2.4.50]}\n",
      2, 58, "name a transcoding profile in its route (transcode: NAME)");
  ExpectOneError("destinations:\n  - {name: p, host: a, called_ae: A, retry: {multiplier: 0.5}}\n",
                 2, 58, "must be between 1 and 10");
  ExpectOneError("destinations:\n  - {name: p, host: 'a b', called_ae: A}\n", 2, 21,
                 "is not a host name");
  ExpectOneError("admin:\n  socket: ''\n", 2, 11, "must not be empty");
  ExpectOneError("rules:\n  reload_check_seconds: -1\n", 2, 25, "rules.reload_check_seconds");
  ExpectOneError("rules:\n  fil: x\n", 2, 3, "unknown key 'fil'");
}

}  // namespace
}  // namespace conduit::config

namespace conduit::config {
namespace {

// yaml-cpp 0.7's LoadAll never returns on these (jbeder/yaml-cpp#1040); Load reads them as an
// empty document. Either way they are not a configuration.
TEST(ConfigLoaderJunkTest, JunkThatYamlReadsAsNothingIsAnErrorNotDefaults) {
  ExpectOneError(",|", 1, 1, "no configuration could be read");
  ExpectOneError(",", 1, 1, "no configuration could be read");
  ExpectSameConfig(Load("# nothing but a comment\n---\n"), Config{});
}

}  // namespace
}  // namespace conduit::config

namespace conduit::config {
namespace {

TEST(ConfigLoaderTranscodingTest, ParsesProfilesAndRefusesLossyByAccident) {
  const Config config = Load(
      "transcoding:\n  threads: 3\n  profiles:\n"
      "    - {name: htj2k, transfer_syntax: 1.2.840.10008.1.2.4.201}\n"
      "    - {name: tele, transfer_syntax: 1.2.840.10008.1.2.4.50, lossy: true, quality: 80}\n");
  EXPECT_EQ(config.transcoding.threads, 3U);
  ASSERT_EQ(config.transcoding.profiles.size(), 2U);
  EXPECT_EQ(config.transcoding.profiles[0].transfer_syntax, "1.2.840.10008.1.2.4.201");
  EXPECT_FALSE(config.transcoding.profiles[0].lossy);
  EXPECT_TRUE(config.transcoding.profiles[1].lossy);
  EXPECT_EQ(config.transcoding.profiles[1].quality, 80);

  ExpectOneError(
      "transcoding:\n  profiles:\n    - {name: jpeg, transfer_syntax: 1.2.840.10008.1.2.4.50}\n", 3,
      37, "JPEG Baseline (Process 1) is lossy: add 'lossy: true'");
  ExpectOneError(
      "transcoding:\n  profiles:\n    - {name: mpeg, transfer_syntax: 1.2.840.10008.1.2.4.100}\n",
      3, 37, "cannot be a transcoding target");
  ExpectOneError(
      "transcoding:\n  profiles:\n    - {name: a, transfer_syntax: 1.2.840.10008.1.2.5}\n"
      "    - {name: a, transfer_syntax: 1.2.840.10008.1.2.5}\n",
      4, 7, "transcode profile 'a' is defined twice");
}

}  // namespace
}  // namespace conduit::config

namespace conduit::config {
namespace {

TEST(ConfigLoaderArchiveDestinationTest, ParsesAStowDestination) {
  const Config config = Load(
      "destinations:\n"
      "  - name: web\n"
      "    type: stow\n"
      "    url: https://pacs.example.org/dicom-web/\n"
      "    parallel_requests: 8\n"
      "    max_instances_per_request: 20\n"
      "    max_request_bytes: 16MiB\n"
      "    connect_timeout_seconds: 5\n"
      "    request_timeout_seconds: 60\n"
      "    auth:\n"
      "      type: basic\n"
      "      username: conduit\n"
      "      password_file: /etc/conduit/stow.password\n"
      "    tls:\n"
      "      verify: false\n"
      "      ca_file: /etc/conduit/ca.pem\n"
      "    retry:\n"
      "      breaker_failures: 7\n"
      "  - {name: web2, type: stow, url: 'http://127.0.0.1:8042/dicom-web',\n"
      "     auth: {type: bearer, token_file: /run/conduit/token}}\n");
  ASSERT_EQ(config.destinations.size(), 2U);
  const DestinationConfig& web = config.destinations[0];
  EXPECT_EQ(web.kind, DestinationKind::kStow);
  EXPECT_STREQ(DestinationKindName(web.kind), "stow");
  EXPECT_EQ(web.stow.url, "https://pacs.example.org/dicom-web") << "trailing '/' dropped";
  EXPECT_EQ(web.http.parallel_requests, 8U);
  EXPECT_EQ(web.stow.max_instances_per_request, 20U);
  EXPECT_EQ(web.stow.max_request_bytes, 16ull << 20);
  EXPECT_EQ(web.connect_timeout, seconds(5));
  EXPECT_EQ(web.http.request_timeout, seconds(60));
  EXPECT_EQ(web.stow.auth, StowSettings::Auth::kBasic);
  EXPECT_EQ(web.stow.username, "conduit");
  EXPECT_EQ(web.stow.password_file, "/etc/conduit/stow.password");
  EXPECT_FALSE(web.http.tls_verify);
  EXPECT_EQ(web.http.tls_ca_file, "/etc/conduit/ca.pem");
  EXPECT_EQ(web.retry.breaker_failures, 7U);

  const DestinationConfig& web2 = config.destinations[1];
  EXPECT_EQ(web2.kind, DestinationKind::kStow);
  EXPECT_EQ(web2.stow.url, "http://127.0.0.1:8042/dicom-web");
  EXPECT_EQ(web2.stow.auth, StowSettings::Auth::kBearer);
  EXPECT_EQ(web2.stow.token_file, "/run/conduit/token");
  // Defaults.
  EXPECT_EQ(web2.http.parallel_requests, HttpSettings{}.parallel_requests);
  EXPECT_EQ(web2.stow.max_instances_per_request, StowSettings{}.max_instances_per_request);
  EXPECT_EQ(web2.stow.max_request_bytes, StowSettings{}.max_request_bytes);
  EXPECT_TRUE(web2.http.tls_verify);
}

TEST(ConfigLoaderArchiveDestinationTest, ParsesAnS3Destination) {
  const Config config = Load(
      "destinations:\n"
      "  - name: bucket\n"
      "    type: s3\n"
      "    endpoint: http://127.0.0.1:4568\n"
      "    region: eu-central-1\n"
      "    bucket: dicom-archive.eu\n"
      "    path_style: false\n"
      "    key_template: '{PatientID}/{StudyInstanceUID}/{SOPInstanceUID}.dcm'\n"
      "    credentials_file: /etc/conduit/s3.credentials\n"
      "    multipart_threshold_bytes: 128MiB\n"
      "    multipart_part_bytes: 8MiB\n"
      "    parallel_requests: 2\n"
      "    request_timeout_seconds: 30\n"
      "    tls: {verify: true}\n"
      "  - name: minio\n"
      "    type: s3\n"
      "    endpoint: https://minio.example.org:9000\n"
      "    bucket: pacs\n"
      "    access_key_id: AKIAEXAMPLE\n"
      "    secret_access_key: wJalrXUtnFEMI/K7MDENG\n");
  ASSERT_EQ(config.destinations.size(), 2U);
  const DestinationConfig& s3 = config.destinations[0];
  EXPECT_EQ(s3.kind, DestinationKind::kS3);
  EXPECT_STREQ(DestinationKindName(s3.kind), "s3");
  EXPECT_EQ(s3.s3.endpoint, "http://127.0.0.1:4568");
  EXPECT_EQ(s3.s3.region, "eu-central-1");
  EXPECT_EQ(s3.s3.bucket, "dicom-archive.eu");
  EXPECT_FALSE(s3.s3.path_style);
  EXPECT_EQ(s3.key_template, "{PatientID}/{StudyInstanceUID}/{SOPInstanceUID}.dcm");
  EXPECT_EQ(s3.s3.credentials_file, "/etc/conduit/s3.credentials");
  EXPECT_TRUE(s3.s3.access_key_id.empty());
  EXPECT_EQ(s3.s3.multipart_threshold_bytes, 128ull << 20);
  EXPECT_EQ(s3.s3.multipart_part_bytes, 8ull << 20);
  EXPECT_EQ(s3.http.parallel_requests, 2U);
  EXPECT_EQ(s3.http.request_timeout, seconds(30));
  EXPECT_TRUE(s3.http.tls_verify);

  const DestinationConfig& minio = config.destinations[1];
  EXPECT_EQ(minio.s3.endpoint, "https://minio.example.org:9000");
  EXPECT_EQ(minio.s3.bucket, "pacs");
  EXPECT_EQ(minio.s3.access_key_id, "AKIAEXAMPLE");
  EXPECT_EQ(minio.s3.secret_access_key, "wJalrXUtnFEMI/K7MDENG");
  EXPECT_EQ(minio.s3.region, "us-east-1");
  EXPECT_TRUE(minio.s3.path_style);
  EXPECT_EQ(minio.key_template, kDefaultKeyTemplate);
}

TEST(ConfigLoaderArchiveDestinationTest, ParsesAFolderDestination) {
  const Config config = Load(
      "destinations:\n"
      "  - {name: share, type: folder, path: /mnt/share/dicom}\n"
      "  - name: flat\n"
      "    type: folder\n"
      "    path: ./out\n"
      "    key_template: '{Modality}/{SOPInstanceUID}.dcm'\n"
      "    retry: {max_age_hours: 2}\n"
      "  - {name: pacs, type: dimse, host: 10.0.0.1, called_ae: MAIN}\n");
  ASSERT_EQ(config.destinations.size(), 3U);
  EXPECT_EQ(config.destinations[0].kind, DestinationKind::kFolder);
  EXPECT_STREQ(DestinationKindName(config.destinations[0].kind), "folder");
  EXPECT_EQ(config.destinations[0].folder, "/mnt/share/dicom");
  EXPECT_EQ(config.destinations[0].key_template, kDefaultKeyTemplate);
  EXPECT_EQ(config.destinations[1].folder, "./out");
  EXPECT_EQ(config.destinations[1].key_template, "{Modality}/{SOPInstanceUID}.dcm");
  EXPECT_EQ(config.destinations[1].retry.max_age, std::chrono::hours(2));
  EXPECT_EQ(config.destinations[2].kind, DestinationKind::kDimse);
  EXPECT_EQ(config.destinations[2].host, "10.0.0.1");
}

TEST(ConfigLoaderArchiveDestinationTest, KeysOfAnotherTypeAreUnknown) {
  const auto errors = Errors(
      "destinations:\n"
      "  - name: web\n"
      "    type: stow\n"
      "    url: http://pacs.example.org/dicom-web\n"
      "    called_ae: PACS\n");
  ASSERT_EQ(errors.size(), 1U) << Describe(errors);
  ExpectError(errors[0], 5, 5, "unknown key 'called_ae' in section 'destinations[0]'");
  EXPECT_TRUE(Contains(errors[0].message, "url")) << "lists the stow keys: " << errors[0].message;
  ExpectOneError("destinations:\n  - {name: f, type: folder, path: /x, bucket: b}\n", 2, 39,
                 "unknown key 'bucket'");
  ExpectOneError(
      "destinations:\n  - {name: w, type: stow, url: 'http://a.example', key_template: x}\n", 2, 52,
      "unknown key 'key_template'");
  ExpectOneError("destinations:\n  - {name: p, host: a, called_ae: A, bucket: b}\n", 2, 38,
                 "unknown key 'bucket'");
}

TEST(ConfigLoaderArchiveDestinationTest, RefusesBadStowDestinations) {
  ExpectOneError("destinations:\n  - {name: web, type: stow}\n", 2, 5,
                 "a stow destination needs url");
  ExpectOneError("destinations:\n  - name: web\n    type: stow\n    url: ftp://pacs.example.org\n",
                 4, 10, "is not an http:// or https:// URL");
  ExpectOneError("destinations:\n  - name: web\n    type: stow\n    url: 'https://'\n", 4, 10,
                 "is not an http:// or https:// URL");
  ExpectOneError("destinations:\n  - name: web\n    type: stow\n    url: https:///dicom-web\n", 4,
                 10, "is not an http:// or https:// URL");
  ExpectOneError(
      "destinations:\n"
      "  - name: web\n"
      "    type: stow\n"
      "    url: https://pacs.example.org\n"
      "    auth:\n"
      "      type: basic\n"
      "      username: conduit\n",
      6, 7, "basic auth needs username and password_file");
  ExpectOneError(
      "destinations:\n"
      "  - name: web\n"
      "    type: stow\n"
      "    url: https://pacs.example.org\n"
      "    auth: {type: bearer}\n",
      5, 11, "bearer auth needs token_file");
  ExpectOneError(
      "destinations:\n"
      "  - name: web\n"
      "    type: stow\n"
      "    url: https://pacs.example.org\n"
      "    auth: {type: digest}\n",
      5, 18, "unknown auth type 'digest'");
  ExpectOneError(
      "destinations:\n"
      "  - name: web\n"
      "    type: stow\n"
      "    url: https://pacs.example.org\n"
      "    parallel_requests: 0\n",
      5, 24, "between 1 and 64");
}

TEST(ConfigLoaderArchiveDestinationTest, RefusesBadS3Destinations) {
  const std::string head =
      "destinations:\n"
      "  - name: bucket\n"
      "    type: s3\n";
  ExpectOneError(head +
                     "    endpoint: https://s3.example.org\n"
                     "    bucket: pacs\n",
                 2, 5, "an s3 destination needs credentials");
  ExpectOneError(head +
                     "    endpoint: https://s3.example.org\n"
                     "    bucket: pacs\n"
                     "    access_key_id: AKIA\n"
                     "    secret_access_key: secret\n"
                     "    credentials_file: /etc/conduit/s3\n",
                 2, 5, "not both");
  ExpectOneError(head +
                     "    endpoint: https://s3.example.org\n"
                     "    bucket: pacs\n"
                     "    access_key_id: AKIA\n",
                 2, 5, "access_key_id and secret_access_key go together");
  ExpectOneError(head +
                     "    endpoint: https://s3.example.org\n"
                     "    bucket: Bad_Bucket\n"
                     "    credentials_file: /etc/conduit/s3\n",
                 5, 13, "is not a bucket name");
  ExpectOneError(head +
                     "    endpoint: https://s3.example.org\n"
                     "    bucket: ab\n"
                     "    credentials_file: /etc/conduit/s3\n",
                 5, 13, "is not a bucket name");
  ExpectOneError(head +
                     "    endpoint: https://s3.example.org/pacs\n"
                     "    bucket: pacs\n"
                     "    credentials_file: /etc/conduit/s3\n",
                 4, 15, "without a path");
  ExpectOneError(head +
                     "    endpoint: s3.example.org\n"
                     "    bucket: pacs\n"
                     "    credentials_file: /etc/conduit/s3\n",
                 4, 15, "is not an http:// or https:// URL");
  ExpectOneError(head +
                     "    bucket: pacs\n"
                     "    credentials_file: /etc/conduit/s3\n",
                 2, 5, "an s3 destination needs endpoint");
  ExpectOneError(head +
                     "    endpoint: https://s3.example.org\n"
                     "    credentials_file: /etc/conduit/s3\n",
                 2, 5, "an s3 destination needs bucket");
  ExpectOneError(head +
                     "    endpoint: https://s3.example.org\n"
                     "    bucket: pacs\n"
                     "    credentials_file: /etc/conduit/s3\n"
                     "    multipart_part_bytes: 1MiB\n",
                 7, 27, "multipart_part_bytes");
}

TEST(ConfigLoaderArchiveDestinationTest, RefusesBadFolderDestinationsAndKeyTemplates) {
  ExpectOneError("destinations:\n  - {name: share, type: folder}\n", 2, 5,
                 "a folder destination needs path");
  ExpectOneError(
      "destinations:\n"
      "  - name: share\n"
      "    type: folder\n"
      "    path: /mnt/share\n"
      "    key_template: '{PatientNme}/{SOPInstanceUID}.dcm'\n",
      5, 19, "PatientNme");
  ExpectOneError(
      "destinations:\n"
      "  - name: share\n"
      "    type: folder\n"
      "    path: /mnt/share\n"
      "    key_template: '../{SOPInstanceUID}.dcm'\n",
      5, 19, "'..'");
  ExpectOneError(
      "destinations:\n"
      "  - name: bucket\n"
      "    type: s3\n"
      "    endpoint: https://s3.example.org\n"
      "    bucket: pacs\n"
      "    credentials_file: /etc/conduit/s3\n"
      "    key_template: '/{SOPInstanceUID}'\n",
      7, 19, "must not start with '/'");
}

TEST(ConfigLoaderArchiveDestinationTest, RefusesAnUnknownType) {
  const auto errors = Errors("destinations:\n  - {name: x, type: ftp, host: a, called_ae: A}\n");
  ASSERT_EQ(errors.size(), 1U) << Describe(errors);
  ExpectError(errors[0], 2, 21, "unknown destination type 'ftp'");
  EXPECT_TRUE(Contains(errors[0].message, "stow")) << errors[0].message;
  EXPECT_TRUE(Contains(errors[0].message, "folder")) << errors[0].message;
}

}  // namespace
}  // namespace conduit::config
