#include "router/http/http_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "spawned_server.h"

namespace conduit::http {
namespace {

namespace fs = std::filesystem;

// A real HTTP/1.1 server (Python's http.server, keep-alive on). Every answer says which TCP
// connection carried it (X-Connection) and what it received: its body echoed back, the method
// and the framing headers. /big/<n> answers n bytes; /hang never answers.
constexpr const char* kServerScript = R"(
import http.server, itertools, os, sys, threading, time

connection_numbers = itertools.count(1)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection_number = next(connection_numbers)

    def log_message(self, *args):
        pass

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/hang":
            time.sleep(60)
            return
        if self.path.startswith("/big/"):
            body = b"x" * int(self.path[5:])
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Connection", str(self.connection_number))
        self.send_header("X-Method", self.command)
        for name in ("Content-Length", "Transfer-Encoding", "Expect", "Content-Type"):
            self.send_header("X-Saw-" + name, self.headers.get(name, "none"))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
# Gone with the test binary, even if it crashes: its end of the stdin pipe closes.
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
server.serve_forever()
)";

class PythonHttpServer {
 public:
  PythonHttpServer() {
    if (server_.Start("/usr/bin/python3", {"-c", kServerScript}).empty()) {
      // The first line is the port the kernel picked.
      std::istringstream(server_.first_line()) >> port_;
    }
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  bool ready() const { return port_ != 0; }

 private:
  SpawnedServer server_;
  int port_ = 0;
};

class HttpClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new PythonHttpServer(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(server_->ready()) << "python3 http.server did not start"; }

  static ClientOptions FastOptions() {
    ClientOptions options;
    options.connect_timeout = std::chrono::milliseconds(2000);
    options.request_timeout = std::chrono::milliseconds(5000);
    return options;
  }

  static HttpRequest Request(std::string method, const std::string& path, Body body = {}) {
    HttpRequest request;
    request.method = std::move(method);
    request.url = server_->Url(path);
    request.body = std::move(body);
    return request;
  }

  static PythonHttpServer* server_;
};

PythonHttpServer* HttpClientTest::server_ = nullptr;

// A scratch file of pseudo-random bytes, removed with the test.
class ScratchFile {
 public:
  explicit ScratchFile(std::size_t size) {
    path_ = fs::temp_directory_path() /
            ("conduit-http-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::mt19937 generator(7);
    bytes_.resize(size);
    for (char& byte : bytes_) {
      byte = static_cast<char>(generator());
    }
    std::ofstream(path_, std::ios::binary).write(bytes_.data(), static_cast<long>(bytes_.size()));
  }
  ~ScratchFile() { fs::remove(path_); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const fs::path& path() const { return path_; }
  const std::string& bytes() const { return bytes_; }

 private:
  fs::path path_;
  std::string bytes_;
};

TEST_F(HttpClientTest, PutSendsEveryKindOfPieceByteForByteWithContentLength) {
  const ScratchFile file(400000);
  const std::vector<std::uint8_t> borrowed = {0, 1, 2, 0xFF, '\r', '\n'};
  // Larger than libcurl's upload buffer, so the file slice is read in several chunks.
  const FileSlice slice{file.path(), 1000, 300000};
  HttpClient client(FastOptions());
  auto response =
      client.Perform(Request("PUT", "/object", {std::string("head:"), slice, std::span(borrowed)}));

  ASSERT_TRUE(response) << response.error().detail;
  const std::string expected =
      "head:" + file.bytes().substr(1000, 300000) + std::string(borrowed.begin(), borrowed.end());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body.size(), expected.size());
  EXPECT_TRUE(response->body == expected);
  EXPECT_EQ(response->Header("x-method"), "PUT");
  EXPECT_EQ(response->Header("x-saw-content-length"), std::to_string(expected.size()));
  EXPECT_EQ(response->Header("x-saw-transfer-encoding"), "none");
  EXPECT_EQ(response->Header("x-saw-expect"), "none");
  EXPECT_EQ(client.last_bytes_sent(), expected.size());
}

TEST_F(HttpClientTest, PostHeadAndDeleteUseTheirVerbs) {
  HttpClient client(FastOptions());
  auto post = client.Perform(Request("POST", "/upload", {std::string("<xml/>")}));
  ASSERT_TRUE(post) << post.error().detail;
  EXPECT_EQ(post->Header("x-method"), "POST");
  EXPECT_EQ(post->body, "<xml/>");
  EXPECT_EQ(post->Header("x-saw-content-length"), "6");
  // libcurl's default form Content-Type is not sent in the caller's name.
  EXPECT_EQ(post->Header("x-saw-content-type"), "none");

  auto head = client.Perform(Request("HEAD", "/object"));
  ASSERT_TRUE(head) << head.error().detail;
  EXPECT_EQ(head->Header("x-method"), "HEAD");
  EXPECT_TRUE(head->body.empty());

  auto remove = client.Perform(Request("DELETE", "/object"));
  ASSERT_TRUE(remove) << remove.error().detail;
  EXPECT_EQ(remove->Header("x-method"), "DELETE");
  EXPECT_EQ(client.last_bytes_sent(), 0U);
}

TEST_F(HttpClientTest, RequestsShareOneKeptAliveConnection) {
  HttpClient client(FastOptions());
  auto first = client.Perform(Request("PUT", "/a", {std::string("one")}));
  auto second = client.Perform(Request("GET", "/b"));
  ASSERT_TRUE(first) << first.error().detail;
  ASSERT_TRUE(second) << second.error().detail;
  ASSERT_TRUE(first->Header("x-connection"));
  EXPECT_EQ(first->Header("x-connection"), second->Header("x-connection"));
}

TEST_F(HttpClientTest, ResponseBodyIsCappedAndTheConnectionStaysUsable) {
  ClientOptions options = FastOptions();
  options.max_response_bytes = 1000;
  HttpClient client(options);
  auto big = client.Perform(Request("GET", "/big/50000"));
  ASSERT_TRUE(big) << big.error().detail;
  EXPECT_EQ(big->status, 200);
  EXPECT_EQ(big->body, std::string(1000, 'x'));
  auto next = client.Perform(Request("GET", "/big/10"));
  ASSERT_TRUE(next) << next.error().detail;
  EXPECT_EQ(next->body, std::string(10, 'x'));
  EXPECT_EQ(big->Header("x-connection"), next->Header("x-connection"));
}

TEST_F(HttpClientTest, RefusedConnectionIsAConnectFailure) {
  // A bound socket that never listens: connecting to its port is refused, and no other process
  // can take the port meanwhile.
  const int socket = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(socket, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::getsockname(socket, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/x";

  HttpClient client(FastOptions());
  HttpRequest request;
  request.url = url;
  auto response = client.Perform(request);
  ::close(socket);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpFailure::kConnect);
  EXPECT_NE(response.error().detail.find("127.0.0.1"), std::string::npos)
      << response.error().detail;
}

TEST_F(HttpClientTest, ServerThatNeverAnswersTimesOut) {
  ClientOptions options = FastOptions();
  options.request_timeout = std::chrono::milliseconds(500);
  HttpClient client(options);
  auto response = client.Perform(Request("GET", "/hang"));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpFailure::kTimeout) << response.error().detail;
}

TEST_F(HttpClientTest, RaisedCancelFlagCutsTheRequestOff) {
  std::atomic<bool> cancel{false};
  ClientOptions options = FastOptions();
  options.cancel = &cancel;
  HttpClient client(options);
  std::thread raiser([&cancel] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    cancel = true;
  });
  auto response = client.Perform(Request("GET", "/hang"));
  raiser.join();
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpFailure::kCancelled) << response.error().detail;
}

TEST_F(HttpClientTest, UnreadableBodyFileIsABodyFailure) {
  HttpClient client(FastOptions());
  const fs::path missing = fs::temp_directory_path() / "conduit-http-test-no-such-file";
  auto response = client.Perform(Request("PUT", "/object", {FileSlice{missing, 0, 10}}));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpFailure::kBody);
  EXPECT_NE(response.error().detail.find(missing.string()), std::string::npos)
      << response.error().detail;

  const ScratchFile short_file(100);
  response = client.Perform(Request("PUT", "/object", {FileSlice{short_file.path(), 50, 51}}));
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpFailure::kBody) << response.error().detail;
}

// Found while uploading, not before: the file is cut short once the upload is under way.
TEST_F(HttpClientTest, FileTruncatedDuringTheUploadIsABodyFailure) {
  const fs::path path = fs::temp_directory_path() /
                        ("conduit-http-test-" + std::to_string(::getpid()) + "-truncated");
  // Sparse, so cheap; far more than the socket buffers can take before the server reads.
  constexpr std::uint64_t kFileBytes = 256ull << 20;
  std::ofstream(path, std::ios::binary).close();
  fs::resize_file(path, kFileBytes);

  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  // Takes the first MiB, truncates the file, then drains until the client hangs up.
  std::thread server([listener, &path] {
    const int connection = ::accept(listener, nullptr, nullptr);
    std::vector<char> buffer(1 << 16);
    std::size_t received = 0;
    bool truncated = false;
    while (true) {
      const ssize_t got = ::recv(connection, buffer.data(), buffer.size(), 0);
      if (got <= 0) {
        break;
      }
      received += static_cast<std::size_t>(got);
      if (!truncated && received > (1 << 20)) {
        fs::resize_file(path, 0);
        truncated = true;
      }
    }
    ::close(connection);
  });

  HttpClient client(FastOptions());
  HttpRequest request;
  request.method = "PUT";
  request.url = "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/object";
  request.body = {FileSlice{path, 0, kFileBytes}};
  auto response = client.Perform(request);
  server.join();
  ::close(listener);
  fs::remove(path);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpFailure::kBody) << response.error().detail;
  EXPECT_NE(response.error().detail.find(path.string()), std::string::npos)
      << response.error().detail;
}

TEST_F(HttpClientTest, HeaderValueWithLineBreakIsNotSent) {
  HttpClient client(FastOptions());
  HttpRequest request = Request("GET", "/object");
  request.headers = {{"Authorization", "Bearer token\r\nX-Injected: yes"}};
  auto response = client.Perform(request);
  ASSERT_FALSE(response);
  EXPECT_EQ(response.error().kind, HttpFailure::kOther);
}

TEST(PercentEncodeTest, KeepsUnreservedAndEncodesTheRest) {
  EXPECT_EQ(PercentEncode("1.2.840.10008-x_y~z"), "1.2.840.10008-x_y~z");
  EXPECT_EQ(PercentEncode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
}

TEST(HttpFailureNameTest, NamesEveryKind) {
  EXPECT_STREQ(HttpFailureName(HttpFailure::kConnect), "connect");
  EXPECT_STREQ(HttpFailureName(HttpFailure::kTimeout), "timeout");
  EXPECT_STREQ(HttpFailureName(HttpFailure::kCancelled), "cancelled");
  EXPECT_STREQ(HttpFailureName(HttpFailure::kBody), "body");
}

}  // namespace
}  // namespace conduit::http
