#include "router/metrics/http_endpoint.h"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "router/metrics/text_exposition.h"

namespace conduit::metrics {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using State = HttpRequestHead::State;

constexpr std::size_t kMax = 8192;

// ---------------------------------------------------------------------------------------------
// Parsing

TEST(ParseHttpRequestHead, CompleteGetWithHeadersAndQuery) {
  const HttpRequestHead head = ParseHttpRequestHead(
      "GET /metrics?name[]=x HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n", kMax);
  ASSERT_EQ(head.state, State::kComplete);
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.path, "/metrics");
}

TEST(ParseHttpRequestHead, IncompleteUntilTheEmptyLine) {
  EXPECT_EQ(ParseHttpRequestHead("", kMax).state, State::kIncomplete);
  EXPECT_EQ(ParseHttpRequestHead("GET /healthz HTTP/1.1\r\nHost: x\r\n", kMax).state,
            State::kIncomplete);
  EXPECT_EQ(ParseHttpRequestHead("GET /healthz HTTP/1.0\r\n\r\n", kMax).state, State::kComplete);
}

TEST(ParseHttpRequestHead, RefusesHeadsLongerThanTheLimit) {
  const std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(100, 'a');
  const HttpRequestHead head = ParseHttpRequestHead(endless, 64);
  EXPECT_EQ(head.state, State::kRefused);
  EXPECT_EQ(head.refusal_status, 431);
  // Complete, but the empty line ends beyond the limit.
  EXPECT_EQ(ParseHttpRequestHead(endless + "\r\n\r\n", 64).refusal_status, 431);
  EXPECT_EQ(ParseHttpRequestHead(endless + "\r\n\r\n", 1024).state, State::kComplete);
}

TEST(ParseHttpRequestHead, RefusesMalformedRequestLines) {
  for (const char* line :
       {"GET\r\n\r\n", "GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
        "GET / FTP/1.1\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "GET / x HTTP/1.1\r\n\r\n"}) {
    const HttpRequestHead head = ParseHttpRequestHead(line, kMax);
    EXPECT_EQ(head.state, State::kRefused) << line;
    EXPECT_EQ(head.refusal_status, 400) << line;
  }
  EXPECT_EQ(ParseHttpRequestHead("PRI * HTTP/2.0\r\n\r\n", kMax).refusal_status, 505);
}

// ---------------------------------------------------------------------------------------------
// Answers

std::map<std::string, HttpHandler> Routes() {
  std::map<std::string, HttpHandler> routes;
  routes["/healthz"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  routes["/readyz"] = [] { return HttpResponse{503, "text/plain; charset=utf-8", "starting\n"}; };
  routes["/boom"] = []() -> HttpResponse { throw std::runtime_error("collector failed"); };
  return routes;
}

HttpRequestHead Get(std::string path, std::string method = "GET") {
  HttpRequestHead head;
  head.state = State::kComplete;
  head.method = std::move(method);
  head.path = std::move(path);
  return head;
}

TEST(AnswerHttpRequest, RoutesByPathAndMethod) {
  const auto routes = Routes();
  EXPECT_EQ(AnswerHttpRequest(Get("/healthz"), routes).body, "ok\n");
  EXPECT_EQ(AnswerHttpRequest(Get("/readyz"), routes).status, 503);
  EXPECT_EQ(AnswerHttpRequest(Get("/healthz", "HEAD"), routes).status, 200);
  const HttpResponse missing = AnswerHttpRequest(Get("/nothing"), routes);
  EXPECT_EQ(missing.status, 404);
  EXPECT_NE(missing.body.find("/healthz"), std::string::npos) << "404 lists what is served";
  EXPECT_EQ(AnswerHttpRequest(Get("/healthz", "POST"), routes).status, 405);
  const HttpResponse boom = AnswerHttpRequest(Get("/boom"), routes);
  EXPECT_EQ(boom.status, 500);
  EXPECT_NE(boom.body.find("collector failed"), std::string::npos);
}

TEST(FormatHttpResponse, StatusLineHeadersAndBody) {
  const std::string bytes = FormatHttpResponse({503, "text/plain", "why\n"}, false);
  EXPECT_EQ(bytes,
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
            "Content-Length: 4\r\nConnection: close\r\n\r\nwhy\n");
  const std::string head_only = FormatHttpResponse({200, "text/plain", "ok\n"}, true);
  EXPECT_NE(head_only.find("Content-Length: 3\r\n"), std::string::npos);
  EXPECT_TRUE(head_only.ends_with("\r\n\r\n")) << "HEAD: no body";
  EXPECT_NE(FormatHttpResponse({405, "text/plain", ""}, false).find("Allow: GET, HEAD\r\n"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// The server

// Sends `request` and reads until the server closes.
std::string Exchange(std::uint16_t port, const std::string& request) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(socket, asio::buffer(request));
  std::string response;
  boost::system::error_code error;
  asio::read(socket, asio::dynamic_buffer(response), error);
  return response;
}

TEST(HttpEndpoint, ServesRoutesOnItsOwnThread) {
  HttpEndpoint endpoint("127.0.0.1:0", Routes());
  endpoint.Open();
  endpoint.Start();
  const std::string ok = Exchange(endpoint.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(ok.starts_with("HTTP/1.1 200 OK\r\n")) << ok;
  EXPECT_TRUE(ok.ends_with("\r\n\r\nok\n")) << ok;
  const std::string not_ready = Exchange(endpoint.port(), "GET /readyz HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(not_ready.starts_with("HTTP/1.1 503 ")) << not_ready;
  const std::string bad = Exchange(endpoint.port(), "NONSENSE\r\n\r\n");
  EXPECT_TRUE(bad.starts_with("HTTP/1.1 400 ")) << bad;
  const std::string huge =
      Exchange(endpoint.port(), "GET / HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_TRUE(huge.starts_with("HTTP/1.1 431 ")) << huge.substr(0, 100);
}

TEST(HttpEndpoint, SlowClientsAreCutOffAtTheDeadlineAndExtraConnectionsWait) {
  HttpEndpointLimits limits;
  limits.max_connections = 2;
  limits.deadline = std::chrono::milliseconds(300);
  HttpEndpoint endpoint("127.0.0.1:0", Routes(), limits);
  endpoint.Open();
  endpoint.Start();
  asio::io_context io;
  const tcp::endpoint address(asio::ip::make_address("127.0.0.1"), endpoint.port());
  std::vector<std::unique_ptr<tcp::socket>> idle;
  for (int i = 0; i < 2; ++i) {
    idle.push_back(std::make_unique<tcp::socket>(io));
    idle.back()->connect(address);
    asio::write(*idle.back(), asio::buffer(std::string("GET /healthz HTTP/1.1\r\n")));
  }
  // The third waits in the backlog until the deadline frees a slot, then is answered.
  const auto started = std::chrono::steady_clock::now();
  const std::string third = Exchange(endpoint.port(), "GET /healthz HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(third.starts_with("HTTP/1.1 200 OK")) << third;
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(200));
  for (auto& socket : idle) {
    std::string rest;
    boost::system::error_code error;
    asio::read(*socket, asio::dynamic_buffer(rest), error);  // the server has closed it
    EXPECT_TRUE(rest.empty()) << "no answer to an unfinished request";
  }
}

TEST(HttpEndpoint, OpenFailsWithTheAddressWhenThePortIsTaken) {
  HttpEndpoint first("127.0.0.1:0", Routes());
  first.Open();
  HttpEndpoint second("127.0.0.1:" + std::to_string(first.port()), Routes());
  try {
    second.Open();
    FAIL() << "bound a port in use";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("127.0.0.1:" + std::to_string(first.port())),
              std::string::npos)
        << error.what();
  }
}

TEST(PrometheusText, SerializesEveryCollectableInTurn) {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("test_things_total")
      .Help("Things")
      .Register(*registry)
      .Add({})
      .Increment(3);
  auto other = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("test_other_total")
      .Help("Other")
      .Register(*other)
      .Add({{"a", "b"}});
  const std::string text = PrometheusText({registry, other});
  EXPECT_NE(text.find("# TYPE test_things_total counter\ntest_things_total 3"), std::string::npos)
      << text;
  EXPECT_NE(text.find("test_other_total{a=\"b\"} 0"), std::string::npos) << text;
  EXPECT_LT(text.find("test_things_total"), text.find("test_other_total"));
}

}  // namespace
}  // namespace conduit::metrics
