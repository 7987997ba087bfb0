// A loopback server the HTTP tests run as a child process (Python's http.server, s3rver): started
// with pipes on its stdin and stdout, ready once it has printed its first line (the port or ports
// it listens on), stopped and reaped when this object goes.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern char** environ;

namespace conduit::http {

class SpawnedServer {
 public:
  SpawnedServer() = default;
  ~SpawnedServer() { Stop(); }
  SpawnedServer(const SpawnedServer&) = delete;
  SpawnedServer& operator=(const SpawnedServer&) = delete;

  // Runs `program` (looked up in PATH unless it holds a '/') with `args`, its stderr written to
  // `stderr_file` (inherited when empty), and waits up to `timeout` for the first non-empty line
  // it prints (s3rver prints a blank line first). Returns what went wrong, or an empty string.
  std::string Start(const std::string& program, const std::vector<std::string>& args,
                    const std::filesystem::path& stderr_file = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    int to_server[2];
    int from_server[2];
    if (::pipe2(to_server, O_CLOEXEC) != 0) {
      return "pipe failed";
    }
    if (::pipe2(from_server, O_CLOEXEC) != 0) {
      ::close(to_server[0]);
      ::close(to_server[1]);
      return "pipe failed";
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_server[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, from_server[1], STDOUT_FILENO);
    if (!stderr_file.empty()) {
      posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_file.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    std::vector<std::string> copy = {program};
    copy.insert(copy.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : copy) {
      argv.push_back(arg.data());
    }
    argv.push_back(nullptr);
    const int spawned =
        ::posix_spawnp(&pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    // The child's ends: once closed here, the child alone holds them, so our reads see its exit.
    ::close(to_server[0]);
    ::close(from_server[1]);
    // The servers exit when their stdin reaches end of file, so they die with the test binary
    // even if it crashes; held open until Stop.
    stdin_fd_ = to_server[1];
    // Kept open until Stop as well: a server that prints more later must not get SIGPIPE.
    stdout_fd_ = from_server[0];
    if (spawned != 0) {
      pid_ = 0;
      return "cannot run " + program + ": " + std::strerror(spawned);
    }

    std::string printed;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd readable{stdout_fd_, POLLIN, 0};
      if (::poll(&readable, 1, 100) <= 0) {
        continue;
      }
      char buffer[256];
      const ssize_t got = ::read(stdout_fd_, buffer, sizeof buffer);
      if (got <= 0) {
        return program + " exited: " + ReadStderr(stderr_file);
      }
      printed.append(buffer, static_cast<std::size_t>(got));
      for (std::size_t start = 0, end; (end = printed.find('\n', start)) != std::string::npos;
           start = end + 1) {
        if (end > start) {
          first_line_ = printed.substr(start, end - start);
          return {};
        }
      }
    }
    return program + " printed no line within " + std::to_string(timeout.count()) +
           " ms; it printed: " + printed + "; stderr: " + ReadStderr(stderr_file);
  }

  // The first non-empty line the server printed, without its '\n'.
  const std::string& first_line() const { return first_line_; }

  void Stop() {
    if (stdin_fd_ >= 0) {
      ::close(stdin_fd_);
      stdin_fd_ = -1;
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = 0;
    }
    if (stdout_fd_ >= 0) {
      ::close(stdout_fd_);
      stdout_fd_ = -1;
    }
  }

 private:
  static std::string ReadStderr(const std::filesystem::path& stderr_file) {
    if (stderr_file.empty()) {
      return {};
    }
    std::ifstream in(stderr_file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  pid_t pid_ = 0;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  std::string first_line_;
};

}  // namespace conduit::http
