// The daemon's configuration: every limit and policy, with the defaults an unconfigured box uses.
// Loaded from YAML by ConfigLoader; the embedded default (default_config.yaml) documents each key.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "rules/cidr.h"

namespace conduit::config {

// Which abstract syntaxes (SOP classes) the listener accepts besides Verification.
enum class SopClassPolicy {
  kStandardStorage,  // the storage SOP classes in the DICOM standard (DCMTK's list)
  kAny,              // anything proposed; private storage classes included
  kListed,           // exactly ListenerConfig::accepted_sop_classes
};

// How the listener picks one transfer syntax among those the sender proposed for a context.
enum class TransferSyntaxPreference {
  kSender,  // the first one the sender proposed that we accept (keeps the sender's encoding)
  kListed,  // the first one in ListenerConfig::accepted_transfer_syntaxes that was proposed
};

struct ListenerConfig {
  std::string bind_address = "0.0.0.0";
  std::uint16_t port = 11112;
  std::string ae_title = "CONDUIT";
  bool require_called_ae = true;                 // reject associations addressed to another AE
  std::vector<std::string> allowed_calling_aes;  // empty: any calling AE
  std::vector<rules::Cidr> allowed_networks;     // empty: any source address
  std::uint32_t max_associations = 64;
  std::uint32_t max_associations_per_peer = 16;  // per source IP address
  std::uint32_t max_pdu_bytes = 131072;          // advertised and enforced receive limit
  std::chrono::seconds artim_timeout{30};        // PS3.8 9.1.5: request/release/close wait
  std::chrono::seconds idle_timeout{300};        // no PDU on an established association
  SopClassPolicy sop_class_policy = SopClassPolicy::kStandardStorage;
  std::vector<std::string> accepted_sop_classes;  // UIDs; used with kListed
  TransferSyntaxPreference transfer_syntax_preference = TransferSyntaxPreference::kSender;
  // UIDs in preference order; empty means every syntax in the codecs registry.
  std::vector<std::string> accepted_transfer_syntaxes;
};

struct SpoolConfig {
  std::filesystem::path directory = "./var/spool";
  std::uint64_t max_bytes = 64ULL << 30;      // spooled data beyond this answers 0xA700
  std::uint64_t min_free_bytes = 1ULL << 30;  // free disk below this answers 0xA700
  // Committed instances beyond this answer 0xA700: each one costs memory in the queues of the
  // destinations it is routed to (under 1 KiB each), so this bounds the forwarders' memory.
  std::uint64_t max_instances = 1000000;
  std::uint32_t sync_threads = 4;                       // concurrent fdatasync calls (group commit)
  std::uint64_t writeback_chunk_bytes = 256ULL * 1024;  // sync_file_range cadence while streaming
  friend bool operator==(const SpoolConfig&, const SpoolConfig&) = default;
};

struct MetricsConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:9112";  // host:port of the Prometheus pull endpoint
  friend bool operator==(const MetricsConfig&, const MetricsConfig&) = default;
};

struct RulesConfig {
  std::filesystem::path file;  // empty: no rules; every instance is kept with no route
  // How often the file is checked for changes; 0: reload only on SIGHUP.
  std::chrono::seconds reload_check_interval{2};
  friend bool operator==(const RulesConfig&, const RulesConfig&) = default;
};

// How a destination's queue retries a failed delivery.
struct RetryPolicy {
  std::chrono::milliseconds initial_delay{2000};  // after the first failure
  std::chrono::milliseconds max_delay{300000};    // the cap of the exponential backoff
  double multiplier = 2.0;                        // each failure multiplies the delay by this
  double jitter = 0.2;  // +/- this fraction of the delay, so retries of many items spread out
  std::chrono::seconds max_age{7 * 24 * 3600};  // older undelivered items go to dead-letter
  // Consecutive connection failures that open the circuit breaker: the forwarder then stops
  // sending and probes the destination with C-ECHO, with the backoff above, until it answers.
  std::uint32_t breaker_failures = 3;
  friend bool operator==(const RetryPolicy&, const RetryPolicy&) = default;
};

// How a destination is reached.
enum class DestinationKind {
  kDimse,   // a PACS or other C-STORE SCP
  kStow,    // a DICOMweb service, STOW-RS
  kS3,      // an S3-compatible object store
  kFolder,  // a local or mounted directory
};
const char* DestinationKindName(DestinationKind kind);

// Settings shared by the HTTP destinations (STOW-RS and S3).
struct HttpSettings {
  std::uint32_t parallel_requests = 4;        // requests in flight at once, each on its connection
  std::chrono::seconds request_timeout{300};  // one whole request, upload and answer
  bool tls_verify = true;                     // check the server's certificate and name
  std::filesystem::path tls_ca_file;          // PEM bundle to trust; empty: the system's
  friend bool operator==(const HttpSettings&, const HttpSettings&) = default;
};

struct StowSettings {
  std::string url;  // the DICOMweb root; instances are POSTed to <url>/studies
  std::uint32_t max_instances_per_request = 50;   // instances of one study per POST
  std::uint64_t max_request_bytes = 64ull << 20;  // a request stops growing at this size
  enum class Auth { kNone, kBasic, kBearer } auth = Auth::kNone;
  std::string username;                 // basic
  std::filesystem::path password_file;  // basic: the password, read again when it changes
  std::filesystem::path token_file;     // bearer: the token, read again when it changes
  friend bool operator==(const StowSettings&, const StowSettings&) = default;
};

struct S3Settings {
  std::string endpoint;  // scheme://host[:port]
  std::string region = "us-east-1";
  std::string bucket;
  bool path_style = true;  // endpoint/bucket/key; false: bucket.host/key
  std::string access_key_id;
  std::string secret_access_key;
  std::filesystem::path credentials_file;  // instead of the two above
  std::uint64_t multipart_threshold_bytes = 64ull << 20;
  std::uint64_t multipart_part_bytes = 16ull << 20;
  friend bool operator==(const S3Settings&, const S3Settings&) = default;
};

inline constexpr std::string_view kDefaultKeyTemplate =
    "{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm";

// A place instances can be routed to. Rules name destinations; `kind` says which forwarder
// delivers its queue and which of the settings below apply.
struct DestinationConfig {
  std::string name;
  DestinationKind kind = DestinationKind::kDimse;
  // DIMSE
  std::string host;
  std::uint16_t port = 104;
  std::string called_ae;                               // the destination's AE title
  std::string calling_ae;                              // ours; empty: the listener's ae_title
  std::uint32_t max_associations = 4;                  // parallel associations to this destination
  std::uint32_t max_instances_per_association = 1000;  // then released and reopened; 0: no limit
  std::uint32_t max_pdu_bytes = 131072;                // what we accept from the destination
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds response_timeout{60};  // for each answer (association, C-STORE, release)
  std::chrono::seconds idle_timeout{30};      // a warm association with nothing to send closes
  // Transfer syntaxes to offer, in order of preference: "stored" (kept as received) and UIDs.
  std::vector<std::string> transfer_syntaxes{"stored", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"};
  bool warning_is_success = true;  // 0xB0xx answers count as delivered
  // STOW-RS and S3 (connect_timeout above applies to them too)
  HttpSettings http;
  StowSettings stow;
  S3Settings s3;
  // S3 and folder: where each instance goes, from its attributes
  std::string key_template{kDefaultKeyTemplate};
  std::filesystem::path folder;  // folder: the directory written to
  // All kinds
  RetryPolicy retry;

  // Whether a reload changed it (SIGHUP restarts the forwarder of a changed destination).
  friend bool operator==(const DestinationConfig&, const DestinationConfig&) = default;
};

// A named target for routes that ask for another encoding (`transcode: NAME` in the rules).
struct TranscodeProfile {
  std::string name;
  std::string transfer_syntax;    // target UID: one with a frame codec, or uncompressed
  bool lossy = false;             // must be true for a lossy target: never lossy by accident
  int quality = 90;               // JPEG baseline / extended: 1-100
  double compression_ratio = 10;  // JPEG 2000 / HTJ2K lossy
  int near_lossless = 2;          // JPEG-LS near-lossless NEAR
  friend bool operator==(const TranscodeProfile&, const TranscodeProfile&) = default;
};

struct TranscodingConfig {
  std::uint32_t threads = 0;  // transcoding workers; 0: one per core
  std::vector<TranscodeProfile> profiles;
  friend bool operator==(const TranscodingConfig&, const TranscodingConfig&) = default;
};

// The operator's channel to the running daemon (`conduit queue ...`).
struct AdminConfig {
  std::filesystem::path socket = "./var/admin.sock";  // a local (Unix) socket, mode 0660
  friend bool operator==(const AdminConfig&, const AdminConfig&) = default;
};

enum class LogLevel { kDebug, kInfo, kWarning, kError };

struct Config {
  std::uint32_t network_threads = 2;  // 0: one per core
  LogLevel log_level = LogLevel::kInfo;
  ListenerConfig listener;
  SpoolConfig spool;
  MetricsConfig metrics;
  RulesConfig rules;
  std::vector<DestinationConfig> destinations;
  TranscodingConfig transcoding;
  AdminConfig admin;
};

}  // namespace conduit::config
