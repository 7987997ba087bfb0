// A DICOMweb destination: a worker's instances go in one STOW-RS POST (several instances of one
// study, up to max_instances_per_request and max_request_bytes) on the worker's kept-alive
// connection; each instance is settled by what the answer says of it (PS3.18 10.5.3).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "router/config/config.h"
#include "router/forward/archive_sender.h"
#include "router/forward/secret_file.h"
#include "router/http/stow_client.h"

namespace conduit::forward {

class StowSender final : public ArchiveSender {
 public:
  StowSender(const config::DestinationConfig& config, const std::atomic<bool>& cancel,
             std::function<void(long status)> count_response);

  std::size_t max_objects() const override { return max_objects_; }
  std::uint64_t max_bytes() const override { return max_bytes_; }
  ArchiveDelivery Deliver(const std::vector<ArchiveObject>& objects) override;
  std::optional<std::string> Probe() override;

 private:
  // The credentials as configured now (secret files are read again when they change).
  Result<http::StowAuth, SecretFileError> CurrentAuth();

  std::size_t max_objects_;
  std::uint64_t max_bytes_;
  config::StowSettings settings_;
  http::HttpClient http_;
  http::StowClient client_;
  std::unique_ptr<SecretFile> secret_;  // the password or the token, if the auth needs one
  std::function<void(long)> count_response_;
};

}  // namespace conduit::forward
