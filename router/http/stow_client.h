// DICOMweb STOW-RS (PS3.18 10.5): stores several instances with one POST of a
// multipart/related; type="application/dicom" body, each part one Part 10 file, streamed from
// memory and file ranges. The answer is parsed per PS3.18 10.5.3: which SOP Instance UIDs were
// stored (ReferencedSOPSequence) and which failed and why (FailedSOPSequence, FailureReason).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "codecs/result.h"
#include "router/http/http_client.h"

namespace conduit::http {

struct StowAuth {
  enum class Kind { kNone, kBasic, kBearer };
  Kind kind = Kind::kNone;
  std::string username;  // basic
  std::string password;  // basic
  std::string token;     // bearer (the caller re-reads its file when it changes)
};

struct StowInstance {
  std::string sop_instance_uid;
  std::string sop_class_uid;
  Body part10;  // the whole Part 10 file: preamble, meta group, dataset
};

// What happened to one instance of the request.
struct StowInstanceResult {
  std::string sop_instance_uid;
  bool stored = false;
  std::optional<int> failure_reason;  // (0008,1197) for a failed one, e.g. 0xA700, 0xC000
  std::string detail;                 // a readable reason for a failed one
};

struct StowResponse {
  long http_status = 0;  // 200, 202, 409, 4xx, 5xx ...
  std::optional<std::chrono::seconds> retry_after;
  // One entry per instance of the request, in request order. Instances the body did not
  // mention: stored when the status was 200, failed (no reason) otherwise.
  std::vector<StowInstanceResult> instances;
  std::string detail;  // one line for logs: status and the server's message if any
};

class StowClient {
 public:
  // `base_url` is the DICOMweb root, e.g. http://pacs:8042/dicom-web; requests go to
  // <base_url>/studies (or <base_url>/studies/<StudyInstanceUID> when `study_instance_uid` is
  // given). `http` is the calling worker's own client and must outlive this object.
  StowClient(HttpClient& http, std::string base_url);

  Result<StowResponse, HttpError> Store(const std::vector<StowInstance>& instances,
                                        const StowAuth& auth,
                                        const std::string& study_instance_uid = {});
  // A cheap authenticated GET for circuit probes (QIDO-RS <base_url>/studies?limit=1): any
  // answer below 500 other than 401/403 means the service is up and lets us in.
  Result<long, HttpError> Probe(const StowAuth& auth);

 private:
  HttpClient& http_;
  std::string base_url_;
};

// Parses a STOW-RS answer body (application/dicom+json, or application/dicom+xml) into per-
// instance results for `requested` (the SOP Instance UIDs sent, in order). Exposed for tests.
std::vector<StowInstanceResult> ParseStowResponse(long http_status, const std::string& content_type,
                                                  const std::string& body,
                                                  const std::vector<std::string>& requested);

}  // namespace conduit::http
