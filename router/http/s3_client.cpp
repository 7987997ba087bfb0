#include "router/http/s3_client.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace conduit::http {
namespace {

constexpr std::string_view kService = "s3";
// S3's limits on multipart uploads: every part but the last at least 5 MiB, at most 10,000 parts.
constexpr std::uint64_t kMinimumPartBytes = 5ull << 20;
constexpr std::uint64_t kMaximumParts = 10000;

struct Endpoint {
  std::string scheme;     // http or https
  std::string authority;  // host[:port]
  std::string base_path;  // anything after the authority, without a trailing '/'
};

Endpoint ParseEndpoint(std::string_view endpoint) {
  Endpoint parsed;
  if (const auto separator = endpoint.find("://"); separator != std::string_view::npos) {
    parsed.scheme = endpoint.substr(0, separator);
    endpoint.remove_prefix(separator + 3);
  } else {
    parsed.scheme = "https";
  }
  const auto path_start = endpoint.find('/');
  parsed.authority = endpoint.substr(0, path_start);
  if (path_start != std::string_view::npos) {
    parsed.base_path = endpoint.substr(path_start);
    while (!parsed.base_path.empty() && parsed.base_path.back() == '/') {
      parsed.base_path.pop_back();
    }
  }
  return parsed;
}

std::uint64_t PieceLength(const BodyPiece& piece) {
  return std::visit(
      [](const auto& part) -> std::uint64_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(part)>, FileSlice>) {
          return part.length;
        } else {
          return part.size();
        }
      },
      piece);
}

// Bytes [offset, offset + length) of `body` as pieces that borrow from it (memory as spans, files
// as narrower slices): a part of a multipart upload, or the whole body, without copying.
Body BorrowedRange(const Body& body, std::uint64_t offset, std::uint64_t length) {
  Body range;
  const std::uint64_t end = offset + length;
  std::uint64_t piece_start = 0;
  for (const BodyPiece& piece : body) {
    const std::uint64_t piece_end = piece_start + PieceLength(piece);
    if (piece_end > offset && piece_start < end) {
      const std::uint64_t from = std::max(offset, piece_start) - piece_start;
      const std::uint64_t count = std::min(end, piece_end) - piece_start - from;
      std::visit(
          [&](const auto& part) {
            using Part = std::decay_t<decltype(part)>;
            if constexpr (std::is_same_v<Part, std::string>) {
              range.emplace_back(std::span<const std::uint8_t>(
                  reinterpret_cast<const std::uint8_t*>(part.data()) + from, count));
            } else if constexpr (std::is_same_v<Part, FileSlice>) {
              range.emplace_back(FileSlice{part.file, part.offset + from, count});
            } else {
              range.emplace_back(part.subspan(from, count));
            }
          },
          piece);
    }
    piece_start = piece_end;
  }
  return range;
}

std::string DecodeXmlEntities(std::string_view text) {
  static constexpr std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto entity = std::find_if(std::begin(kEntities), std::end(kEntities), [&](auto& e) {
      return text.substr(i, e.first.size()) == e.first;
    });
    if (entity == std::end(kEntities)) {
      decoded += text[i];
    } else {
      decoded += entity->second;
      i += entity->first.size() - 1;
    }
  }
  return decoded;
}

// The text of the first <name>...</name> in an S3 answer. A tolerant scan, not an XML parser:
// S3's answers are flat and these elements carry no attributes.
std::string XmlElementText(std::string_view xml, std::string_view name) {
  const std::string open = "<" + std::string(name) + ">";
  const std::string close = "</" + std::string(name) + ">";
  const auto start = xml.find(open);
  if (start == std::string_view::npos) {
    return {};
  }
  const auto text_start = start + open.size();
  const auto end = xml.find(close, text_start);
  if (end == std::string_view::npos) {
    return {};
  }
  return DecodeXmlEntities(xml.substr(text_start, end - text_start));
}

std::string EscapeXml(std::string_view text) {
  std::string escaped;
  for (const char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string WithoutQuotes(std::string text) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') {
    return text.substr(1, text.size() - 2);
  }
  return text;
}

// RFC 9110 10.2.3: delay-seconds or an HTTP-date.
std::optional<std::chrono::seconds> ParseRetryAfter(const std::optional<std::string>& value) {
  if (!value) {
    return std::nullopt;
  }
  std::uint64_t seconds = 0;
  const char* end = value->data() + value->size();
  if (const auto [last, error] = std::from_chars(value->data(), end, seconds);
      error == std::errc() && last == end) {
    return std::chrono::seconds(seconds);
  }
  std::tm date{};
  if (::strptime(value->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &date) == nullptr) {
    return std::nullopt;
  }
  const auto at = std::chrono::system_clock::from_time_t(::timegm(&date));
  return std::max(std::chrono::seconds(0),
                  std::chrono::ceil<std::chrono::seconds>(at - std::chrono::system_clock::now()));
}

S3Error AnswerError(const HttpResponse& response, const std::string& what) {
  S3Error error;
  error.http_status = response.status;
  error.code = XmlElementText(response.body, "Code");
  error.retry_after = ParseRetryAfter(response.Header("retry-after"));
  error.detail = what + ": " + std::to_string(response.status);
  if (!error.code.empty()) {
    error.detail += " " + error.code;
  }
  if (const std::string message = XmlElementText(response.body, "Message"); !message.empty()) {
    error.detail += ": " + message;
  }
  return error;
}

S3Error TransportError(HttpError failure, const std::string& what) {
  S3Error error;
  error.detail = what + ": " + failure.detail;
  error.transport = std::move(failure);
  return error;
}

// A success status without what the protocol needs from it: no usable answer, like a garbled
// one (kOther), so that nobody mistakes its 2xx for a stored object.
S3Error BadAnswer(const HttpResponse& response, const std::string& what,
                  const std::string& missing) {
  return TransportError(
      HttpError{HttpFailure::kOther, std::to_string(response.status) + " answer with " + missing},
      what);
}

}  // namespace

S3Client::S3Client(HttpClient& http, S3Location location, AwsCredentials credentials,
                   S3UploadOptions options)
    : http_(http),
      location_(std::move(location)),
      credentials_(std::move(credentials)),
      options_(options) {}

std::string S3Client::HostHeader() const {
  const std::string authority = ParseEndpoint(location_.endpoint).authority;
  return location_.path_style ? authority : location_.bucket + "." + authority;
}

std::string S3Client::CanonicalPath(const std::string& key) const {
  std::string path = ParseEndpoint(location_.endpoint).base_path;
  if (location_.path_style) {
    path += "/" + SigV4UriEncode(location_.bucket, false);
    if (!key.empty()) {
      path += "/" + SigV4UriEncode(key, true);
    }
  } else {
    path += "/" + SigV4UriEncode(key, true);
  }
  return path;
}

std::string S3Client::ObjectUrl(const std::string& key) const {
  return ParseEndpoint(location_.endpoint).scheme + "://" + HostHeader() + CanonicalPath(key);
}

Result<HttpResponse, S3Error> S3Client::Send(const std::string& method, const std::string& key,
                                             const Query& query, Headers headers, Body body,
                                             const std::string& payload_sha256_hex,
                                             const std::string& what) {
  const std::string host = HostHeader();
  // Set explicitly so that what libcurl sends is what was signed.
  headers.emplace_back("Host", host);
  headers.emplace_back("x-amz-content-sha256", payload_sha256_hex);

  SigV4Request signing;
  signing.method = method;
  signing.canonical_uri = CanonicalPath(key);
  signing.query = query;
  signing.headers = headers;
  signing.payload_sha256_hex = payload_sha256_hex;
  SigV4Signature signature =
      SignV4(signing, credentials_, SigV4Scope{location_.region, std::string(kService)},
             std::chrono::system_clock::now());

  HttpRequest request;
  request.method = method;
  request.url = ParseEndpoint(location_.endpoint).scheme + "://" + host + signing.canonical_uri;
  if (!query.empty()) {
    request.url += "?" + CanonicalQueryString(query);
  }
  request.headers = std::move(headers);
  request.headers.insert(request.headers.end(),
                         std::make_move_iterator(signature.headers_to_add.begin()),
                         std::make_move_iterator(signature.headers_to_add.end()));
  request.body = std::move(body);

  auto answer = http_.Perform(request);
  if (!answer) {
    return TransportError(answer.error(), what);
  }
  if (answer->status < 200 || answer->status > 299) {
    return AnswerError(*answer, what);
  }
  return std::move(answer).value();
}

Result<S3PutResult, S3Error> S3Client::Put(const std::string& key, const Body& body,
                                           const std::string& content_type) {
  if (key.empty()) {
    // The request would address the bucket itself: a PUT there creates the bucket, and S3 answers
    // 200 when it exists already. Neither sent nor answered: no transport, no status.
    S3Error error;
    error.detail = "PUT: the object key is empty";
    return error;
  }
  const std::uint64_t length = BodyLength(body);
  if (length >= options_.multipart_threshold_bytes) {
    return PutMultipart(key, body, length, content_type);
  }
  return PutWhole(key, body, length, content_type);
}

Result<S3PutResult, S3Error> S3Client::PutWhole(const std::string& key, const Body& body,
                                                std::uint64_t length,
                                                const std::string& content_type) {
  const std::string what = "PUT " + key;
  const auto digests = DigestPayload(body);
  if (!digests) {
    return TransportError(digests.error(), what);
  }
  auto answer =
      Send("PUT", key, {}, {{"Content-Type", content_type}, {"Content-MD5", digests->md5_base64}},
           BorrowedRange(body, 0, length), digests->sha256_hex, what);
  if (!answer) {
    return answer.error();
  }
  return S3PutResult{answer->status, WithoutQuotes(answer->Header("etag").value_or("")), length,
                     false};
}

Result<S3PutResult, S3Error> S3Client::PutMultipart(const std::string& key, const Body& body,
                                                    std::uint64_t length,
                                                    const std::string& content_type) {
  auto created = Send("POST", key, {{"uploads", ""}}, {{"Content-Type", content_type}}, {},
                      Sha256Hex(""), "CreateMultipartUpload " + key);
  if (!created) {
    return created.error();
  }
  const std::string upload_id = XmlElementText(created->body, "UploadId");
  if (upload_id.empty()) {
    return BadAnswer(*created, "CreateMultipartUpload " + key, "no UploadId");
  }

  // Bigger parts than configured only when the object would need more than S3 allows.
  const std::uint64_t part_bytes = std::max(
      {options_.part_bytes, kMinimumPartBytes, (length + kMaximumParts - 1) / kMaximumParts});
  const std::uint64_t part_count =
      std::max<std::uint64_t>(1, (length + part_bytes - 1) / part_bytes);
  std::string completion = "<CompleteMultipartUpload>";
  for (std::uint64_t part_number = 1; part_number <= part_count; ++part_number) {
    const std::uint64_t offset = (part_number - 1) * part_bytes;
    Body part = BorrowedRange(body, offset, std::min(part_bytes, length - offset));
    const std::string what =
        "UploadPart " + std::to_string(part_number) + "/" + std::to_string(part_count) + " " + key;
    const auto digests = DigestPayload(part);
    if (!digests) {
      AbortMultipart(key, upload_id);
      return TransportError(digests.error(), what);
    }
    auto uploaded =
        Send("PUT", key, {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}},
             {{"Content-MD5", digests->md5_base64}}, std::move(part), digests->sha256_hex, what);
    if (!uploaded) {
      AbortMultipart(key, upload_id);
      return uploaded.error();
    }
    const auto etag = uploaded->Header("etag");
    if (!etag) {
      AbortMultipart(key, upload_id);
      return BadAnswer(*uploaded, what, "no ETag");
    }
    completion += "<Part><PartNumber>" + std::to_string(part_number) + "</PartNumber><ETag>" +
                  EscapeXml(*etag) + "</ETag></Part>";
  }
  completion += "</CompleteMultipartUpload>";

  const std::string what = "CompleteMultipartUpload " + key;
  const std::string completion_sha256 = Sha256Hex(completion);
  auto completed =
      Send("POST", key, {{"uploadId", upload_id}}, {{"Content-Type", "application/xml"}},
           Body{std::move(completion)}, completion_sha256, what);
  if (!completed) {
    AbortMultipart(key, upload_id);
    return completed.error();
  }
  // S3 may fail the assembly after it has sent 200 OK: the error is then in the body. It is a
  // server-side failure worth retrying, so it is reported as one (500).
  if (completed->body.find("<Error>") != std::string::npos) {
    AbortMultipart(key, upload_id);
    HttpResponse failed = std::move(completed).value();
    failed.status = 500;
    S3Error error = AnswerError(failed, what);
    error.detail += " (in a 200 answer)";
    return error;
  }
  return S3PutResult{completed->status, WithoutQuotes(XmlElementText(completed->body, "ETag")),
                     length, true};
}

void S3Client::AbortMultipart(const std::string& key, const std::string& upload_id) {
  // Best effort: the failure being reported matters more, and a bucket lifecycle rule
  // (AbortIncompleteMultipartUpload) cleans up whatever is left.
  static_cast<void>(Send("DELETE", key, {{"uploadId", upload_id}}, {}, {}, Sha256Hex(""),
                         "AbortMultipartUpload " + key));
}

Result<long, S3Error> S3Client::CheckBucket() {
  auto answer = Send("HEAD", "", {}, {}, {}, Sha256Hex(""), "HEAD bucket " + location_.bucket);
  if (!answer) {
    return answer.error();
  }
  return answer->status;
}

}  // namespace conduit::http
