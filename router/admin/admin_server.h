// The operator's channel to the running daemon: a local (Unix) stream socket that takes one
// command per connection (`conduit queue ...`) and answers it in text.
//
// Protocol. Request: the command's words, each terminated by "\n", then an empty line; at most
// kMaxRequestBytes and kMaxRequestWords. Response: "ok" or "error" on the first line, then the
// human-readable body; the server then closes the connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace conduit::admin {

inline constexpr std::size_t kMaxRequestBytes = 4096;  // the words, their "\n"s and the last "\n"
inline constexpr std::size_t kMaxRequestWords = 32;

struct AdminReply {
  bool ok = true;
  std::string text;  // the body: what the operator reads
};

// Called with the request words on a network thread; calls for different connections may run
// concurrently, so the handler must be thread-safe. An exception it throws becomes an error reply.
using AdminHandler = std::function<AdminReply(const std::vector<std::string>& words)>;

struct AdminServerLimits {
  std::size_t max_connections = 8;  // more are told "too many admin connections" and closed
  std::chrono::milliseconds deadline{10000};  // per connection: read the request, write the reply
};

class AdminServer {
 public:
  AdminServer(boost::asio::io_context& io_context, std::filesystem::path socket_path,
              AdminHandler handler, AdminServerLimits limits = {});
  // Removes the socket file if this server created it and it is still there. Destroy the server
  // only once AcceptLoop has returned or the io_context has stopped (as for net::Listener).
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Creates the socket, mode 0660, and its parent directory if missing. Throws
  // std::runtime_error when the path is too long for a Unix socket, when another process accepts
  // connections on it ("another conduit is running on PATH"), when it exists and is not a socket,
  // or when it cannot be bound. A socket nobody accepts on (left by a crash) is replaced.
  void Open();
  const std::filesystem::path& socket_path() const { return socket_path_; }

  // The strand the acceptor lives on: co_spawn AcceptLoop there. Each connection then runs as its
  // own coroutine on its own strand; AcceptLoop returns after Close().
  boost::asio::strand<boost::asio::io_context::executor_type> executor() const { return strand_; }
  boost::asio::awaitable<void> AcceptLoop();
  // Stops accepting (from any thread); open connections end within the deadline.
  void Close();

 private:
  struct Shared;  // what connections share with the server, which they may outlive
  static boost::asio::awaitable<void> ServeConnection(
      boost::asio::local::stream_protocol::socket socket, std::shared_ptr<Shared> shared);

  boost::asio::io_context& io_context_;
  std::filesystem::path socket_path_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  std::shared_ptr<Shared> shared_;
  bool created_socket_ = false;
  // The file we bound, so that we never remove one another process put there.
  std::uint64_t socket_device_ = 0;
  std::uint64_t socket_inode_ = 0;
};

}  // namespace conduit::admin
