#include "router/config/config_loader.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

#include "codecs/codec_registry.h"
#include "codecs/transfer_syntax_registry.h"
#include "router/forward/object_key.h"
#include "rules/edit_distance.h"
#include "rules/yaml_document.h"

namespace conduit::config {

std::string ConfigError::ToString() const {
  if (line == 0) {
    return file + ": " + message;
  }
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

// Bounds agreed for the configuration contract.
constexpr std::int64_t kMaxThreads = 64;
constexpr std::int64_t kMinTimeoutSeconds = 1;
constexpr std::int64_t kMaxTimeoutSeconds = 86400;  // one day
constexpr std::int64_t kMinPort = 1;
constexpr std::int64_t kMaxPort = 65535;
constexpr std::int64_t kMaxUint32 = std::numeric_limits<std::uint32_t>::max();
// PS3.8 D.1: the Maximum Length we advertise for received P-DATA-TF PDUs. 4096 is the smallest
// DCMTK peers accept (ASC_MINIMUMPDUSIZE); 16 MiB bounds the buffer each association may hold.
constexpr std::uint64_t kMinPduBytes = 4096;
constexpr std::uint64_t kMaxPduBytes = 16ULL << 20;
// A sync_file_range chunk under a page only adds system calls; over 1 GiB lets a single stream
// pile up the dirty data the chunking exists to bound.
constexpr std::uint64_t kMinWritebackChunkBytes = 4096;
constexpr std::uint64_t kMaxWritebackChunkBytes = 1ULL << 30;
constexpr std::uint64_t kMaxUint64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kMaxAeTitleLength = 16;  // PS3.5 6.2, VR AE
constexpr std::size_t kMaxUidLength = 64;      // PS3.5 9.1

constexpr auto kTopLevelKeys =
    std::to_array<std::string_view>({"network_threads", "log_level", "listener", "spool", "metrics",
                                     "rules", "destinations", "transcoding", "admin"});
constexpr auto kListenerKeys = std::to_array<std::string_view>({
    "bind_address",
    "port",
    "ae_title",
    "require_called_ae",
    "allowed_calling_aes",
    "allowed_networks",
    "max_associations",
    "max_associations_per_peer",
    "max_pdu_bytes",
    "artim_timeout_seconds",
    "idle_timeout_seconds",
    "sop_classes",
    "transfer_syntax_preference",
    "accepted_transfer_syntaxes",
});
constexpr auto kSpoolKeys =
    std::to_array<std::string_view>({"directory", "max_bytes", "min_free_bytes", "max_instances",
                                     "sync_threads", "writeback_chunk_bytes"});
constexpr auto kMetricsKeys = std::to_array<std::string_view>({"enabled", "listen"});
constexpr auto kRulesKeys = std::to_array<std::string_view>({"file", "reload_check_seconds"});
// The keys of each kind of destination ("name", "type" and "retry" are common to all).
constexpr auto kDimseDestinationKeys = std::to_array<std::string_view>({
    "name",
    "type",
    "retry",
    "host",
    "port",
    "called_ae",
    "calling_ae",
    "max_associations",
    "max_instances_per_association",
    "max_pdu_bytes",
    "connect_timeout_seconds",
    "response_timeout_seconds",
    "idle_timeout_seconds",
    "transfer_syntaxes",
    "warning_is_success",
});
constexpr auto kStowDestinationKeys = std::to_array<std::string_view>({
    "name",
    "type",
    "retry",
    "url",
    "parallel_requests",
    "max_instances_per_request",
    "max_request_bytes",
    "connect_timeout_seconds",
    "request_timeout_seconds",
    "auth",
    "tls",
});
constexpr auto kS3DestinationKeys = std::to_array<std::string_view>({
    "name",
    "type",
    "retry",
    "endpoint",
    "region",
    "bucket",
    "path_style",
    "key_template",
    "access_key_id",
    "secret_access_key",
    "credentials_file",
    "multipart_threshold_bytes",
    "multipart_part_bytes",
    "parallel_requests",
    "connect_timeout_seconds",
    "request_timeout_seconds",
    "tls",
});
constexpr auto kFolderDestinationKeys =
    std::to_array<std::string_view>({"name", "type", "retry", "path", "key_template"});
constexpr auto kAuthKeys =
    std::to_array<std::string_view>({"type", "username", "password_file", "token_file"});
constexpr auto kTlsKeys = std::to_array<std::string_view>({"verify", "ca_file"});
constexpr std::int64_t kMaxParallelRequests = 64;
constexpr std::int64_t kMaxInstancesPerRequest = 10000;
constexpr std::uint64_t kMinRequestBytes = 64ull << 10;
// S3: parts are 5 MiB to 5 GiB, at most 10,000 of them.
constexpr std::uint64_t kMinPartBytes = 5ull << 20;
constexpr std::uint64_t kMaxPartBytes = 5ull << 30;
constexpr auto kRetryKeys =
    std::to_array<std::string_view>({"initial_delay_ms", "max_delay_seconds", "multiplier",
                                     "jitter_percent", "max_age_hours", "breaker_failures"});
constexpr auto kAdminKeys = std::to_array<std::string_view>({"socket"});
constexpr auto kTranscodingKeys = std::to_array<std::string_view>({"threads", "profiles"});
constexpr auto kProfileKeys = std::to_array<std::string_view>(
    {"name", "transfer_syntax", "lossy", "quality", "compression_ratio", "near_lossless"});
constexpr std::int64_t kMaxDestinationAssociations = 64;
constexpr std::int64_t kMaxRetryAgeHours = 24 * 365;
constexpr std::size_t kMaxHostNameLength = 253;  // RFC 1035
// PS3.8 9.3.2: at most 128 presentation contexts; "stored" plus a few fallbacks is the norm.
constexpr std::size_t kMaxOfferedTransferSyntaxes = 8;
constexpr std::string_view kStoredTransferSyntax = "stored";
// What the forwarder can produce from any uncompressed instance without the transcoding
// pipeline (which will add the compressed syntaxes).
constexpr auto kConvertibleTransferSyntaxes = std::to_array<std::string_view>({
    "1.2.840.10008.1.2",    // Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  // Explicit VR Little Endian
});
constexpr std::size_t kMaxDestinationNameLength = 64;

template <typename Enum>
using Choice = std::pair<std::string_view, Enum>;

constexpr std::array<Choice<DestinationKind>, 4> kDestinationKinds = {
    {{"dimse", DestinationKind::kDimse},
     {"stow", DestinationKind::kStow},
     {"s3", DestinationKind::kS3},
     {"folder", DestinationKind::kFolder}}};
constexpr std::array<Choice<StowSettings::Auth>, 3> kStowAuthKinds = {
    {{"none", StowSettings::Auth::kNone},
     {"basic", StowSettings::Auth::kBasic},
     {"bearer", StowSettings::Auth::kBearer}}};

constexpr std::array<Choice<LogLevel>, 4> kLogLevels = {{{"debug", LogLevel::kDebug},
                                                         {"info", LogLevel::kInfo},
                                                         {"warning", LogLevel::kWarning},
                                                         {"error", LogLevel::kError}}};
// A list of UIDs is the third spelling of sop_classes (kListed), handled apart from these.
constexpr std::array<Choice<SopClassPolicy>, 2> kSopClassPolicies = {
    {{"standard", SopClassPolicy::kStandardStorage}, {"any", SopClassPolicy::kAny}}};
constexpr std::array<Choice<TransferSyntaxPreference>, 2> kTransferSyntaxPreferences = {
    {{"sender", TransferSyntaxPreference::kSender}, {"listed", TransferSyntaxPreference::kListed}}};

struct SizeUnit {
  std::string_view suffix;
  std::uint64_t bytes;
};
constexpr std::array<SizeUnit, 9> kSizeUnits = {{{"B", 1},
                                                 {"kB", 1000},
                                                 {"MB", 1000ULL * 1000},
                                                 {"GB", 1000ULL * 1000 * 1000},
                                                 {"TB", 1000ULL * 1000 * 1000 * 1000},
                                                 {"KiB", 1ULL << 10},
                                                 {"MiB", 1ULL << 20},
                                                 {"GiB", 1ULL << 30},
                                                 {"TiB", 1ULL << 40}}};
constexpr std::string_view kSizeUnitsHelp =
    "B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)";

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

std::string JoinNames(std::span<const std::string_view> names) {
  std::string joined;
  for (const std::string_view name : names) {
    if (!joined.empty()) {
      joined += ", ";
    }
    joined += name;
  }
  return joined;
}

template <typename Enum, std::size_t N>
std::string JoinChoiceNames(const std::array<Choice<Enum>, N>& choices) {
  std::array<std::string_view, N> names;
  std::transform(choices.begin(), choices.end(), names.begin(),
                 [](const Choice<Enum>& choice) { return choice.first; });
  return JoinNames(names);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::string_view TrimSpaces(std::string_view text) {
  const std::size_t first = text.find_first_not_of(' ');
  if (first == std::string_view::npos) {
    return {};
  }
  return text.substr(first, text.find_last_not_of(' ') - first + 1);
}

std::optional<std::string_view> ClosestName(std::string_view name,
                                            std::span<const std::string_view> candidates) {
  constexpr std::size_t kMaxTypos = 2;
  std::optional<std::string_view> closest;
  std::size_t closest_distance = kMaxTypos + 1;
  for (const std::string_view candidate : candidates) {
    const std::size_t distance = rules::EditDistance(name, candidate);
    if (distance < closest_distance) {
      closest = candidate;
      closest_distance = distance;
    }
  }
  return closest;
}

// "16MiB" when the size is a whole number of a binary unit, else "1000 bytes".
std::string FormatByteSize(std::uint64_t bytes) {
  for (auto unit = kSizeUnits.rbegin(); unit != kSizeUnits.rend(); ++unit) {
    if (unit->suffix.find('i') != std::string_view::npos && bytes != 0 &&
        bytes % unit->bytes == 0) {
      return std::to_string(bytes / unit->bytes) + std::string(unit->suffix);
    }
  }
  return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
}

// A value, or the reason the text could not be read as one.
template <typename T>
using Parsed = std::variant<T, std::string>;

// "131072", "512KiB", "2 GB". Whole numbers only: "1.5GiB" is ambiguous about rounding.
Parsed<std::uint64_t> ParseByteSize(std::string_view text) {
  const std::string_view number_text = text.substr(
      0,
      static_cast<std::size_t>(std::find_if_not(text.begin(), text.end(), IsDigit) - text.begin()));
  const std::string_view unit_text = TrimSpaces(text.substr(number_text.size()));
  if (!text.empty() && text.front() == '-') {
    return "a size must not be negative, got " + Quoted(text);
  }
  if (number_text.empty()) {
    return "expected a size such as 131072, 512KiB or 2GB, got " + Quoted(text);
  }
  if (!unit_text.empty() && (unit_text.front() == '.' || unit_text.front() == ',')) {
    return "a size must be a whole number (write 1536MiB, not 1.5GiB), got " + Quoted(text);
  }
  const auto unit = std::find_if(kSizeUnits.begin(), kSizeUnits.end(),
                                 [&](const SizeUnit& u) { return u.suffix == unit_text; });
  if (!unit_text.empty() && unit == kSizeUnits.end()) {
    return "unknown size unit " + Quoted(unit_text) + " in " + Quoted(text) + "; use " +
           std::string(kSizeUnitsHelp);
  }
  std::uint64_t count = 0;
  const auto [end, error] =
      std::from_chars(number_text.data(), number_text.data() + number_text.size(), count);
  const std::uint64_t multiplier = unit_text.empty() ? 1 : unit->bytes;
  if (error == std::errc::result_out_of_range || count > kMaxUint64 / multiplier) {
    return Quoted(text) + " is too large";
  }
  return count * multiplier;
}

// PS3.5 6.2, VR AE: at most 16 characters of the default repertoire (printable ASCII), without
// backslash, and not only spaces.
std::optional<std::string> AeTitleProblem(std::string_view title) {
  if (TrimSpaces(title).empty()) {
    return std::string("an AE title must not be empty or only spaces");
  }
  if (title.size() > kMaxAeTitleLength) {
    return Quoted(title) + " is " + std::to_string(title.size()) +
           " characters long; an AE title has at most 16";
  }
  if (title.find('\\') != std::string_view::npos) {
    return Quoted(title) + " contains a backslash, which an AE title must not";
  }
  const bool printable_ascii = std::all_of(title.begin(), title.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte >= 0x20 && byte < 0x7f;
  });
  if (!printable_ascii) {
    return "an AE title must contain only printable ASCII characters (no control characters)";
  }
  return std::nullopt;
}

// PS3.5 9.1: components of digits separated by single dots, at most 64 characters. Leading zeros
// in a component are also forbidden by the standard but occur in deployed private UIDs, and
// rejecting them here would leave an admin no way to accept such a SOP class.
std::optional<std::string> UidProblem(std::string_view uid) {
  if (uid.empty()) {
    return std::string("a UID must not be empty");
  }
  if (uid.size() > kMaxUidLength) {
    return Quoted(uid) + " is " + std::to_string(uid.size()) +
           " characters long; a UID has at most 64";
  }
  if (!std::all_of(uid.begin(), uid.end(), [](char c) { return IsDigit(c) || c == '.'; })) {
    return Quoted(uid) + " is not a UID: only digits and dots are allowed";
  }
  if (uid.front() == '.' || uid.back() == '.' || uid.find("..") != std::string_view::npos) {
    return Quoted(uid) + " is not a UID: it has an empty component";
  }
  return std::nullopt;
}

bool IsIpAddress(std::string_view text, int family) {
  std::array<std::uint8_t, 16> bytes{};
  return inet_pton(family, std::string(text).c_str(), bytes.data()) == 1;
}

bool IsIpAddress(std::string_view text) {
  return IsIpAddress(text, AF_INET) || IsIpAddress(text, AF_INET6);
}

std::optional<std::string> BindAddressProblem(std::string_view address) {
  if (IsIpAddress(address)) {
    return std::nullopt;
  }
  return Quoted(address) +
         " is not an IPv4 or IPv6 address (host names are not accepted; 0.0.0.0 or :: listens "
         "on every interface)";
}

// Anything but blank lines, comments and document markers.
bool HasContentBesidesComments(std::string_view text) {
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    line = line.substr(0, line.find('#'));
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    if (line != "---" && line != "...") return true;
  }
  return false;
}

std::optional<std::string> FilePathProblem(std::string_view path) {
  if (path.empty()) return std::string("the path must not be empty (leave the key out instead)");
  return std::nullopt;
}

// Destination names appear in rules, logs, metrics labels and the queue CLI: keep them plain.
std::optional<std::string> DestinationNameProblem(std::string_view name) {
  const bool plain =
      !name.empty() && name.size() <= kMaxDestinationNameLength &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!plain) {
    return Quoted(name) +
           " is not a destination name: use 1 to 64 letters, digits, '_', '-' "
           "or '.'";
  }
  return std::nullopt;
}

std::optional<std::string> HostProblem(std::string_view host) {
  const bool plain = !host.empty() && host.size() <= kMaxHostNameLength &&
                     std::all_of(host.begin(), host.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
                              c == ':' || c == '_';
                     });
  if (!plain) {
    return Quoted(host) + " is not a host name or IP address";
  }
  return std::nullopt;
}

std::optional<std::string> HttpUrlProblem(std::string_view url) {
  const bool has_scheme = url.starts_with("http://") || url.starts_with("https://");
  const std::size_t host_start = url.find("://") + 3;
  if (!has_scheme || url.size() <= host_start || url[host_start] == '/' ||
      url.find_first_of(" \t\r\n") != std::string_view::npos) {
    return Quoted(url) + " is not an http:// or https:// URL with a host";
  }
  return std::nullopt;
}

// The endpoint of an object store is a scheme and a host, maybe a port: the bucket and key go
// after it, so it takes no path.
std::optional<std::string> EndpointProblem(std::string_view endpoint) {
  if (auto problem = HttpUrlProblem(endpoint)) return problem;
  const std::string_view rest = endpoint.substr(endpoint.find("://") + 3);
  const bool host_and_port = std::all_of(rest.begin(), rest.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
           c == '[' || c == ']';
  });
  if (!host_and_port) {
    return Quoted(endpoint) + " must be scheme://host[:port] without a path, e.g. " +
           "https://s3.eu-central-1.amazonaws.com";
  }
  return std::nullopt;
}

// S3 bucket naming rules, the part that matters for addressing: 3-63 lower-case letters,
// digits, '.' and '-'.
std::optional<std::string> BucketProblem(std::string_view bucket) {
  const bool valid =
      bucket.size() >= 3 && bucket.size() <= 63 &&
      std::all_of(bucket.begin(), bucket.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
      });
  if (!valid) {
    return Quoted(bucket) + " is not a bucket name: 3 to 63 lower-case letters, digits, '.', '-'";
  }
  return std::nullopt;
}

std::optional<std::string> RegionProblem(std::string_view region) {
  const bool valid = !region.empty() && region.size() <= 64 &&
                     std::all_of(region.begin(), region.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
                     });
  if (!valid) return Quoted(region) + " is not a region name such as us-east-1";
  return std::nullopt;
}

std::optional<std::string> KeyTemplateProblem(std::string_view text) {
  auto parsed = forward::KeyTemplate::Parse(text);
  if (!parsed) return parsed.error();
  return std::nullopt;
}

// Credentials and user names go into headers: no control characters.
std::optional<std::string> HeaderValueProblem(std::string_view value) {
  if (value.empty()) return std::string("must not be empty");
  if (std::any_of(value.begin(), value.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return std::string("must not contain control characters");
  }
  return std::nullopt;
}

std::optional<std::string> OfferedTransferSyntaxProblem(std::string_view entry) {
  if (entry == kStoredTransferSyntax) return std::nullopt;
  if (std::find(kConvertibleTransferSyntaxes.begin(), kConvertibleTransferSyntaxes.end(), entry) !=
      kConvertibleTransferSyntaxes.end()) {
    return std::nullopt;
  }
  return Quoted(entry) +
         " cannot be offered: use 'stored' (the syntax the instance arrived in) or an "
         "uncompressed syntax (1.2.840.10008.1.2, 1.2.840.10008.1.2.1); to compress for a "
         "destination, name a transcoding profile in its route (transcode: NAME)";
}

// sockaddr_un's sun_path holds 108 bytes including the terminating NUL.
std::optional<std::string> SocketPathProblem(std::string_view path) {
  constexpr std::size_t kMaxSocketPathLength = 107;
  if (path.empty()) return std::string("the path must not be empty (leave the key out instead)");
  if (path.size() > kMaxSocketPathLength) {
    return "a local socket path must be at most " + std::to_string(kMaxSocketPathLength) +
           " bytes, got " + std::to_string(path.size());
  }
  return std::nullopt;
}

// What a transcode profile may target: a syntax with a frame codec, or uncompressed; lossy ones
// only when the profile says lossy, so that nothing is ever compressed lossily by accident.
std::optional<std::string> TranscodeTargetProblem(std::string_view uid, bool lossy) {
  const codecs::TransferSyntax* syntax = codecs::FindTransferSyntax(uid);
  const bool uncompressed =
      uid == codecs::uid::kExplicitVrLittleEndian || uid == codecs::uid::kImplicitVrLittleEndian;
  if (!syntax || (!uncompressed && !codecs::FindFrameCodec(uid))) {
    std::string known = "1.2.840.10008.1.2.1, 1.2.840.10008.1.2";
    for (const std::string_view coded : codecs::CodedTransferSyntaxes()) {
      known += ", " + std::string(coded);
    }
    return Quoted(uid) + " cannot be a transcoding target; use one of " + known;
  }
  // Lossy-only syntaxes (JPEG baseline and extended, JPEG-LS near-lossless). JPEG 2000 and
  // HTJ2K code losslessly unless the profile says lossy.
  const bool lossy_only =
      syntax->lossy && uid != "1.2.840.10008.1.2.4.91" && uid != "1.2.840.10008.1.2.4.203";
  if (lossy_only && !lossy) {
    return std::string(syntax->name) +
           " is lossy: add 'lossy: true' to the profile to allow lossy compression";
  }
  return std::nullopt;
}

std::optional<std::string> DirectoryProblem(std::string_view directory) {
  if (directory.empty()) {
    return std::string("the directory must not be empty");
  }
  return std::nullopt;
}

// "127.0.0.1:9112" or "[::1]:9112". Only literal addresses: the metrics endpoint binds without
// resolving names.
std::optional<std::string> ListenAddressProblem(std::string_view text) {
  const std::string_view example = " (e.g. 127.0.0.1:9112 or [::1]:9112)";
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return "expected host:port" + std::string(example) + ", got " + Quoted(text);
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (!IsIpAddress(host, AF_INET6)) {
      return Quoted(host) + " in " + Quoted(text) + " is not an IPv6 address";
    }
  } else if (host.find(':') != std::string_view::npos) {
    return "put an IPv6 address in brackets" + std::string(example) + ", got " + Quoted(text);
  } else if (!IsIpAddress(host, AF_INET)) {
    return Quoted(host) + " in " + Quoted(text) +
           " is not an IP address (host names are not accepted)";
  }
  int port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port < kMinPort || port > kMaxPort) {
    return "the port in " + Quoted(text) + " must be a number between 1 and 65535";
  }
  return std::nullopt;
}

// One value of the document, with what an error about it needs.
struct Field {
  std::string path;  // "listener.port"; empty for the document itself
  YAML::Node value;
  // Where the value is, or where its key is when the value is empty: yaml-cpp marks an empty
  // value at the next token, which may be lines further down.
  YAML::Mark mark;
};

// The fields of one YAML mapping by key, after its keys have been checked.
using Section = std::map<std::string, Field, std::less<>>;

std::optional<Field> Find(const Section& section, std::string_view key) {
  const auto found = section.find(key);
  if (found == section.end()) {
    return std::nullopt;
  }
  return found->second;
}

std::string_view Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a section of keys";
    case YAML::NodeType::Scalar:
      return "a single value";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

// Walks the document once, filling a Config and collecting every problem on the way so that the
// admin can fix them all in one edit.
class ConfigReader {
 public:
  explicit ConfigReader(std::string_view source_name) : source_name_(source_name) {}

  Config Read(const YAML::Node& document) {
    Config config;
    const YAML::Mark start{};  // line 0, column 0: an empty document has no mark of its own
    const Section top = OpenSection(Field{"", document, MarkOr(document, start)}, kTopLevelKeys);
    if (const auto field = Find(top, "network_threads")) {
      AssignInteger(*field, 0, kMaxThreads, config.network_threads);
    }
    if (const auto field = Find(top, "log_level")) {
      AssignChoice(*field, "log level", kLogLevels, config.log_level);
    }
    if (const auto field = Find(top, "listener")) {
      ReadListener(*field, config.listener);
    }
    if (const auto field = Find(top, "spool")) {
      ReadSpool(*field, config.spool);
    }
    if (const auto field = Find(top, "metrics")) {
      ReadMetrics(*field, config.metrics);
    }
    if (const auto field = Find(top, "rules")) {
      ReadRules(*field, config.rules);
    }
    if (const auto field = Find(top, "destinations")) {
      ReadDestinations(*field, config.destinations);
    }
    if (const auto field = Find(top, "transcoding")) {
      ReadTranscoding(*field, config.transcoding);
    }
    if (const auto field = Find(top, "admin")) {
      ReadAdmin(*field, config.admin);
    }
    for (DestinationConfig& destination : config.destinations) {
      if (destination.calling_ae.empty()) destination.calling_ae = config.listener.ae_title;
    }
    return config;
  }

  void AddError(const YAML::Mark& mark, const std::string& path, std::string_view message) {
    ConfigError error;
    error.file = source_name_;
    error.line = mark.line + 1;
    error.column = mark.column + 1;
    error.message = path.empty() ? std::string(message) : path + ": " + std::string(message);
    errors_.push_back(std::move(error));
  }

  // In file order, whatever order the checks ran in.
  std::vector<ConfigError> TakeErrors() {
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ConfigError& a, const ConfigError& b) {
                       return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                     });
    return std::move(errors_);
  }

 private:
  static YAML::Mark MarkOr(const YAML::Node& node, const YAML::Mark& fallback) {
    return node.IsNull() || node.Mark().is_null() ? fallback : node.Mark();
  }

  void AddError(const Field& field, std::string_view message) {
    AddError(field.mark, field.path, message);
  }

  // An empty section (every key commented out) keeps all defaults, like a missing one.
  Section OpenSection(const Field& field, std::span<const std::string_view> allowed_keys) {
    Section section;
    if (field.value.IsNull()) {
      return section;
    }
    if (!field.value.IsMap()) {
      AddError(field, "expected a section of 'key: value' lines, got " +
                          std::string(Describe(field.value)));
      return section;
    }
    std::map<std::string, YAML::Mark, std::less<>> key_marks;
    const std::string where =
        field.path.empty() ? "at the top level" : "in section " + Quoted(field.path);
    for (const auto& entry : field.value) {
      const YAML::Node& key_node = entry.first;
      if (!key_node.IsScalar()) {
        AddError(
            key_node.Mark(), "",
            "a key must be a plain name, got " + std::string(Describe(key_node)) + " " + where);
        continue;
      }
      const std::string& key = key_node.Scalar();
      if (std::find(allowed_keys.begin(), allowed_keys.end(), key) == allowed_keys.end()) {
        std::string message = "unknown key " + Quoted(key) + " " + where;
        if (const auto suggestion = ClosestName(key, allowed_keys)) {
          message += " (did you mean " + Quoted(*suggestion) + "?)";
        }
        message += "; allowed keys: " + JoinNames(allowed_keys);
        AddError(key_node.Mark(), "", message);
        continue;
      }
      const std::string path = field.path.empty() ? key : field.path + "." + key;
      const auto [first_key_mark, is_first] = key_marks.try_emplace(key, key_node.Mark());
      if (!is_first) {
        // yaml-cpp keeps both entries; which one wins would otherwise be a silent surprise.
        AddError(key_node.Mark(), path,
                 "duplicate key; it is already set on line " +
                     std::to_string(first_key_mark->second.line + 1));
        continue;
      }
      section.try_emplace(key, Field{path, entry.second, MarkOr(entry.second, key_node.Mark())});
    }
    return section;
  }

  // The scalar's text; an error for an empty value, a list or a section.
  std::optional<std::string> ReadScalar(const Field& field, std::string_view expected) {
    if (!field.value.IsScalar()) {
      AddError(field,
               "expected " + std::string(expected) + ", got " + std::string(Describe(field.value)));
      return std::nullopt;
    }
    return field.value.Scalar();
  }

  std::optional<std::int64_t> ReadInteger(const Field& field, std::int64_t min, std::int64_t max) {
    const std::optional<std::string> text = ReadScalar(field, "a whole number");
    if (!text) {
      return std::nullopt;
    }
    std::int64_t value = 0;
    const char* const text_end = text->data() + text->size();
    const auto [end, error] = std::from_chars(text->data(), text_end, value);
    const bool out_of_range = error == std::errc::result_out_of_range ||
                              (error == std::errc() && (value < min || value > max));
    if (out_of_range && end == text_end) {
      // kMaxUint32 is only the width of the field, not a limit worth quoting to someone who
      // wrote 0.
      const bool too_small = error == std::errc() && value < min;
      const std::string bounds = max == kMaxUint32 && too_small ? "at least " + std::to_string(min)
                                                                : "between " + std::to_string(min) +
                                                                      " and " + std::to_string(max);
      AddError(field, "must be " + bounds + ", got " + *text);
      return std::nullopt;
    }
    if (error != std::errc() || end != text_end) {
      AddError(field, "expected a whole number, got " + Quoted(*text));
      return std::nullopt;
    }
    return value;
  }

  template <typename Target>
  void AssignInteger(const Field& field, std::int64_t min, std::int64_t max, Target& target) {
    if (const auto value = ReadInteger(field, min, max)) {
      target = static_cast<Target>(*value);
    }
  }

  void AssignSeconds(const Field& field, std::chrono::seconds& target) {
    if (const auto value = ReadInteger(field, kMinTimeoutSeconds, kMaxTimeoutSeconds)) {
      target = std::chrono::seconds(*value);
    }
  }

  template <typename Target>
  void AssignByteSize(const Field& field, std::uint64_t min, std::uint64_t max, Target& target) {
    const std::optional<std::string> text =
        ReadScalar(field, "a size such as 131072, 512KiB or 2GB");
    if (!text) {
      return;
    }
    const Parsed<std::uint64_t> parsed = ParseByteSize(*text);
    if (const auto* problem = std::get_if<std::string>(&parsed)) {
      AddError(field, *problem);
      return;
    }
    const std::uint64_t bytes = std::get<std::uint64_t>(parsed);
    if (bytes < min || bytes > max) {
      const std::string bounds =
          max == kMaxUint64 ? "at least " + FormatByteSize(min)
                            : "between " + FormatByteSize(min) + " and " + FormatByteSize(max);
      AddError(field, "must be " + bounds + ", got " + FormatByteSize(bytes));
      return;
    }
    target = static_cast<Target>(bytes);
  }

  // YAML 1.2 core schema booleans; "yes"/"on" (YAML 1.1) are refused rather than guessed at.
  void AssignBool(const Field& field, bool& target) {
    const std::optional<std::string> text = ReadScalar(field, "true or false");
    if (!text) {
      return;
    }
    if (*text == "true" || *text == "True" || *text == "TRUE") {
      target = true;
    } else if (*text == "false" || *text == "False" || *text == "FALSE") {
      target = false;
    } else {
      AddError(field, "expected true or false, got " + Quoted(*text));
    }
  }

  // `other_spellings` describes what the caller accepts besides the words, if anything.
  template <typename Enum, std::size_t N>
  void AssignChoice(const Field& field, std::string_view what,
                    const std::array<Choice<Enum>, N>& choices, Enum& target,
                    std::string_view other_spellings = "") {
    const std::string expected =
        "one of " + JoinChoiceNames(choices) + std::string(other_spellings);
    const std::optional<std::string> text = ReadScalar(field, expected);
    if (!text) {
      return;
    }
    const auto choice = std::find_if(choices.begin(), choices.end(),
                                     [&](const Choice<Enum>& c) { return c.first == *text; });
    if (choice == choices.end()) {
      AddError(field,
               "unknown " + std::string(what) + " " + Quoted(*text) + "; expected " + expected);
      return;
    }
    target = choice->second;
  }

  // Any scalar is text (an AE title may well look like a number), checked by `problem_of`.
  std::optional<std::string> ReadText(
      const Field& field, std::string_view expected,
      const std::function<std::optional<std::string>(std::string_view)>& problem_of) {
    std::optional<std::string> text = ReadScalar(field, expected);
    if (!text) {
      return std::nullopt;
    }
    if (const std::optional<std::string> problem = problem_of(*text)) {
      AddError(field, *problem);
      return std::nullopt;
    }
    return text;
  }

  // PS3.5 6.2: leading and trailing spaces of an AE title are not significant; dropping them
  // here lets the rest of the router compare titles exactly.
  std::optional<std::string> ReadAeTitle(const Field& field) {
    const std::optional<std::string> text = ReadScalar(field, "an AE title");
    if (!text) {
      return std::nullopt;
    }
    std::string title(TrimSpaces(*text));
    if (const std::optional<std::string> problem = AeTitleProblem(title)) {
      AddError(field, *problem);
      return std::nullopt;
    }
    return title;
  }

  std::optional<std::string> ReadUid(const Field& field) {
    return ReadText(field, "a UID", UidProblem);
  }

  std::optional<rules::Cidr> ReadCidr(const Field& field) {
    const std::optional<std::string> text = ReadScalar(field, "a network such as 10.0.0.0/8");
    if (!text) {
      return std::nullopt;
    }
    std::optional<rules::Cidr> cidr = rules::Cidr::Parse(*text);
    if (!cidr) {
      AddError(field, Quoted(*text) +
                          " is not a network in CIDR notation: expected an IPv4 or IPv6 address, "
                          "optionally with /prefix (0-32 for IPv4, 0-128 for IPv6) and no address "
                          "bits set after the prefix, e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8");
    }
    return cidr;
  }

  // Every element is read, so that each bad one is reported; nullopt if any was bad. An empty
  // value (all entries commented out) is the empty list.
  template <typename Element>
  std::optional<std::vector<Element>> ReadList(
      const Field& field, std::optional<Element> (ConfigReader::*read_element)(const Field&)) {
    std::vector<Element> elements;
    if (field.value.IsNull()) {
      return elements;
    }
    if (!field.value.IsSequence()) {
      AddError(field, "expected a list, got " + std::string(Describe(field.value)) +
                          " (write [] for an empty list)");
      return std::nullopt;
    }
    bool all_valid = true;
    std::size_t index = 0;
    for (const YAML::Node& element : field.value) {
      const Field element_field{field.path + "[" + std::to_string(index++) + "]", element,
                                MarkOr(element, field.mark)};
      if (std::optional<Element> value = (this->*read_element)(element_field)) {
        elements.push_back(std::move(*value));
      } else {
        all_valid = false;
      }
    }
    if (!all_valid) {
      return std::nullopt;
    }
    return elements;
  }

  template <typename Element>
  void AssignList(const Field& field,
                  std::optional<Element> (ConfigReader::*read_element)(const Field&),
                  std::vector<Element>& target) {
    if (auto elements = ReadList(field, read_element)) {
      target = std::move(*elements);
    }
  }

  void ReadSopClasses(const Field& field, ListenerConfig& listener) {
    if (!field.value.IsSequence()) {
      AssignChoice(field, "SOP class policy", kSopClassPolicies, listener.sop_class_policy,
                   ", or a list of SOP Class UIDs");
      return;
    }
    std::optional<std::vector<std::string>> uids = ReadList(field, &ConfigReader::ReadUid);
    if (!uids) {
      return;
    }
    if (uids->empty()) {
      // Verification alone makes no sense for a router; this is a mistake, not a policy.
      AddError(field, "an empty list would refuse every SOP class; list SOP Class UIDs, or use " +
                          JoinChoiceNames(kSopClassPolicies));
      return;
    }
    listener.sop_class_policy = SopClassPolicy::kListed;
    listener.accepted_sop_classes = std::move(*uids);
  }

  void ReadListener(const Field& section_field, ListenerConfig& listener) {
    const Section section = OpenSection(section_field, kListenerKeys);
    if (const auto field = Find(section, "bind_address")) {
      if (auto address = ReadText(*field, "an IP address", BindAddressProblem)) {
        listener.bind_address = std::move(*address);
      }
    }
    if (const auto field = Find(section, "port")) {
      AssignInteger(*field, kMinPort, kMaxPort, listener.port);
    }
    if (const auto field = Find(section, "ae_title")) {
      if (auto title = ReadAeTitle(*field)) {
        listener.ae_title = std::move(*title);
      }
    }
    if (const auto field = Find(section, "require_called_ae")) {
      AssignBool(*field, listener.require_called_ae);
    }
    if (const auto field = Find(section, "allowed_calling_aes")) {
      AssignList(*field, &ConfigReader::ReadAeTitle, listener.allowed_calling_aes);
    }
    if (const auto field = Find(section, "allowed_networks")) {
      AssignList(*field, &ConfigReader::ReadCidr, listener.allowed_networks);
    }
    ReadAssociationLimits(section, listener);
    if (const auto field = Find(section, "max_pdu_bytes")) {
      AssignByteSize(*field, kMinPduBytes, kMaxPduBytes, listener.max_pdu_bytes);
    }
    if (const auto field = Find(section, "artim_timeout_seconds")) {
      AssignSeconds(*field, listener.artim_timeout);
    }
    if (const auto field = Find(section, "idle_timeout_seconds")) {
      AssignSeconds(*field, listener.idle_timeout);
    }
    if (const auto field = Find(section, "sop_classes")) {
      ReadSopClasses(*field, listener);
    }
    if (const auto field = Find(section, "transfer_syntax_preference")) {
      AssignChoice(*field, "transfer syntax preference", kTransferSyntaxPreferences,
                   listener.transfer_syntax_preference);
    }
    if (const auto field = Find(section, "accepted_transfer_syntaxes")) {
      AssignList(*field, &ConfigReader::ReadUid, listener.accepted_transfer_syntaxes);
    }
  }

  void ReadAssociationLimits(const Section& section, ListenerConfig& listener) {
    bool max_associations_valid = true;
    if (const auto field = Find(section, "max_associations")) {
      const auto value = ReadInteger(*field, 1, kMaxUint32);
      max_associations_valid = value.has_value();
      if (value) {
        listener.max_associations = static_cast<std::uint32_t>(*value);
      }
    }
    const auto per_peer_field = Find(section, "max_associations_per_peer");
    if (!per_peer_field) {
      // The default per-peer limit is a ceiling, not a demand: an admin who only lowers the
      // total should not have to lower this too.
      listener.max_associations_per_peer =
          std::min(listener.max_associations_per_peer, listener.max_associations);
      return;
    }
    const auto per_peer = ReadInteger(*per_peer_field, 1, kMaxUint32);
    if (!per_peer) {
      return;
    }
    if (max_associations_valid && *per_peer > listener.max_associations) {
      AddError(*per_peer_field, "must not exceed listener.max_associations (" +
                                    std::to_string(listener.max_associations) + "), got " +
                                    std::to_string(*per_peer));
      return;
    }
    listener.max_associations_per_peer = static_cast<std::uint32_t>(*per_peer);
  }

  void ReadSpool(const Field& section_field, SpoolConfig& spool) {
    const Section section = OpenSection(section_field, kSpoolKeys);
    if (const auto field = Find(section, "directory")) {
      if (auto directory = ReadText(*field, "a directory path", DirectoryProblem)) {
        spool.directory = std::move(*directory);
      }
    }
    if (const auto field = Find(section, "max_bytes")) {
      AssignByteSize(*field, 1, kMaxUint64, spool.max_bytes);
    }
    if (const auto field = Find(section, "max_instances")) {
      AssignInteger(*field, 1, kMaxUint32, spool.max_instances);
    }
    if (const auto field = Find(section, "min_free_bytes")) {
      AssignByteSize(*field, 0, kMaxUint64, spool.min_free_bytes);
    }
    if (const auto field = Find(section, "sync_threads")) {
      AssignInteger(*field, 1, kMaxThreads, spool.sync_threads);
    }
    if (const auto field = Find(section, "writeback_chunk_bytes")) {
      AssignByteSize(*field, kMinWritebackChunkBytes, kMaxWritebackChunkBytes,
                     spool.writeback_chunk_bytes);
    }
  }

  void ReadMetrics(const Field& section_field, MetricsConfig& metrics) {
    const Section section = OpenSection(section_field, kMetricsKeys);
    if (const auto field = Find(section, "enabled")) {
      AssignBool(*field, metrics.enabled);
    }
    if (const auto field = Find(section, "listen")) {
      if (auto listen = ReadText(*field, "host:port", ListenAddressProblem)) {
        metrics.listen = std::move(*listen);
      }
    }
  }

  void ReadRules(const Field& section_field, RulesConfig& rules) {
    const Section section = OpenSection(section_field, kRulesKeys);
    if (const auto field = Find(section, "file")) {
      if (auto file = ReadText(*field, "a file path", FilePathProblem)) rules.file = *file;
    }
    if (const auto field = Find(section, "reload_check_seconds")) {
      if (const auto seconds = ReadInteger(*field, 0, kMaxTimeoutSeconds)) {
        rules.reload_check_interval = std::chrono::seconds(*seconds);
      }
    }
  }

  std::optional<DestinationConfig> ReadDestination(const Field& field) {
    DestinationConfig destination;
    // The type decides which keys are allowed, so it is read before the section is opened.
    const YAML::Node& entry = field.value;  // const: looking a key up must not add it
    if (entry.IsMap() && entry["type"]) {
      const YAML::Node type = entry["type"];
      const std::string path = field.path.empty() ? "type" : field.path + ".type";
      const std::size_t errors_before_type = errors_.size();
      AssignChoice(Field{path, type, type.Mark()}, "destination type", kDestinationKinds,
                   destination.kind);
      // Which keys belong is unknown: reading them as a DIMSE destination would only add noise.
      if (errors_.size() != errors_before_type) return std::nullopt;
    }
    const std::size_t errors_before = errors_.size();
    const Section section = OpenSection(field, DestinationKeys(destination.kind));
    const auto name_field = Find(section, "name");
    if (!name_field) {
      AddError(field, "a destination needs a name");
    } else if (auto name = ReadText(*name_field, "a destination name", DestinationNameProblem)) {
      destination.name = std::move(*name);
    }
    switch (destination.kind) {
      case DestinationKind::kDimse:
        ReadDimseDestination(field, section, destination);
        break;
      case DestinationKind::kStow:
        ReadStowDestination(field, section, destination);
        break;
      case DestinationKind::kS3:
        ReadS3Destination(field, section, destination);
        break;
      case DestinationKind::kFolder:
        ReadFolderDestination(field, section, destination);
        break;
    }
    if (const auto value = Find(section, "retry")) {
      ReadRetry(*value, destination.retry);
    }
    if (errors_.size() != errors_before) return std::nullopt;
    return destination;
  }

  static std::span<const std::string_view> DestinationKeys(DestinationKind kind) {
    switch (kind) {
      case DestinationKind::kStow:
        return kStowDestinationKeys;
      case DestinationKind::kS3:
        return kS3DestinationKeys;
      case DestinationKind::kFolder:
        return kFolderDestinationKeys;
      case DestinationKind::kDimse:
        break;
    }
    return kDimseDestinationKeys;
  }

  void ReadDimseDestination(const Field& field, const Section& section,
                            DestinationConfig& destination) {
    if (const auto host_field = Find(section, "host")) {
      if (auto host = ReadText(*host_field, "a host name or IP address", HostProblem)) {
        destination.host = std::move(*host);
      }
    } else {
      AddError(field, "a destination needs a host (name or IP address of the PACS)");
    }
    if (const auto called_field = Find(section, "called_ae")) {
      if (auto title = ReadAeTitle(*called_field)) destination.called_ae = std::move(*title);
    } else {
      AddError(field, "a destination needs called_ae (the PACS's AE title)");
    }
    if (const auto value = Find(section, "port")) {
      AssignInteger(*value, kMinPort, kMaxPort, destination.port);
    }
    if (const auto value = Find(section, "calling_ae")) {
      if (auto title = ReadAeTitle(*value)) destination.calling_ae = std::move(*title);
    }
    if (const auto value = Find(section, "max_associations")) {
      AssignInteger(*value, 1, kMaxDestinationAssociations, destination.max_associations);
    }
    if (const auto value = Find(section, "max_instances_per_association")) {
      AssignInteger(*value, 0, kMaxUint32, destination.max_instances_per_association);
    }
    if (const auto value = Find(section, "max_pdu_bytes")) {
      AssignByteSize(*value, kMinPduBytes, kMaxPduBytes, destination.max_pdu_bytes);
    }
    if (const auto value = Find(section, "connect_timeout_seconds")) {
      AssignSeconds(*value, destination.connect_timeout);
    }
    if (const auto value = Find(section, "response_timeout_seconds")) {
      AssignSeconds(*value, destination.response_timeout);
    }
    if (const auto value = Find(section, "idle_timeout_seconds")) {
      AssignSeconds(*value, destination.idle_timeout);
    }
    if (const auto value = Find(section, "transfer_syntaxes")) {
      ReadOfferedTransferSyntaxes(*value, destination.transfer_syntaxes);
    }
    if (const auto value = Find(section, "warning_is_success")) {
      AssignBool(*value, destination.warning_is_success);
    }
  }

  // What STOW-RS and S3 share: parallelism, timeouts, TLS.
  void ReadHttpSettings(const Section& section, DestinationConfig& destination) {
    HttpSettings& http = destination.http;
    if (const auto value = Find(section, "parallel_requests")) {
      AssignInteger(*value, 1, kMaxParallelRequests, http.parallel_requests);
    }
    if (const auto value = Find(section, "connect_timeout_seconds")) {
      AssignSeconds(*value, destination.connect_timeout);
    }
    if (const auto value = Find(section, "request_timeout_seconds")) {
      AssignSeconds(*value, http.request_timeout);
    }
    if (const auto tls_field = Find(section, "tls")) {
      const Section tls = OpenSection(*tls_field, kTlsKeys);
      if (const auto value = Find(tls, "verify")) AssignBool(*value, http.tls_verify);
      if (const auto value = Find(tls, "ca_file")) {
        if (auto path = ReadText(*value, "a file path", FilePathProblem)) http.tls_ca_file = *path;
      }
    }
  }

  void ReadStowDestination(const Field& field, const Section& section,
                           DestinationConfig& destination) {
    StowSettings& stow = destination.stow;
    if (const auto value = Find(section, "url")) {
      if (auto url = ReadText(*value, "a URL", HttpUrlProblem)) {
        while (url->ends_with('/')) url->pop_back();
        stow.url = std::move(*url);
      }
    } else {
      AddError(field,
               "a stow destination needs url (the DICOMweb root, e.g. "
               "https://pacs.example.org/dicom-web)");
    }
    ReadHttpSettings(section, destination);
    if (const auto value = Find(section, "max_instances_per_request")) {
      AssignInteger(*value, 1, kMaxInstancesPerRequest, stow.max_instances_per_request);
    }
    if (const auto value = Find(section, "max_request_bytes")) {
      AssignByteSize(*value, kMinRequestBytes, kMaxUint64, stow.max_request_bytes);
    }
    if (const auto auth_field = Find(section, "auth")) {
      const Section auth = OpenSection(*auth_field, kAuthKeys);
      if (const auto value = Find(auth, "type")) {
        AssignChoice(*value, "auth type", kStowAuthKinds, stow.auth);
      }
      if (const auto value = Find(auth, "username")) {
        if (auto name = ReadText(*value, "a user name", HeaderValueProblem)) stow.username = *name;
      }
      if (const auto value = Find(auth, "password_file")) {
        if (auto path = ReadText(*value, "a file path", FilePathProblem)) {
          stow.password_file = *path;
        }
      }
      if (const auto value = Find(auth, "token_file")) {
        if (auto path = ReadText(*value, "a file path", FilePathProblem)) stow.token_file = *path;
      }
      if (stow.auth == StowSettings::Auth::kBasic &&
          (stow.username.empty() || stow.password_file.empty())) {
        AddError(*auth_field, "basic auth needs username and password_file");
      }
      if (stow.auth == StowSettings::Auth::kBearer && stow.token_file.empty()) {
        AddError(*auth_field, "bearer auth needs token_file (a file holding the token)");
      }
    }
  }

  void ReadS3Destination(const Field& field, const Section& section,
                         DestinationConfig& destination) {
    S3Settings& s3 = destination.s3;
    if (const auto value = Find(section, "endpoint")) {
      if (auto endpoint = ReadText(*value, "a URL", EndpointProblem)) {
        s3.endpoint = std::move(*endpoint);
      }
    } else {
      AddError(field, "an s3 destination needs endpoint (e.g. https://s3.us-east-1.amazonaws.com)");
    }
    if (const auto value = Find(section, "bucket")) {
      if (auto bucket = ReadText(*value, "a bucket name", BucketProblem)) {
        s3.bucket = std::move(*bucket);
      }
    } else {
      AddError(field, "an s3 destination needs bucket");
    }
    if (const auto value = Find(section, "region")) {
      if (auto region = ReadText(*value, "a region", RegionProblem)) s3.region = *region;
    }
    if (const auto value = Find(section, "path_style")) AssignBool(*value, s3.path_style);
    ReadKeyTemplate(section, destination);
    if (const auto value = Find(section, "access_key_id")) {
      if (auto id = ReadText(*value, "an access key id", HeaderValueProblem)) {
        s3.access_key_id = *id;
      }
    }
    if (const auto value = Find(section, "secret_access_key")) {
      if (auto secret = ReadText(*value, "a secret access key", HeaderValueProblem)) {
        s3.secret_access_key = *secret;
      }
    }
    if (const auto value = Find(section, "credentials_file")) {
      if (auto path = ReadText(*value, "a file path", FilePathProblem)) {
        s3.credentials_file = *path;
      }
    }
    const bool inline_keys = !s3.access_key_id.empty() || !s3.secret_access_key.empty();
    if (inline_keys && !s3.credentials_file.empty()) {
      AddError(field,
               "give either access_key_id and secret_access_key or credentials_file, "
               "not both");
    } else if (inline_keys && (s3.access_key_id.empty() || s3.secret_access_key.empty())) {
      AddError(field, "access_key_id and secret_access_key go together");
    } else if (!inline_keys && s3.credentials_file.empty()) {
      AddError(field,
               "an s3 destination needs credentials: access_key_id and "
               "secret_access_key, or credentials_file");
    }
    if (const auto value = Find(section, "multipart_threshold_bytes")) {
      AssignByteSize(*value, kMinPartBytes, kMaxUint64, s3.multipart_threshold_bytes);
    }
    if (const auto value = Find(section, "multipart_part_bytes")) {
      AssignByteSize(*value, kMinPartBytes, kMaxPartBytes, s3.multipart_part_bytes);
    }
    ReadHttpSettings(section, destination);
  }

  void ReadFolderDestination(const Field& field, const Section& section,
                             DestinationConfig& destination) {
    if (const auto value = Find(section, "path")) {
      if (auto path = ReadText(*value, "a directory path", DirectoryProblem)) {
        destination.folder = *path;
      }
    } else {
      AddError(field, "a folder destination needs path (the directory to write to)");
    }
    ReadKeyTemplate(section, destination);
  }

  void ReadKeyTemplate(const Section& section, DestinationConfig& destination) {
    if (const auto value = Find(section, "key_template")) {
      if (auto text = ReadText(*value, "a key template", KeyTemplateProblem)) {
        destination.key_template = std::move(*text);
      }
    }
  }

  std::optional<std::string> ReadOfferedTransferSyntax(const Field& field) {
    return ReadText(field, "'stored' or a transfer syntax UID", OfferedTransferSyntaxProblem);
  }

  void ReadOfferedTransferSyntaxes(const Field& field, std::vector<std::string>& target) {
    auto entries = ReadList(field, &ConfigReader::ReadOfferedTransferSyntax);
    if (!entries) return;
    if (entries->empty() || entries->size() > kMaxOfferedTransferSyntaxes) {
      AddError(field, "list 1 to " + std::to_string(kMaxOfferedTransferSyntaxes) +
                          " transfer syntaxes, e.g. [stored, 1.2.840.10008.1.2.1]");
      return;
    }
    std::vector<std::string> seen;
    for (const std::string& entry : *entries) {
      if (std::find(seen.begin(), seen.end(), entry) != seen.end()) {
        AddError(field, Quoted(entry) + " is listed twice");
        return;
      }
      seen.push_back(entry);
    }
    target = std::move(*entries);
  }

  std::optional<double> ReadDecimal(const Field& field, double min, double max) {
    const std::optional<std::string> text = ReadScalar(field, "a number");
    if (!text) return std::nullopt;
    double value = 0;
    const char* const text_end = text->data() + text->size();
    const auto [end, error] = std::from_chars(text->data(), text_end, value);
    if (error != std::errc() || end != text_end) {
      AddError(field, "expected a number, got " + Quoted(*text));
      return std::nullopt;
    }
    if (!(value >= min && value <= max)) {
      std::ostringstream bounds;
      bounds << "must be between " << min << " and " << max << ", got " << *text;
      AddError(field, bounds.str());
      return std::nullopt;
    }
    return value;
  }

  void ReadRetry(const Field& section_field, RetryPolicy& retry) {
    const Section section = OpenSection(section_field, kRetryKeys);
    if (const auto field = Find(section, "initial_delay_ms")) {
      if (const auto ms = ReadInteger(*field, 10, kMaxTimeoutSeconds * 1000)) {
        retry.initial_delay = std::chrono::milliseconds(*ms);
      }
    }
    if (const auto field = Find(section, "max_delay_seconds")) {
      if (const auto seconds = ReadInteger(*field, kMinTimeoutSeconds, kMaxTimeoutSeconds)) {
        retry.max_delay = std::chrono::seconds(*seconds);
      }
    }
    if (const auto field = Find(section, "multiplier")) {
      if (const auto value = ReadDecimal(*field, 1.0, 10.0)) retry.multiplier = *value;
    }
    if (const auto field = Find(section, "jitter_percent")) {
      if (const auto percent = ReadInteger(*field, 0, 100)) {
        retry.jitter = static_cast<double>(*percent) / 100.0;
      }
    }
    if (const auto field = Find(section, "max_age_hours")) {
      if (const auto hours = ReadInteger(*field, 1, kMaxRetryAgeHours)) {
        retry.max_age = std::chrono::hours(*hours);
      }
    }
    if (const auto field = Find(section, "breaker_failures")) {
      AssignInteger(*field, 1, 1000, retry.breaker_failures);
    }
    if (retry.max_delay < retry.initial_delay) {
      AddError(section_field, "max_delay_seconds must not be shorter than initial_delay_ms");
    }
  }

  std::optional<TranscodeProfile> ReadProfile(const Field& field) {
    const Section section = OpenSection(field, kProfileKeys);
    const std::size_t errors_before = errors_.size();
    TranscodeProfile profile;
    if (const auto name = Find(section, "name")) {
      if (auto text = ReadText(*name, "a profile name", DestinationNameProblem)) {
        profile.name = std::move(*text);
      }
    } else {
      AddError(field, "a transcode profile needs a name");
    }
    if (const auto value = Find(section, "lossy")) AssignBool(*value, profile.lossy);
    if (const auto value = Find(section, "quality")) AssignInteger(*value, 1, 100, profile.quality);
    if (const auto value = Find(section, "compression_ratio")) {
      if (const auto ratio = ReadDecimal(*value, 1.0, 1000.0)) profile.compression_ratio = *ratio;
    }
    if (const auto value = Find(section, "near_lossless")) {
      AssignInteger(*value, 1, 255, profile.near_lossless);
    }
    if (const auto syntax = Find(section, "transfer_syntax")) {
      if (auto uid = ReadUid(*syntax)) {
        if (const auto problem = TranscodeTargetProblem(*uid, profile.lossy)) {
          AddError(*syntax, *problem);
        } else {
          profile.transfer_syntax = std::move(*uid);
        }
      }
    } else {
      AddError(field, "a transcode profile needs transfer_syntax (the target UID)");
    }
    if (errors_.size() != errors_before) return std::nullopt;
    return profile;
  }

  void ReadTranscoding(const Field& section_field, TranscodingConfig& transcoding) {
    const Section section = OpenSection(section_field, kTranscodingKeys);
    if (const auto field = Find(section, "threads")) {
      AssignInteger(*field, 0, kMaxThreads, transcoding.threads);
    }
    if (const auto field = Find(section, "profiles")) {
      auto profiles = ReadList(*field, &ConfigReader::ReadProfile);
      if (!profiles) return;
      std::map<std::string, int> seen;
      for (std::size_t i = 0; i < profiles->size(); ++i) {
        const YAML::Node node = field->value[i];
        if (!seen.try_emplace((*profiles)[i].name, node.Mark().line + 1).second) {
          AddError(node.Mark(), field->path,
                   "transcode profile " + Quoted((*profiles)[i].name) + " is defined twice");
        }
      }
      transcoding.profiles = std::move(*profiles);
    }
  }

  void ReadAdmin(const Field& section_field, AdminConfig& admin) {
    const Section section = OpenSection(section_field, kAdminKeys);
    if (const auto field = Find(section, "socket")) {
      if (auto path = ReadText(*field, "a socket path", SocketPathProblem)) admin.socket = *path;
    }
  }

  void ReadDestinations(const Field& field, std::vector<DestinationConfig>& destinations) {
    auto read = ReadList(field, &ConfigReader::ReadDestination);
    if (!read) return;
    std::map<std::string, int> first_lines;
    std::size_t index = 0;
    for (const DestinationConfig& destination : *read) {
      const YAML::Node node = field.value[index++];
      const auto [first, inserted] =
          first_lines.try_emplace(destination.name, node.Mark().line + 1);
      if (!inserted) {
        AddError(node.Mark(), field.path,
                 "destination " + Quoted(destination.name) + " is already defined on line " +
                     std::to_string(first->second));
      }
    }
    destinations = std::move(*read);
  }

  std::string source_name_;
  std::vector<ConfigError> errors_;
};

}  // namespace

const char* DestinationKindName(DestinationKind kind) {
  for (const auto& [name, value] : kDestinationKinds) {
    if (value == kind) return name.data();
  }
  return "dimse";
}

ConfigResult LoadConfigText(std::string_view yaml_text, std::string_view source_name) {
  ConfigReader reader(source_name);
  std::string text(yaml_text);
  YAML::Node document;
  try {
    // YAML::Load plus a bounded check for a second document: yaml-cpp 0.7's LoadAll can loop
    // forever on a malformed file (see rules/yaml_document.h).
    document = YAML::Load(text);
    if (const std::optional<YAML::Mark> second = rules::SecondDocumentMark(text)) {
      reader.AddError(*second, "",
                      "the file must hold one YAML document; remove the '---' separator and "
                      "merge what follows into the first");
    }
  } catch (const YAML::ParserException& error) {
    reader.AddError(error.mark, "", "YAML syntax error: " + error.msg);
    return reader.TakeErrors();
  }
  if (document.IsNull() && HasContentBesidesComments(text)) {
    // yaml-cpp reads some junk (a lone ",") as an empty document; that is not "all defaults".
    reader.AddError(YAML::Mark{}, "",
                    "no configuration could be read from this text; expected "
                    "'key: value' lines");
    return reader.TakeErrors();
  }
  Config config = reader.Read(document);
  std::vector<ConfigError> errors = reader.TakeErrors();
  if (!errors.empty()) {
    return errors;
  }
  return config;
}

ConfigResult LoadConfigFile(const std::filesystem::path& path) {
  const auto file_error = [&](std::string message) {
    return std::vector<ConfigError>{ConfigError{path.string(), 0, 0, std::move(message)}};
  };
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return file_error("cannot read the configuration: it is a directory");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return file_error("cannot read the configuration: " + std::string(std::strerror(errno)));
  }
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return file_error("cannot read the configuration: " + std::string(std::strerror(errno)));
  }
  return LoadConfigText(contents.str(), path.string());
}

}  // namespace conduit::config
