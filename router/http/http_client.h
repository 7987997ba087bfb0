// A blocking HTTP/1.1 client on libcurl for the cloud forwarders: one per worker thread, which
// keeps its connection alive between requests (libcurl's connection cache of one easy handle).
// Bodies are streamed from memory and from file ranges, never loaded whole; every failure to get
// an answer is a value saying what went wrong (connect, TLS, timeout, cancelled), and an answer
// is returned whatever its status: classifying statuses is the caller's business.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "codecs/result.h"

namespace conduit::http {

// Bytes [offset, offset + length) of a file.
struct FileSlice {
  std::filesystem::path file;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// One piece of a request body: owned text/bytes, a file range, or borrowed bytes that outlive
// the request. A body is its pieces in order.
using BodyPiece = std::variant<std::string, FileSlice, std::span<const std::uint8_t>>;
using Body = std::vector<BodyPiece>;

std::uint64_t BodyLength(const Body& body);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;             // absolute, already percent-encoded
  Headers headers;             // sent as given (Content-Length is added from the body)
  Body body;
};

struct HttpResponse {
  long status = 0;
  Headers headers;   // names lower-cased
  std::string body;  // at most ClientOptions::max_response_bytes; the rest is discarded
  std::optional<std::string> Header(std::string_view lower_case_name) const;
};

enum class HttpFailure {
  kConnect,    // name resolution, refused, unreachable: the server is not there
  kTls,        // handshake or certificate verification failed
  kTimeout,    // connect or whole-request timeout
  kCancelled,  // the cancel flag was raised (shutdown)
  kBody,       // a body file could not be read (our side: the item is not sendable as is)
  kOther,      // anything else libcurl reports (reset connection, bad answer, ...)
};
const char* HttpFailureName(HttpFailure failure);

struct HttpError {
  HttpFailure kind = HttpFailure::kOther;
  std::string detail;  // for logs and dead-letter reasons: what libcurl said, with the URL host
};

struct TlsOptions {
  bool verify = true;             // verify the server's certificate and host name
  std::filesystem::path ca_file;  // PEM bundle to trust instead of the system's; empty: system
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{120000};  // whole request, body and answer included
  TlsOptions tls;
  std::size_t max_response_bytes = 1 << 20;
  // Raised by the owner to cut off a request in progress (checked while transferring).
  const std::atomic<bool>* cancel = nullptr;
};

class HttpClient {
 public:
  explicit HttpClient(ClientOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  Result<HttpResponse, HttpError> Perform(const HttpRequest& request);
  // Body bytes uploaded by the last Perform (for the bytes-sent metric).
  std::uint64_t last_bytes_sent() const { return last_bytes_sent_; }

 private:
  struct Handle;
  ClientOptions options_;
  std::unique_ptr<Handle> handle_;
  std::uint64_t last_bytes_sent_ = 0;
};

// Percent-encodes for a URL path segment or query value (RFC 3986 unreserved kept as is).
std::string PercentEncode(std::string_view text);

}  // namespace conduit::http
