#include "router/admin/admin_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "router/log/log.h"

namespace conduit::admin {
namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

struct AdminServer::Shared {
  AdminHandler handler;
  AdminServerLimits limits;
  std::atomic<std::size_t> active{0};
  std::atomic<std::uint64_t> next_id{1};
};

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::string_view kTooMany = "error\ntoo many admin connections\n";

// The request so far: still incomplete, complete with its words, or refused with the reason.
struct ParsedRequest {
  enum class State { kIncomplete, kComplete, kRefused };
  State state = State::kIncomplete;
  std::vector<std::string> words;
  std::string why;
};

ParsedRequest Refuse(std::string why) {
  return {ParsedRequest::State::kRefused, {}, std::move(why)};
}

ParsedRequest ParseRequest(std::string_view bytes) {
  ParsedRequest parsed;
  std::size_t position = 0;
  for (;;) {
    const std::size_t end = bytes.find('\n', position);
    // Without a "\n" within the first kMaxRequestBytes, the empty line cannot come in time.
    if ((end == std::string_view::npos && bytes.size() >= kMaxRequestBytes) ||
        (end != std::string_view::npos && end + 1 > kMaxRequestBytes)) {
      return Refuse("request too large (at most " + std::to_string(kMaxRequestBytes) + " bytes)");
    }
    if (end == std::string_view::npos) return parsed;  // incomplete
    if (end == position) {
      if (parsed.words.empty()) return Refuse("empty request");
      parsed.state = ParsedRequest::State::kComplete;
      return parsed;
    }
    if (parsed.words.size() == kMaxRequestWords) {
      return Refuse("too many words (at most " + std::to_string(kMaxRequestWords) + ")");
    }
    parsed.words.emplace_back(bytes.substr(position, end - position));
    position = end + 1;
  }
}

struct Request {
  ParsedRequest parsed;
  bool peer_sent_nothing = false;  // connected and closed, e.g. a probe from Open()
  bool cancelled = false;          // the deadline passed
};

asio::awaitable<Request> ReadRequest(Socket& socket) {
  std::string data;
  std::array<char, 1024> chunk;
  for (;;) {
    auto [error, size] = co_await socket.async_read_some(asio::buffer(chunk), kNoThrow);
    data.append(chunk.data(), size);
    Request request{ParseRequest(data)};
    if (request.parsed.state != ParsedRequest::State::kIncomplete) co_return request;
    if (error) {
      request.peer_sent_nothing = data.empty();
      request.cancelled = error == asio::error::operation_aborted;
      request.parsed =
          Refuse(error == asio::error::eof ? "the request ended before its empty line"
                                           : "cannot read the request: " + error.message());
      co_return request;
    }
  }
}

// The command for the log: bounded, and no control characters from the socket in the journal.
std::string Printable(const std::vector<std::string>& words) {
  constexpr std::size_t kMaxLogged = 200;
  std::string line;
  for (const std::string& word : words) {
    if (!line.empty()) line += ' ';
    for (const char c : word) {
      line += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    if (line.size() > kMaxLogged) return line.substr(0, kMaxLogged) + "...";
  }
  return line;
}

AdminReply Handle(const AdminHandler& handler, const std::vector<std::string>& words) {
  try {
    return handler(words);
  } catch (const std::exception& error) {
    return {false, std::string("internal error: ") + error.what()};
  } catch (...) {
    return {false, "internal error"};
  }
}

asio::awaitable<void> Exchange(Socket& socket, const AdminHandler& handler, std::uint64_t id) {
  const Request request = co_await ReadRequest(socket);
  AdminReply reply;
  if (request.parsed.state == ParsedRequest::State::kRefused) {
    if (request.cancelled) co_return;  // ServeConnection logs the deadline
    if (request.peer_sent_nothing) {
      log::Debug("admin connection ", id, " closed without a request");
      co_return;
    }
    log::Warning("admin connection ", id, ": ", request.parsed.why);
    reply = {false, request.parsed.why};
  } else {
    reply = Handle(handler, request.parsed.words);
    log::Info("admin command '", Printable(request.parsed.words), "': ", reply.ok ? "ok" : "error");
  }
  std::string response = reply.ok ? "ok\n" : "error\n";
  response += reply.text;
  if (!reply.text.empty() && reply.text.back() != '\n') response += '\n';
  auto [error, written] = co_await asio::async_write(socket, asio::buffer(response), kNoThrow);
  if (error) log::Warning("admin connection ", id, ": cannot send the reply: ", error.message());
}

asio::awaitable<void> Deadline(std::chrono::milliseconds deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(deadline);
  co_await timer.async_wait(kNoThrow);
}

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// Whether a process accepts connections on the socket at `path`; throws when it cannot tell.
bool SomeoneAccepts(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) throw std::runtime_error(std::string("cannot create a socket: ") + strerror(errno));
  const sockaddr_un address = UnixAddress(path);
  const int result = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int error = errno;
  ::close(fd);
  if (result == 0 || error == EAGAIN) return true;  // EAGAIN: alive, its backlog is full
  if (error == ECONNREFUSED || error == ENOENT) return false;
  throw std::runtime_error("cannot tell whether another conduit is running on " + path + ": " +
                           strerror(error));
}

}  // namespace

AdminServer::AdminServer(asio::io_context& io_context, std::filesystem::path socket_path,
                         AdminHandler handler, AdminServerLimits limits)
    : io_context_(io_context),
      socket_path_(std::move(socket_path)),
      strand_(asio::make_strand(io_context)),
      acceptor_(strand_),
      shared_(std::make_shared<Shared>()) {
  shared_->handler = std::move(handler);
  shared_->limits = limits;
}

AdminServer::~AdminServer() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  if (!created_socket_) return;
  struct stat info {};
  if (::lstat(socket_path_.c_str(), &info) == 0 && info.st_dev == socket_device_ &&
      info.st_ino == socket_inode_) {
    ::unlink(socket_path_.c_str());
  }
}

void AdminServer::Open() {
  const std::string path = socket_path_.string();
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error("admin socket path '" + path + "' is empty or too long (at most " +
                             std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
  }
  if (socket_path_.has_parent_path()) {
    std::error_code error;
    std::filesystem::create_directories(socket_path_.parent_path(), error);
    if (error) {
      throw std::runtime_error("cannot create " + socket_path_.parent_path().string() + ": " +
                               error.message());
    }
  }
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0) {
    if (!S_ISSOCK(info.st_mode)) {
      throw std::runtime_error("admin socket path " + path + " exists and is not a socket");
    }
    if (SomeoneAccepts(path)) throw std::runtime_error("another conduit is running on " + path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      throw std::runtime_error("cannot remove the stale socket " + path + ": " + strerror(errno));
    }
    log::Warning("admin socket ", path, ": replaced a stale socket (left by a crash?)");
  }
  const asio::local::stream_protocol::endpoint endpoint(path);
  boost::system::error_code error;
  acceptor_.open(endpoint.protocol(), error);
  if (!error) acceptor_.bind(endpoint, error);
  if (error) throw std::runtime_error("cannot bind admin socket " + path + ": " + error.message());
  created_socket_ = true;
  if (::lstat(path.c_str(), &info) == 0) {
    socket_device_ = info.st_dev;
    socket_inode_ = info.st_ino;
  }
  // Before listen(): nobody can connect while the mode is still the umask's.
  if (::chmod(path.c_str(), 0660) != 0) {
    throw std::runtime_error("cannot set the mode of " + path + ": " + strerror(errno));
  }
  acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) throw std::runtime_error("cannot listen on " + path + ": " + error.message());
}

void AdminServer::Close() {
  // The acceptor is not thread-safe: close it on its own strand, between accept operations.
  asio::post(strand_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
}

asio::awaitable<void> AdminServer::AcceptLoop() {
  for (;;) {
    // Each connection gets a strand of its own.
    Socket socket(asio::make_strand(io_context_));
    auto [error] = co_await acceptor_.async_accept(socket, kNoThrow);
    if (error) {
      if (!acceptor_.is_open()) co_return;  // Close() was called
      log::Warning("admin socket ", socket_path_.string(), ": accept failed: ", error.message());
      // E.g. out of descriptors: pause rather than spin.
      asio::steady_timer pause(strand_, std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    if (shared_->active.load() >= shared_->limits.max_connections) {
      log::Warning("admin socket ", socket_path_.string(), ": more than ",
                   shared_->limits.max_connections, " connections; one refused");
      // A few bytes into an empty socket buffer: never blocks; the socket closes at scope end.
      boost::system::error_code ignored;
      socket.non_blocking(true, ignored);
      asio::write(socket, asio::buffer(kTooMany), ignored);
      continue;
    }
    ++shared_->active;  // here, not in the coroutine, so that the next accept sees it
    auto executor = socket.get_executor();
    asio::co_spawn(executor, ServeConnection(std::move(socket), shared_), asio::detached);
  }
}

asio::awaitable<void> AdminServer::ServeConnection(Socket socket, std::shared_ptr<Shared> shared) {
  struct Slot {
    std::atomic<std::size_t>& active;
    ~Slot() { --active; }
  } slot{shared->active};
  const std::uint64_t id = shared->next_id++;
  try {
    using namespace asio::experimental::awaitable_operators;
    const auto finished =
        co_await (Exchange(socket, shared->handler, id) || Deadline(shared->limits.deadline));
    if (finished.index() == 1) {
      log::Warning("admin connection ", id, ": no request and reply within ",
                   shared->limits.deadline.count(), " ms; closed");
    }
  } catch (const std::exception& error) {
    // The one catch of a connection: whatever escaped ends this connection only.
    log::Warning("admin connection ", id, ": ", error.what());
  }
  boost::system::error_code ignored;
  socket.shutdown(Socket::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace conduit::admin
