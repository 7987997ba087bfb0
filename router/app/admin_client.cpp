#include "router/app/admin_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "router/io/posix_file.h"

namespace conduit::app {
namespace {

// A reply longer than this is not one the daemon sends: stop reading rather than grow forever.
constexpr std::size_t kMaxReplyBytes = 64ULL << 20;

std::string Unreachable(const std::string& path, int error) {
  std::string text = "cannot reach the conduit daemon at " + path + ": " + std::strerror(error);
  if (error == EACCES || error == EPERM) {
    return text + " (the socket is mode 0660: run as the daemon's user or in its group)";
  }
  return text + " (is it running? is admin.socket in the config the same?)";
}

std::string NoAnswer(const std::string& path, const std::string& why) {
  return "the conduit daemon at " + path + " did not answer: " + why;
}

}  // namespace

Result<admin::AdminReply, std::string> SendAdminRequest(const std::filesystem::path& socket,
                                                        const std::vector<std::string>& words,
                                                        std::chrono::seconds timeout) {
  const std::string path = socket.string();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_un address{};
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return "cannot reach the conduit daemon at '" + path + "': the path is empty or longer than " +
           std::to_string(sizeof(address.sun_path) - 1) + " bytes";
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());

  const io::FileDescriptor fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Unreachable(path, errno);
  // Bounds connect() (a full backlog blocks it) and send(); the reply is awaited with poll().
  timeval send_timeout{};
  send_timeout.tv_sec = timeout.count();
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    // EAGAIN: its backlog stayed full until the timeout.
    return Unreachable(path, (errno == EAGAIN || errno == EINPROGRESS) ? ETIMEDOUT : errno);
  }

  std::string request;
  for (const std::string& word : words) request += word + "\n";
  request += "\n";
  std::string_view unsent = request;
  while (!unsent.empty()) {
    const ssize_t sent = ::send(fd.get(), unsent.data(), unsent.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    // The daemon may answer and close before reading it all (a refusal): read that answer.
    if (sent < 0 && (errno == EPIPE || errno == ECONNRESET)) break;
    if (sent < 0) {
      return NoAnswer(path, errno == EAGAIN ? "timed out sending the request"
                                            : std::string("cannot send: ") + std::strerror(errno));
    }
    unsent.remove_prefix(static_cast<std::size_t>(sent));
  }

  std::string reply;
  char chunk[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return NoAnswer(path, "no reply within " + std::to_string(timeout.count()) + " s");
    }
    pollfd wait{fd.get(), POLLIN, 0};
    const int ready = ::poll(&wait, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) return NoAnswer(path, std::strerror(errno));
    if (ready <= 0) continue;
    const ssize_t got = ::recv(fd.get(), chunk, sizeof(chunk), 0);
    if (got < 0 && errno == EINTR) continue;
    // On a Unix socket, ECONNRESET comes only after every byte the daemon sent has been read:
    // it closed with some of our request unread (it refused the request).
    if (got == 0 || (got < 0 && errno == ECONNRESET)) break;
    if (got < 0) return NoAnswer(path, std::string("cannot read: ") + std::strerror(errno));
    reply.append(chunk, static_cast<std::size_t>(got));
    if (reply.size() > kMaxReplyBytes) return NoAnswer(path, "the reply is too long");
  }

  const std::size_t line_end = reply.find('\n');
  const std::string_view status = std::string_view(reply).substr(0, line_end);
  if (line_end == std::string::npos || (status != "ok" && status != "error")) {
    return NoAnswer(path, reply.empty() ? "the connection closed without a reply"
                                        : "the reply does not start with 'ok' or 'error'");
  }
  return admin::AdminReply{status == "ok", reply.substr(line_end + 1)};
}

}  // namespace conduit::app
