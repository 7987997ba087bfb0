// A secret kept in a file (a bearer token, a password, S3 credentials), read again whenever the
// file changes, so that an operator or a token refresher can rotate it without a restart.
// Only the file's modification time and size are checked on each use: no read when unchanged.
#pragma once

#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "codecs/result.h"

namespace conduit::forward {

struct SecretFileError {
  std::string message;  // which file and why it cannot be used
};

class SecretFile {
 public:
  explicit SecretFile(std::filesystem::path path) : path_(std::move(path)) {}

  // The file's content without trailing white space; an error text when it cannot be read or
  // is empty.
  Result<std::string, SecretFileError> Read();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::mutex mutex_;
  bool loaded_ = false;
  timespec modified_{};
  off_t size_ = -1;
  std::string content_;
};

// `key = value` lines (blank lines and '#' or ';' comments ignored), as in an AWS shared
// credentials file: those before any [section] header and those of [default]; keys lower-cased.
std::map<std::string, std::string> ParseKeyValueLines(const std::string& text);

}  // namespace conduit::forward
