// S3Client against a real S3 server: s3rver (npm, tools/s3rver), one per test suite on a
// loopback port it picks itself. s3rver checks the access key id but neither the signature (its
// V4 verification is unimplemented) nor Content-MD5, so the signer is proven by sigv4_test's
// published vectors and this file proves the protocol: addressing, encoding, multipart, errors.
#include "router/http/s3_client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "spawned_server.h"

namespace conduit::http {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kBucket = "conduit-test";
constexpr std::uint64_t kMiB = 1 << 20;

// Bytes that differ at every offset, so that a misplaced range cannot compare equal.
std::string Pattern(std::size_t size, unsigned seed) {
  std::string bytes(size, '\0');
  std::uint32_t state = seed;
  for (char& byte : bytes) {
    state = state * 1664525u + 1013904223u;
    byte = static_cast<char>(state >> 24);
  }
  return bytes;
}

class S3ClientTest : public testing::Test {
 protected:
  // A failure here is reported by each test's SetUp: a failed SetUpTestSuite makes GoogleTest
  // skip the tests, and CTest counts skipped tests as passed.
  static void SetUpTestSuite() { startup_error_ = Start(); }

  static void TearDownTestSuite() {
    server_.Stop();
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }

  void SetUp() override { ASSERT_NE(port_, 0) << "s3rver did not start: " << startup_error_; }

  // s3rver prints "S3rver listening on ADDRESS:PORT" once it accepts connections; with -p 0 the
  // kernel picks the port. --service-endpoint localhost makes it take BUCKET.s3.localhost as
  // virtual-host-style addressing (libcurl resolves every *.localhost name to loopback).
  static std::string Start() {
    directory_ = fs::temp_directory_path() / ("conduit-s3rver-" + std::to_string(::getpid()));
    fs::create_directories(directory_ / "data");
    const fs::path s3rver = fs::path(CONDUIT_SOURCE_DIR) / "tools/s3rver/node_modules/.bin/s3rver";
    if (!fs::exists(s3rver)) {
      return s3rver.string() + " is missing: run scripts/install-deps";
    }
    const std::string data = (directory_ / "data").string();
    if (std::string error = server_.Start(
            "node",
            {s3rver.string(), "--directory", data, "--address", "127.0.0.1", "--port", "0",
             "--silent", "--service-endpoint", "localhost", "--configure-bucket", kBucket},
            directory_ / "stderr.log", 20s);
        !error.empty()) {
      return error;
    }
    const std::string& line = server_.first_line();
    if (line.find("listening on ") == std::string::npos) {
      return "no \"listening on\" line; it printed: " + line;
    }
    port_ = std::stoi(line.substr(line.rfind(':') + 1));
    return {};
  }

  static S3Location PathStyle(std::string bucket = kBucket) {
    return {"http://127.0.0.1:" + std::to_string(port_), "us-east-1", std::move(bucket), true};
  }
  static S3Location VirtualHostStyle() {
    return {"http://s3.localhost:" + std::to_string(port_), "us-east-1", kBucket, false};
  }
  static AwsCredentials S3rverCredentials() { return {"S3RVER", "S3RVER", std::nullopt}; }

  // What s3rver serves at `url` (unsigned: it lets anonymous reads through).
  static HttpResponse Get(const std::string& url) {
    ClientOptions options;
    options.max_response_bytes = 32 * kMiB;
    HttpClient http(options);
    HttpRequest request;
    request.url = url;
    auto answer = http.Perform(request);
    EXPECT_TRUE(answer.ok()) << (answer.ok() ? "" : answer.error().detail);
    return answer.ok() ? std::move(answer).value() : HttpResponse{};
  }

  // A scratch file of `bytes`, removed with the suite's directory.
  static fs::path WriteFile(const std::string& name, const std::string& bytes) {
    const fs::path file = directory_ / name;
    std::ofstream(file, std::ios::binary) << bytes;
    return file;
  }

  static inline SpawnedServer server_;
  static inline int port_ = 0;
  static inline std::string startup_error_;
  static inline fs::path directory_;
  HttpClient http_{ClientOptions{}};
};

TEST_F(S3ClientTest, PathStylePutReadsBackByteIdentical) {
  const std::string head = Pattern(1000, 1);
  const fs::path file = WriteFile("small.bin", Pattern(50'000, 2));
  const std::string tail = Pattern(333, 3);
  const Body body = {head, FileSlice{file, 17, 40'000},
                     std::span<const std::uint8_t>(
                         reinterpret_cast<const std::uint8_t*>(tail.data()), tail.size())};
  const std::string expected = head + Pattern(50'000, 2).substr(17, 40'000) + tail;
  // Spaces, '+', non-ASCII and '/' in the key: each segment is encoded, the slashes are kept.
  const std::string key = "studies/1.2.840.1/series one/SOP+\xC3\xBC.dcm";
  S3Client client(http_, PathStyle(), S3rverCredentials(), {});

  const auto stored = client.Put(key, body);

  ASSERT_TRUE(stored.ok()) << stored.error().detail;
  EXPECT_EQ(stored->http_status, 200);
  EXPECT_EQ(stored->bytes, expected.size());
  EXPECT_FALSE(stored->multipart);
  EXPECT_EQ(stored->etag.size(), 32u);  // s3rver's ETag is the hex MD5 of the object
  EXPECT_EQ(client.ObjectUrl(key),
            "http://127.0.0.1:" + std::to_string(port_) +
                "/conduit-test/studies/1.2.840.1/series%20one/SOP%2B%C3%BC.dcm");
  const HttpResponse read_back = Get(client.ObjectUrl(key));
  EXPECT_EQ(read_back.status, 200);
  EXPECT_TRUE(read_back.body == expected) << "the object differs from what was put";
  EXPECT_EQ(read_back.Header("content-type"), "application/dicom");
}

TEST_F(S3ClientTest, MultipartPutOfMixedPiecesReadsBackByteIdentical) {
  // 11 MiB in 5 MiB parts: the part boundaries fall inside the file slices.
  const std::string memory = Pattern(kMiB + 3, 4);
  const std::string file_bytes = Pattern(7 * kMiB, 5);
  const fs::path file = WriteFile("large.bin", file_bytes);
  const std::string borrowed = Pattern(2 * kMiB - 3, 6);
  const Body body = {memory, FileSlice{file, 7, 6 * kMiB},
                     std::span<const std::uint8_t>(
                         reinterpret_cast<const std::uint8_t*>(borrowed.data()), borrowed.size()),
                     FileSlice{file, 5 * kMiB, 2 * kMiB}};
  const std::string expected =
      memory + file_bytes.substr(7, 6 * kMiB) + borrowed + file_bytes.substr(5 * kMiB, 2 * kMiB);
  ASSERT_EQ(expected.size(), 11 * kMiB);
  S3Client client(http_, PathStyle(), S3rverCredentials(), {5 * kMiB, 5 * kMiB});

  const auto stored = client.Put("multipart/large.dcm", body);

  ASSERT_TRUE(stored.ok()) << stored.error().detail;
  EXPECT_TRUE(stored->multipart);
  EXPECT_EQ(stored->http_status, 200);
  EXPECT_EQ(stored->bytes, 11 * kMiB);
  EXPECT_FALSE(stored->etag.empty());
  const HttpResponse read_back = Get(client.ObjectUrl("multipart/large.dcm"));
  EXPECT_EQ(read_back.status, 200);
  EXPECT_EQ(read_back.body.size(), expected.size());
  EXPECT_TRUE(read_back.body == expected) << "the object differs from what was put";
  EXPECT_EQ(read_back.Header("content-type"), "application/dicom");  // given at initiation
}

TEST_F(S3ClientTest, VirtualHostStylePutReadsBackByteIdentical) {
  const std::string bytes = Pattern(10'000, 7);
  S3Client client(http_, VirtualHostStyle(), S3rverCredentials(), {});

  const auto stored = client.Put("vhost/object.dcm", Body{bytes});
  const auto bucket = client.CheckBucket();

  ASSERT_TRUE(stored.ok()) << stored.error().detail;
  EXPECT_EQ(client.ObjectUrl("vhost/object.dcm"),
            "http://conduit-test.s3.localhost:" + std::to_string(port_) + "/vhost/object.dcm");
  EXPECT_TRUE(Get(client.ObjectUrl("vhost/object.dcm")).body == bytes);
  // The same object through path-style addressing: the bucket was the Host's first label.
  S3Client path_style(http_, PathStyle(), S3rverCredentials(), {});
  EXPECT_TRUE(Get(path_style.ObjectUrl("vhost/object.dcm")).body == bytes);
  ASSERT_TRUE(bucket.ok()) << bucket.error().detail;
  EXPECT_EQ(*bucket, 200);
}

TEST_F(S3ClientTest, CheckBucketTellsPresentFromMissing) {
  S3Client present(http_, PathStyle(), S3rverCredentials(), {});
  S3Client missing(http_, PathStyle("no-such-bucket"), S3rverCredentials(), {});

  const auto found = present.CheckBucket();
  const auto not_found = missing.CheckBucket();

  ASSERT_TRUE(found.ok()) << found.error().detail;
  EXPECT_EQ(*found, 200);
  ASSERT_FALSE(not_found.ok());
  EXPECT_EQ(not_found.error().http_status, 404);  // a HEAD answer has no body, so no code
  EXPECT_FALSE(not_found.error().transport);
}

TEST_F(S3ClientTest, UnknownAccessKeyIsInvalidAccessKeyId) {
  S3Client client(http_, PathStyle(), {"AKIDUNKNOWN", "S3RVER", std::nullopt}, {});

  const auto stored = client.Put("denied.dcm", Body{std::string("x")});

  ASSERT_FALSE(stored.ok());
  EXPECT_FALSE(stored.error().transport);
  EXPECT_EQ(stored.error().http_status, 403);
  EXPECT_EQ(stored.error().code, "InvalidAccessKeyId");
  EXPECT_EQ(stored.error().detail,
            "PUT denied.dcm: 403 InvalidAccessKeyId: The AWS Access Key Id you provided does not "
            "exist in our records.");
}

TEST_F(S3ClientTest, MissingBucketIsNoSuchBucket) {
  S3Client client(http_, PathStyle("no-such-bucket"), S3rverCredentials(), {});

  const auto stored = client.Put("lost.dcm", Body{std::string("x")});

  ASSERT_FALSE(stored.ok());
  EXPECT_EQ(stored.error().http_status, 404);
  EXPECT_EQ(stored.error().code, "NoSuchBucket");
}

TEST_F(S3ClientTest, UnreadablePartFailsTheUploadAsABodyError) {
  const fs::path file = WriteFile("short.bin", Pattern(6 * kMiB, 8));
  // Claims 11 MiB of a 6 MiB file: the second part cannot be read.
  const Body body = {FileSlice{file, 0, 11 * kMiB}};
  S3Client client(http_, PathStyle(), S3rverCredentials(), {5 * kMiB, 5 * kMiB});

  const auto stored = client.Put("unreadable.dcm", body);

  ASSERT_FALSE(stored.ok());
  ASSERT_TRUE(stored.error().transport);
  EXPECT_EQ(stored.error().transport->kind, HttpFailure::kBody);
  EXPECT_EQ(stored.error().detail.rfind("UploadPart 2/3 unreadable.dcm: ", 0), 0u)
      << stored.error().detail;
  EXPECT_EQ(Get(client.ObjectUrl("unreadable.dcm")).status, 404);
}

// Throttling is what real S3 does and s3rver never does: a one-shot loopback server answers the
// way S3 does (503 SlowDown with Retry-After).
TEST(S3ClientThrottleTest, SlowDownCarriesCodeAndRetryAfter) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 1), 0);
  socklen_t length = sizeof address;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  const int port = ntohs(address.sin_port);

  std::thread server([listener] {
    const int connection = ::accept(listener, nullptr, nullptr);
    // Read the whole request (headers and its one-byte body) before answering.
    std::string request;
    char buffer[4096];
    while (request.find("\r\n\r\n") == std::string::npos ||
           request.size() < request.find("\r\n\r\n") + 5) {
      const ssize_t got = ::read(connection, buffer, sizeof buffer);
      if (got <= 0) {
        break;
      }
      request.append(buffer, static_cast<std::size_t>(got));
    }
    const std::string error =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
        "<Message>Please reduce your request rate.</Message></Error>";
    const std::string answer =
        "HTTP/1.1 503 Slow Down\r\nRetry-After: 7\r\n"
        "Content-Type: application/xml\r\nContent-Length: " +
        std::to_string(error.size()) + "\r\nConnection: close\r\n\r\n" + error;
    static_cast<void>(::write(connection, answer.data(), answer.size()));
    ::close(connection);
  });
  HttpClient http{ClientOptions{}};
  S3Client client(http, {"http://127.0.0.1:" + std::to_string(port), "us-east-1", "b", true},
                  {"AKID", "secret", std::nullopt}, {});

  const auto stored = client.Put("k", Body{std::string("x")});
  server.join();
  ::close(listener);

  ASSERT_FALSE(stored.ok());
  EXPECT_EQ(stored.error().http_status, 503);
  EXPECT_EQ(stored.error().code, "SlowDown");
  EXPECT_EQ(stored.error().retry_after, std::chrono::seconds(7));
  EXPECT_EQ(stored.error().detail, "PUT k: 503 SlowDown: Please reduce your request rate.");
}

}  // namespace
}  // namespace conduit::http
