#include "router/metrics/http_endpoint.h"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <stdexcept>
#include <utility>

#include "router/log/log.h"

namespace conduit::metrics {
namespace asio = boost::asio;
using asio::ip::tcp;

struct HttpEndpoint::Shared {
  explicit Shared(asio::io_context& io) : slot_freed(io) {}
  std::map<std::string, HttpHandler> routes;
  HttpEndpointLimits limits;
  // Only touched on the endpoint's one thread.
  std::size_t active = 0;
  asio::steady_timer slot_freed;  // cancelled when a connection ends: the accept loop goes on
};

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
// What a client may still send after its answer before the connection is closed anyway.
constexpr std::size_t kMaxDrainBytes = 64 * 1024;

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

HttpRequestHead Refuse(int status, std::string why) {
  HttpRequestHead head;
  head.state = HttpRequestHead::State::kRefused;
  head.refusal_status = status;
  head.refusal = std::move(why);
  return head;
}

HttpResponse Text(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  if (!response.body.empty() && response.body.back() != '\n') response.body += '\n';
  return response;
}

// RFC 9110 5.6.2: a method is a token.
bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// "address:port" -> endpoint; the loader accepted the text, so this only fails on odd input.
tcp::endpoint ParseListen(const std::string& listen) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("expected address:port");
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  boost::system::error_code error;
  const asio::ip::address address = asio::ip::make_address(host, error);
  if (error) throw std::runtime_error("'" + host + "' is not an IP address");
  const int port = std::stoi(listen.substr(colon + 1));
  if (port < 0 || port > 65535) throw std::runtime_error("port out of range");
  return tcp::endpoint(address, static_cast<std::uint16_t>(port));
}

asio::awaitable<void> Deadline(std::chrono::milliseconds deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(deadline);
  co_await timer.async_wait(kNoThrow);
}

// One request and its answer. A coroutine function, not a coroutine lambda: GCC 12 mishandles
// the captures of lambdas that are coroutines.
asio::awaitable<void> Exchange(tcp::socket& socket,
                               const std::map<std::string, HttpHandler>& routes,
                               std::size_t max_request_bytes) {
  std::string received;
  std::array<char, 2048> chunk;
  HttpRequestHead head;
  while (head.state == HttpRequestHead::State::kIncomplete) {
    auto [error, size] = co_await socket.async_read_some(asio::buffer(chunk), kNoThrow);
    if (error) co_return;  // the client went away before its request was complete
    received.append(chunk.data(), size);
    head = ParseHttpRequestHead(received, max_request_bytes);
  }
  const std::string bytes =
      FormatHttpResponse(AnswerHttpRequest(head, routes), head.method == "HEAD");
  auto [write_error, written] = co_await asio::async_write(socket, asio::buffer(bytes), kNoThrow);
  if (write_error) co_return;
  // Closing with unread request bytes (a refused, oversized head) would reset the connection
  // and could destroy the answer before the client reads it: end our side, then read what the
  // client still sends until it closes (the connection's deadline bounds the wait).
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  for (std::size_t drained = 0; drained < kMaxDrainBytes;) {
    auto [error, size] = co_await socket.async_read_some(asio::buffer(chunk), kNoThrow);
    if (error) break;
    drained += size;
  }
}

HttpResponse Handle(const HttpHandler& handler) {
  try {
    return handler();
  } catch (const std::exception& error) {
    return Text(500, std::string("internal error: ") + error.what());
  }
}

}  // namespace

HttpRequestHead ParseHttpRequestHead(std::string_view bytes, std::size_t max_bytes) {
  const std::size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (bytes.size() >= max_bytes) {
      return Refuse(431, "the request head is longer than " + std::to_string(max_bytes) + " bytes");
    }
    return {};
  }
  if (end + 4 > max_bytes) {
    return Refuse(431, "the request head is longer than " + std::to_string(max_bytes) + " bytes");
  }
  // RFC 9112 3: method SP request-target SP HTTP-version
  const std::string_view line = bytes.substr(0, bytes.find("\r\n"));
  const std::size_t first_space = line.find(' ');
  const std::size_t last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) {
    return Refuse(400, "malformed request line");
  }
  const std::string_view method = line.substr(0, first_space);
  const std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
  const std::string_view version = line.substr(last_space + 1);
  if (!IsToken(method) || target.empty() || target.find(' ') != std::string_view::npos) {
    return Refuse(400, "malformed request line");
  }
  if (!version.starts_with("HTTP/")) return Refuse(400, "malformed request line");
  if (!version.starts_with("HTTP/1.")) return Refuse(505, "only HTTP/1.x is served");
  if (target.front() != '/') return Refuse(400, "the request target must be a path");
  HttpRequestHead head;
  head.state = HttpRequestHead::State::kComplete;
  head.method = std::string(method);
  head.path = std::string(target.substr(0, target.find_first_of("?#")));
  return head;
}

HttpResponse AnswerHttpRequest(const HttpRequestHead& head,
                               const std::map<std::string, HttpHandler>& routes) {
  if (head.state == HttpRequestHead::State::kRefused) {
    return Text(head.refusal_status, head.refusal);
  }
  const auto route = routes.find(head.path);
  if (route == routes.end()) {
    std::string known;
    for (const auto& [path, handler] : routes) known += (known.empty() ? "" : ", ") + path;
    return Text(404, "not found; served here: " + known);
  }
  if (head.method != "GET" && head.method != "HEAD") {
    return Text(405, "only GET and HEAD are served");
  }
  return Handle(route->second);
}

std::string FormatHttpResponse(const HttpResponse& response, bool head_only) {
  std::string bytes =
      "HTTP/1.1 " + std::to_string(response.status) + " " + ReasonPhrase(response.status) + "\r\n";
  bytes += "Content-Type: " + response.content_type + "\r\n";
  bytes += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  if (response.status == 405) bytes += "Allow: GET, HEAD\r\n";
  // Probes and scrapes are seconds apart: a connection per request keeps the server simple.
  bytes += "Connection: close\r\n\r\n";
  if (!head_only) bytes += response.body;
  return bytes;
}

HttpEndpoint::HttpEndpoint(std::string listen, std::map<std::string, HttpHandler> routes,
                           HttpEndpointLimits limits)
    : listen_(std::move(listen)), shared_(std::make_shared<Shared>(io_)), acceptor_(io_) {
  shared_->routes = std::move(routes);
  shared_->limits = limits;
}

HttpEndpoint::~HttpEndpoint() { Stop(); }

void HttpEndpoint::Open() {
  try {
    const tcp::endpoint endpoint = ParseListen(listen_);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& error) {
    throw std::runtime_error("cannot listen on " + listen_ + ": " + error.what());
  }
}

std::uint16_t HttpEndpoint::port() const { return acceptor_.local_endpoint().port(); }

void HttpEndpoint::Start() {
  asio::co_spawn(io_, AcceptLoop(), asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

void HttpEndpoint::Stop() {
  if (!thread_.joinable()) return;
  // Open connections are coroutines on io_: stopping it and destroying it (with the endpoint)
  // closes their sockets.
  io_.stop();
  thread_.join();
}

asio::awaitable<void> HttpEndpoint::AcceptLoop() {
  for (;;) {
    // At the limit, further connections wait in the kernel's backlog until one ends. Refusing
    // them instead would close sockets whose request is unread, and the reset that follows can
    // destroy the refusal before the client reads it.
    while (shared_->active >= shared_->limits.max_connections) {
      shared_->slot_freed.expires_at(asio::steady_timer::time_point::max());
      co_await shared_->slot_freed.async_wait(kNoThrow);
    }
    tcp::socket socket(io_);
    auto [error] = co_await acceptor_.async_accept(socket, kNoThrow);
    if (error) {
      if (!acceptor_.is_open()) co_return;
      log::Warning("metrics endpoint ", listen_, ": accept failed: ", error.message());
      // E.g. out of descriptors: pause rather than spin.
      asio::steady_timer pause(io_, std::chrono::milliseconds(100));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    ++shared_->active;  // here, not in the coroutine, so that the next round sees it
    asio::co_spawn(io_, Serve(std::move(socket), shared_), asio::detached);
  }
}

asio::awaitable<void> HttpEndpoint::Serve(tcp::socket socket, std::shared_ptr<Shared> shared) {
  struct Slot {
    Shared& shared;
    ~Slot() {
      --shared.active;
      shared.slot_freed.cancel();
    }
  } slot{*shared};
  try {
    using namespace asio::experimental::awaitable_operators;
    co_await (Exchange(socket, shared->routes, shared->limits.max_request_bytes) ||
              Deadline(shared->limits.deadline));
  } catch (const std::exception& error) {
    // The one catch of a connection: whatever escaped ends this connection only.
    log::Warning("metrics endpoint connection: ", error.what());
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace conduit::metrics
