#include "router/forward/secret_file.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace conduit::forward {
namespace {

std::string Trim(std::string text) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  text.erase(text.begin(), std::find_if(text.begin(), text.end(), not_space));
  text.erase(std::find_if(text.rbegin(), text.rend(), not_space).base(), text.end());
  return text;
}

}  // namespace

Result<std::string, SecretFileError> SecretFile::Read() {
  std::lock_guard lock(mutex_);
  struct stat status {};
  if (::stat(path_.c_str(), &status) != 0) {
    return SecretFileError{"cannot read " + path_.string() + ": " + std::strerror(errno)};
  }
  const bool unchanged = loaded_ && status.st_mtim.tv_sec == modified_.tv_sec &&
                         status.st_mtim.tv_nsec == modified_.tv_nsec && status.st_size == size_;
  if (!unchanged) {
    std::ifstream file(path_, std::ios::binary);
    if (!file) {
      return SecretFileError{"cannot read " + path_.string() + ": " + std::strerror(errno)};
    }
    std::ostringstream content;
    content << file.rdbuf();
    content_ = Trim(content.str());
    modified_ = status.st_mtim;
    size_ = status.st_size;
    loaded_ = true;
  }
  if (content_.empty()) return SecretFileError{path_.string() + " is empty"};
  return content_;
}

std::map<std::string, std::string> ParseKeyValueLines(const std::string& text) {
  std::map<std::string, std::string> values;
  std::istringstream lines(text);
  std::string line;
  bool in_default_section = true;
  while (std::getline(lines, line)) {
    line = Trim(line);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      // An AWS credentials file may hold several profiles: the [default] one is used.
      in_default_section = line == "[default]";
      continue;
    }
    if (!in_default_section) continue;
    const std::size_t equals = line.find('=');
    if (equals == std::string::npos) continue;
    std::string key = Trim(line.substr(0, equals));
    std::transform(key.begin(), key.end(), key.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    values[key] = Trim(line.substr(equals + 1));
  }
  return values;
}

}  // namespace conduit::forward
