// AWS Signature Version 4, header-based ("AWS4-HMAC-SHA256"): the signer is a pure function of
// the request, the credentials, the scope and the time, so that it is checked against AWS's
// published vectors without a network. Also the payload digests S3 wants on every upload
// (x-amz-content-sha256 and Content-MD5), streamed over a Body's pieces: file ranges are read in
// chunks, never loaded whole.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codecs/result.h"
#include "router/http/http_client.h"

namespace conduit::http {

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  // Temporary (STS) credentials come with a token: sent and signed as x-amz-security-token.
  std::optional<std::string> session_token;
};

// Where the signature is valid: e.g. region "us-east-1", service "s3".
struct SigV4Scope {
  std::string region;
  std::string service;
};

struct SigV4Request {
  std::string method;  // GET, PUT, ...
  // The path as sent, already URI-encoded (S3: each key segment encoded once, '/' kept). The
  // signer does not normalise or re-encode it.
  std::string canonical_uri = "/";
  // Decoded names and values; the signer encodes and sorts them (CanonicalQueryString), and the
  // URL must carry the same string.
  std::vector<std::pair<std::string, std::string>> query;
  // Every header to sign, Host included, with the values that are sent; not x-amz-date nor
  // x-amz-security-token, which the signer adds. Names in any case; repeated names are joined in
  // order.
  Headers headers;
  // Hex SHA-256 of the body (Sha256Hex), or "UNSIGNED-PAYLOAD" where the service allows it.
  std::string payload_sha256_hex;
};

struct SigV4Signature {
  std::string authorization;  // the Authorization header's value
  std::string amz_date;       // x-amz-date, e.g. 20150830T123600Z
  // What must be added to the request as is: x-amz-date, x-amz-security-token (when the
  // credentials have a token) and Authorization.
  Headers headers_to_add;
  // The intermediate texts, for tests and for comparing with a server's SignatureDoesNotMatch.
  std::string canonical_request;
  std::string string_to_sign;
};

SigV4Signature SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                      const SigV4Scope& scope, std::chrono::system_clock::time_point now);

// SigV4's UriEncode: every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex); '/' too unless
// `keep_slash` (for paths).
std::string SigV4UriEncode(std::string_view text, bool keep_slash);
// name=value pairs encoded with SigV4UriEncode, sorted by name then value, joined with '&'.
std::string CanonicalQueryString(const std::vector<std::pair<std::string, std::string>>& query);

std::string Sha256Hex(std::string_view bytes);

// Digests of a whole body. A file piece that cannot be read (missing, shorter than its slice)
// is an HttpError of kind kBody: the item cannot be sent as is.
Result<std::string, HttpError> Sha256Hex(const Body& body);
Result<std::string, HttpError> Md5Base64(const Body& body);

struct PayloadDigests {
  std::string sha256_hex;  // x-amz-content-sha256
  std::string md5_base64;  // Content-MD5
};
// Both digests in one pass over the body (one read of each file range).
Result<PayloadDigests, HttpError> DigestPayload(const Body& body);

}  // namespace conduit::http
