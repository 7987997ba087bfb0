// An S3 destination: each instance is one object, its key from the destination's key template,
// uploaded with its MD5 for the store to check (multipart above the threshold) on the worker's
// kept-alive connection.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "router/config/config.h"
#include "router/forward/archive_sender.h"
#include "router/forward/object_key.h"
#include "router/forward/secret_file.h"
#include "router/http/s3_client.h"

namespace conduit::forward {

class S3Sender final : public ArchiveSender {
 public:
  S3Sender(const config::DestinationConfig& config, KeyTemplate key_template,
           const std::atomic<bool>& cancel, std::function<void(long status)> count_response);

  ArchiveDelivery Deliver(const std::vector<ArchiveObject>& objects) override;
  std::optional<std::string> Probe() override;

 private:
  // From the configuration, or from the credentials file as it is now.
  Result<http::AwsCredentials, SecretFileError> CurrentCredentials();

  config::S3Settings settings_;
  KeyTemplate key_template_;
  http::HttpClient http_;
  std::unique_ptr<SecretFile> credentials_file_;
  std::function<void(long)> count_response_;
};

}  // namespace conduit::forward
