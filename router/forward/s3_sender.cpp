#include "router/forward/s3_sender.h"

#include <utility>

#include "router/forward/http_status.h"

namespace conduit::forward {
namespace {

std::string FirstOf(const std::map<std::string, std::string>& values,
                    std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (auto found = values.find(key); found != values.end()) return found->second;
  }
  return {};
}

// Refusals that say our credentials are wrong, as opposed to a refused object.
bool IsCredentialProblem(const std::string& code) {
  return code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" ||
         code == "AccessDenied" || code == "ExpiredToken" || code == "InvalidToken";
}

}  // namespace

S3Sender::S3Sender(const config::DestinationConfig& config, KeyTemplate key_template,
                   const std::atomic<bool>& cancel, std::function<void(long status)> count_response)
    : settings_(config.s3),
      key_template_(std::move(key_template)),
      http_(ClientOptionsFor(config, cancel)),
      count_response_(std::move(count_response)) {
  if (!settings_.credentials_file.empty()) {
    credentials_file_ = std::make_unique<SecretFile>(settings_.credentials_file);
  }
}

Result<http::AwsCredentials, SecretFileError> S3Sender::CurrentCredentials() {
  http::AwsCredentials credentials;
  if (!credentials_file_) {
    credentials.access_key_id = settings_.access_key_id;
    credentials.secret_access_key = settings_.secret_access_key;
    return credentials;
  }
  auto text = credentials_file_->Read();
  if (!text) return text.error();
  const auto values = ParseKeyValueLines(text.value());
  credentials.access_key_id = FirstOf(values, {"access_key_id", "aws_access_key_id"});
  credentials.secret_access_key = FirstOf(values, {"secret_access_key", "aws_secret_access_key"});
  const std::string token = FirstOf(values, {"session_token", "aws_session_token"});
  if (!token.empty()) credentials.session_token = token;
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
    return SecretFileError{credentials_file_->path().string() +
                           " lacks access_key_id or secret_access_key"};
  }
  return credentials;
}

std::optional<std::string> S3Sender::Probe() {
  auto credentials = CurrentCredentials();
  if (!credentials) return credentials.error().message;
  http::S3Client client(
      http_, {settings_.endpoint, settings_.region, settings_.bucket, settings_.path_style},
      credentials.value(), {});
  auto answer = client.CheckBucket();
  if (answer) {
    count_response_(answer.value());
    return std::nullopt;
  }
  const http::S3Error& error = answer.error();
  if (error.http_status != 0) count_response_(error.http_status);
  return error.detail;
}

ArchiveDelivery S3Sender::Deliver(const std::vector<ArchiveObject>& objects) {
  auto credentials = CurrentCredentials();
  if (!credentials) {
    ArchiveDelivery delivery = ArchiveDelivery::AllSame(
        objects.size(), ArchiveResult::kNotAttempted, credentials.error().message);
    delivery.destination_failure = credentials.error().message;
    return delivery;
  }
  http::S3Client client(
      http_, {settings_.endpoint, settings_.region, settings_.bucket, settings_.path_style},
      credentials.value(), {settings_.multipart_threshold_bytes, settings_.multipart_part_bytes});
  ArchiveDelivery delivery;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const ArchiveObject& object = objects[i];
    const std::string key = ObjectKeyFor(key_template_, *object.item, object.sop_instance_uid);
    auto put = client.Put(key, object.part10);
    if (put) {
      count_response_(put.value().http_status);
      delivery.objects.push_back({ArchiveResult::kDelivered, {}});
      continue;
    }
    const http::S3Error& error = put.error();
    if (error.transport) {
      // The rest of this delivery shares the fate of this one.
      ArchiveDelivery failed = TransportFailure(objects.size() - i, *error.transport);
      delivery.objects.insert(delivery.objects.end(), failed.objects.begin(), failed.objects.end());
      delivery.destination_failure = failed.destination_failure;
      return delivery;
    }
    count_response_(error.http_status);
    ArchiveResult result = ClassifyHttpStatus(error.http_status);
    std::string reason = error.detail;
    if (IsCredentialProblem(error.code)) {
      reason = "S3 refused our credentials (" + error.code + "): " + error.detail;
    }
    delivery.objects.push_back({result, reason});
    if ((error.http_status == 429 || error.http_status == 503) && error.retry_after) {
      delivery.retry_after = error.retry_after;
    }
    if (error.http_status >= 500) delivery.destination_failure = reason;
  }
  return delivery;
}

}  // namespace conduit::forward
