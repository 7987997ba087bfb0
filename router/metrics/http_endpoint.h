// A small HTTP/1.1 server for the operator's pull endpoints on metrics.listen: /metrics for
// Prometheus, /healthz and /readyz for probes. prometheus-cpp's Exposer (CivetWeb) serves
// collectables only, always with 200, so it cannot answer a health check with 503.
//
// One request per connection, answered with "Connection: close"; GET and HEAD only. It runs on a
// thread and io_context of its own: a scrape never takes a network thread from DICOM traffic,
// and a stuck network thread cannot silence the health check that should report it. Bounded:
// connections at once, the size of a request head, and one deadline per connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace conduit::metrics {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called on the endpoint's thread for each request of its path; an exception becomes a 500.
using HttpHandler = std::function<HttpResponse()>;

struct HttpEndpointLimits {
  std::size_t max_connections = 16;           // more wait in the kernel's backlog
  std::size_t max_request_bytes = 8192;       // request line and headers; larger: 431
  std::chrono::milliseconds deadline{10000};  // per connection: read the request, write the answer
};

// The head of a request (request line and headers) as far as it has arrived.
struct HttpRequestHead {
  enum class State { kIncomplete, kComplete, kRefused };
  State state = State::kIncomplete;
  std::string method;
  std::string path;        // the target without its query
  int refusal_status = 0;  // 400, 431 or 505 when refused
  std::string refusal;     // why, for the body
};

// Parses `bytes`, everything received so far; refuses a head that has not ended within
// `max_bytes`.
HttpRequestHead ParseHttpRequestHead(std::string_view bytes, std::size_t max_bytes);

// The answer to a complete head: the route's handler for GET and HEAD (a HEAD answer has no
// body), 404 for an unknown path, 405 for another method.
HttpResponse AnswerHttpRequest(const HttpRequestHead& head,
                               const std::map<std::string, HttpHandler>& routes);

// The bytes of `response`; `head_only` leaves the body out (HEAD) but keeps its length.
std::string FormatHttpResponse(const HttpResponse& response, bool head_only);

class HttpEndpoint {
 public:
  // `listen` is "address:port" as metrics.listen gives it ("[::1]:9112" for IPv6).
  HttpEndpoint(std::string listen, std::map<std::string, HttpHandler> routes,
               HttpEndpointLimits limits = {});
  ~HttpEndpoint();  // Stop()
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // Binds and listens; throws std::runtime_error with the reason (port in use, bad address).
  void Open();
  std::uint16_t port() const;
  // Serves on a thread of its own until Stop().
  void Start();
  // Closes the listener and every open connection, and joins the thread.
  void Stop();

 private:
  struct Shared;  // what connections share with the endpoint
  boost::asio::awaitable<void> AcceptLoop();
  static boost::asio::awaitable<void> Serve(boost::asio::ip::tcp::socket socket,
                                            std::shared_ptr<Shared> shared);

  std::string listen_;
  boost::asio::io_context io_;
  // After io_: its timer must go while io_ exists (connections that outlive Stop() hold it too
  // and release it when io_ is destroyed).
  std::shared_ptr<Shared> shared_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
};

}  // namespace conduit::metrics
