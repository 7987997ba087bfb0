// Puts objects into an S3-compatible store (AWS S3, MinIO, s3rver, ...): signed with AWS
// Signature Version 4 (sigv4.h), each upload's integrity checked by the server (Content-MD5 on
// every PUT and part), multipart upload above a size threshold, path-style or
// virtual-host-style addressing.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "codecs/result.h"
#include "router/http/http_client.h"
#include "router/http/sigv4.h"

namespace conduit::http {

struct S3Location {
  std::string endpoint;  // scheme://host[:port], e.g. https://s3.eu-central-1.amazonaws.com
  std::string region;    // e.g. us-east-1 (what the signature is scoped to)
  std::string bucket;
  bool path_style = true;  // endpoint/bucket/key; false: bucket.host/key
};

struct S3UploadOptions {
  std::uint64_t multipart_threshold_bytes = 64ull << 20;  // objects this size or larger: multipart
  std::uint64_t part_bytes = 16ull << 20;                 // each part but the last (>= 5 MiB)
};

// Why a request did not store the object. Either no answer came (transport set), or the server
// answered with an error status (http_status, and S3's <Code> and <Message> when it sent them).
struct S3Error {
  std::optional<HttpError> transport;
  long http_status = 0;
  std::string code;    // e.g. InvalidAccessKeyId, SignatureDoesNotMatch, NoSuchBucket, BadDigest
  std::string detail;  // one line for logs and dead-letter reasons, e.g. "PUT key: 403 ..."
  std::optional<std::chrono::seconds> retry_after;  // from a Retry-After header
};

struct S3PutResult {
  long http_status = 0;  // of the final request (PUT, or CompleteMultipartUpload)
  std::string etag;
  std::uint64_t bytes = 0;
  bool multipart = false;
};

class S3Client {
 public:
  // `http` is the calling worker's own client and must outlive this object.
  S3Client(HttpClient& http, S3Location location, AwsCredentials credentials,
           S3UploadOptions options);

  // Stores `body` under `key` (not yet encoded: the client percent-encodes each path segment
  // and keeps '/'). A multipart upload that fails part-way is aborted (best effort).
  Result<S3PutResult, S3Error> Put(const std::string& key, const Body& body,
                                   const std::string& content_type = "application/dicom");
  // HEAD on the bucket: is the store reachable and are we allowed in? For circuit probes.
  Result<long, S3Error> CheckBucket();

  // The URL of an object (for logs and tests).
  std::string ObjectUrl(const std::string& key) const;

 private:
  using Query = std::vector<std::pair<std::string, std::string>>;

  // What is signed and sent as Host: the endpoint's host[:port], with the bucket in front of it
  // for virtual-host style.
  std::string HostHeader() const;
  // The encoded path of an object, or of the bucket when `key` is empty.
  std::string CanonicalPath(const std::string& key) const;
  // One signed request to the bucket (`key` empty) or an object. An answer with a status other
  // than 2xx is an S3Error; `what` starts its detail line (e.g. "PUT key").
  Result<HttpResponse, S3Error> Send(const std::string& method, const std::string& key,
                                     const Query& query, Headers headers, Body body,
                                     const std::string& payload_sha256_hex,
                                     const std::string& what);
  Result<S3PutResult, S3Error> PutWhole(const std::string& key, const Body& body,
                                        std::uint64_t length, const std::string& content_type);
  Result<S3PutResult, S3Error> PutMultipart(const std::string& key, const Body& body,
                                            std::uint64_t length, const std::string& content_type);
  void AbortMultipart(const std::string& key, const std::string& upload_id);

  HttpClient& http_;
  S3Location location_;
  AwsCredentials credentials_;
  S3UploadOptions options_;
};

}  // namespace conduit::http
