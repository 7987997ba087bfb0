// What S3Client puts on the wire, seen by a loopback server that records every request and answers
// the way S3 does. s3rver (s3_client_test) checks neither Content-MD5 nor signatures, so this file
// proves the integrity headers: Content-MD5 and x-amz-content-sha256 of exactly the bytes that
// arrive, on a single PUT and on each part of a multipart upload, and a SigV4 Authorization that
// an independent implementation (here, on OpenSSL) verifies against the request as received.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <regex>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "router/http/s3_client.h"
#include "spawned_server.h"

namespace conduit::http {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPython = "/usr/bin/python3";
constexpr std::uint64_t kMiB = 1 << 20;
constexpr const char* kAccessKey = "AKIDCHECKSUMTEST";
constexpr const char* kSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr const char* kRegion = "eu-central-1";
constexpr const char* kBucket = "checksums";

// Records each request in argv[1] as NNNNNN.body (the bytes received, by Content-Length) and
// NNNNNN.head (method, request target as sent, then one "Name: value" line per header, in the
// order received), both written before the answer goes out. Answers like S3: PUT with an ETag,
// CreateMultipartUpload with upload id u1, UploadPart N with ETag "pN", CompleteMultipartUpload
// with its result, AbortMultipartUpload (DELETE) with 204.
constexpr const char* kServerScript = R"(
import http.server, itertools, os, sys, threading, urllib.parse

directory = sys.argv[1]
numbers = itertools.count(1)
lock = threading.Lock()

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            number = next(numbers)
        base = os.path.join(directory, "%06d" % number)
        with open(base + ".body", "wb") as out:
            out.write(body)
        with open(base + ".tmp", "w", encoding="utf-8", errors="surrogateescape") as out:
            out.write(self.command + "\n" + self.path + "\n")
            for name, value in self.headers.items():
                out.write(name + ": " + value + "\n")
        os.rename(base + ".tmp", base + ".head")

        query = urllib.parse.parse_qs(self.path.partition("?")[2], keep_blank_values=True)
        status, headers, answer = 200, [], b""
        if self.command == "POST" and "uploads" in query:
            answer = (b'<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult>'
                      b'<Bucket>checksums</Bucket><Key>k</Key><UploadId>u1</UploadId>'
                      b'</InitiateMultipartUploadResult>')
        elif self.command == "POST" and "uploadId" in query:
            answer = (b'<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult>'
                      b'<Location>http://x/k</Location><Bucket>checksums</Bucket><Key>k</Key>'
                      b'<ETag>"final-3"</ETag></CompleteMultipartUploadResult>')
        elif self.command == "PUT" and "partNumber" in query:
            headers.append(("ETag", '"p%s"' % query["partNumber"][0]))
        elif self.command == "PUT":
            headers.append(("ETag", '"whole"'))
        elif self.command == "DELETE":
            status = 204
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = handle_any

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
# Gone with the test binary, even if it crashes: its end of the stdin pipe closes.
threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
server.serve_forever()
)";

// ---- Digests and SigV4, independently of router/http/sigv4 (OpenSSL's EVP and HMAC) ----

std::string Digest(const EVP_MD* type, std::string_view bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), out, &size, type, nullptr), 1);
  return std::string(reinterpret_cast<const char*>(out), size);
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (const char c : bytes) {
    hex += kDigits[static_cast<unsigned char>(c) >> 4];
    hex += kDigits[static_cast<unsigned char>(c) & 0xF];
  }
  return hex;
}

std::string Base64(std::string_view bytes) {
  std::string encoded(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int size = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                   reinterpret_cast<const unsigned char*>(bytes.data()),
                                   static_cast<int>(bytes.size()));
  encoded.resize(static_cast<std::size_t>(size));
  return encoded;
}

std::string Md5Base64Of(std::string_view bytes) { return Base64(Digest(EVP_md5(), bytes)); }
std::string Sha256HexOf(std::string_view bytes) { return Hex(Digest(EVP_sha256(), bytes)); }

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size);
  return std::string(reinterpret_cast<const char*>(out), size);
}

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string PercentDecode(std::string_view text) {
  std::string decoded;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      decoded += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  return decoded;
}

// RFC 3986 unreserved bytes as they are, every other as %XX (upper-case hex).
std::string UriEncode(std::string_view text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string encoded;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      encoded += c;
    } else {
      encoded += '%';
      encoded += kDigits[byte >> 4];
      encoded += kDigits[byte & 0xF];
    }
  }
  return encoded;
}

std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end - start));
    if (end == std::string_view::npos) {
      return parts;
    }
    start = end + 1;
  }
}

std::string Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

// One request as the server received it.
struct Recorded {
  std::string method;
  std::string target;  // path and query, as sent
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  std::string Path() const { return target.substr(0, target.find('?')); }
  std::string RawQuery() const {
    const auto mark = target.find('?');
    return mark == std::string::npos ? "" : target.substr(mark + 1);
  }
  // Decoded query parameters.
  std::map<std::string, std::string> Query() const {
    std::map<std::string, std::string> query;
    if (RawQuery().empty()) {
      return query;
    }
    for (const std::string& pair : Split(RawQuery(), '&')) {
      const auto equals = pair.find('=');
      query[PercentDecode(pair.substr(0, equals))] =
          equals == std::string::npos ? "" : PercentDecode(pair.substr(equals + 1));
    }
    return query;
  }
  // Every value of a header, in the order received.
  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> values;
    for (const auto& [header, value] : headers) {
      if (Lower(header) == Lower(name)) {
        values.push_back(value);
      }
    }
    return values;
  }
  std::optional<std::string> Header(const std::string& name) const {
    const auto values = All(name);
    if (values.empty()) {
      return std::nullopt;
    }
    return values.front();
  }
};

struct ParsedAuthorization {
  std::string algorithm;
  std::string credential;  // KEY/DATE/REGION/SERVICE/aws4_request
  std::vector<std::string> signed_headers;
  std::string signature;
};

std::optional<ParsedAuthorization> ParseAuthorization(const std::string& value) {
  static const std::regex kFormat(
      R"(^(AWS4-HMAC-SHA256) Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$)");
  std::smatch match;
  if (!std::regex_match(value, match, kFormat)) {
    return std::nullopt;
  }
  return ParsedAuthorization{match[1], match[2], Split(match[3].str(), ';'), match[4]};
}

// The signature SigV4 gives the request as received: the canonical request rebuilt from what
// arrived (path as sent, query decoded and re-encoded, the signed headers' received values),
// with the payload hash the request declared.
std::string ExpectedSignature(const Recorded& request, const ParsedAuthorization& authorization,
                              const std::string& secret_key) {
  std::vector<std::pair<std::string, std::string>> query;
  if (!request.RawQuery().empty()) {
    for (const std::string& pair : Split(request.RawQuery(), '&')) {
      const auto equals = pair.find('=');
      query.emplace_back(
          UriEncode(PercentDecode(pair.substr(0, equals))),
          equals == std::string::npos ? "" : UriEncode(PercentDecode(pair.substr(equals + 1))));
    }
  }
  std::sort(query.begin(), query.end());
  std::string canonical_query;
  for (const auto& [name, value] : query) {
    canonical_query += (canonical_query.empty() ? "" : "&") + name + "=" + value;
  }
  std::string canonical_headers;
  for (const std::string& name : authorization.signed_headers) {
    std::string joined;
    for (const std::string& value : request.All(name)) {
      joined += (joined.empty() ? "" : ",") + Trim(value);
    }
    canonical_headers += name + ":" + joined + "\n";
  }
  std::string signed_headers;
  for (const std::string& name : authorization.signed_headers) {
    signed_headers += (signed_headers.empty() ? "" : ";") + name;
  }
  const std::string canonical_request =
      request.method + "\n" + request.Path() + "\n" + canonical_query + "\n" + canonical_headers +
      "\n" + signed_headers + "\n" + request.Header("x-amz-content-sha256").value_or("");

  const std::vector<std::string> scope = Split(authorization.credential, '/');
  if (scope.size() != 5) {
    return "credential has no 5 parts";
  }
  const std::string string_to_sign =
      "AWS4-HMAC-SHA256\n" + request.Header("x-amz-date").value_or("") + "\n" + scope[1] + "/" +
      scope[2] + "/" + scope[3] + "/" + scope[4] + "\n" + Sha256HexOf(canonical_request);
  std::string key = HmacSha256("AWS4" + secret_key, scope[1]);
  key = HmacSha256(key, scope[2]);
  key = HmacSha256(key, scope[3]);
  key = HmacSha256(key, scope[4]);
  return Hex(HmacSha256(key, string_to_sign));
}

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

std::span<const std::uint8_t> Borrow(const std::string& bytes) {
  return {reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()};
}

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class S3ChecksumHeadersTest : public testing::Test {
 protected:
  void SetUp() override {
    directory_ =
        fs::temp_directory_path() / ("conduit-s3-checksums-" + std::to_string(::getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_ / "requests");
    const std::string error = StartServer();
    ASSERT_TRUE(error.empty()) << error;
  }

  void TearDown() override {
    server_.Stop();
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }

  std::string StartServer() {
    const fs::path stderr_file = directory_ / "server.log";
    if (std::string error = server_.Start(
            kPython, {"-c", kServerScript, (directory_ / "requests").string()}, stderr_file);
        !error.empty()) {
      return "the capture server did not start: " + error;
    }
    std::istringstream(server_.first_line()) >> port_;
    if (port_ == 0) {
      return "the capture server did not start: it printed \"" + server_.first_line() + "\"; " +
             ReadFile(stderr_file);
    }
    return {};
  }

  // Every request received so far, in order.
  std::vector<Recorded> Requests() const {
    std::vector<fs::path> heads;
    for (const auto& entry : fs::directory_iterator(directory_ / "requests")) {
      if (entry.path().extension() == ".head") {
        heads.push_back(entry.path());
      }
    }
    std::sort(heads.begin(), heads.end());
    std::vector<Recorded> requests;
    for (const fs::path& head : heads) {
      Recorded request;
      std::istringstream lines(ReadFile(head));
      std::getline(lines, request.method);
      std::getline(lines, request.target);
      for (std::string line; std::getline(lines, line);) {
        const auto colon = line.find(": ");
        request.headers.emplace_back(line.substr(0, colon),
                                     colon == std::string::npos ? "" : line.substr(colon + 2));
      }
      fs::path body = head;
      request.body = ReadFile(body.replace_extension(".body"));
      requests.push_back(std::move(request));
    }
    return requests;
  }

  S3Location Location() const {
    return {"http://127.0.0.1:" + std::to_string(port_), kRegion, kBucket, true};
  }
  static AwsCredentials Credentials() { return {kAccessKey, kSecretKey, std::nullopt}; }

  fs::path WriteFile(const std::string& name, const std::string& bytes) const {
    const fs::path file = directory_ / name;
    std::ofstream(file, std::ios::binary) << bytes;
    return file;
  }

  // The checks every signed request passes: the Authorization's form and scope, the headers it
  // must sign, and its signature recomputed from the request as received.
  void ExpectSignedByUs(const Recorded& request, const std::vector<std::string>& must_sign,
                        const std::string& secret_key = kSecretKey) const {
    SCOPED_TRACE(request.method + " " + request.target);
    const auto date = request.Header("x-amz-date");
    ASSERT_TRUE(date);
    ASSERT_TRUE(std::regex_match(*date, std::regex("[0-9]{8}T[0-9]{6}Z"))) << *date;
    EXPECT_EQ(request.Header("host"), "127.0.0.1:" + std::to_string(port_));
    ASSERT_EQ(request.All("authorization").size(), 1u);
    const std::string authorization = *request.Header("authorization");
    const std::string prefix = std::string("AWS4-HMAC-SHA256 Credential=") + kAccessKey + "/" +
                               date->substr(0, 8) + "/" + kRegion + "/s3/aws4_request";
    EXPECT_EQ(authorization.rfind(prefix, 0), 0u) << authorization;
    const auto parsed = ParseAuthorization(authorization);
    ASSERT_TRUE(parsed) << authorization;
    for (const std::string& name : must_sign) {
      EXPECT_NE(std::find(parsed->signed_headers.begin(), parsed->signed_headers.end(), name),
                parsed->signed_headers.end())
          << name << " is not signed: " << authorization;
    }
    EXPECT_TRUE(std::is_sorted(parsed->signed_headers.begin(), parsed->signed_headers.end()))
        << authorization;
    for (const std::string& name : parsed->signed_headers) {
      EXPECT_EQ(name, Lower(name)) << authorization;
      EXPECT_FALSE(request.All(name).empty()) << name << " is signed but was not received";
    }
    EXPECT_EQ(parsed->signature, ExpectedSignature(request, *parsed, secret_key))
        << "the signature does not match the request as received";
  }

  // The framing of a body: its exact length declared, never chunked, no 100-continue.
  static void ExpectPlainBody(const Recorded& request) {
    SCOPED_TRACE(request.method + " " + request.target);
    EXPECT_EQ(request.Header("content-length"), std::to_string(request.body.size()));
    EXPECT_FALSE(request.Header("transfer-encoding"));
    EXPECT_FALSE(request.Header("expect"));
  }

  // The integrity headers of a body: both digests of exactly the bytes received.
  static void ExpectDigestsOf(const Recorded& request, const std::string& expected_body) {
    SCOPED_TRACE(request.method + " " + request.target);
    EXPECT_EQ(request.body.size(), expected_body.size());
    EXPECT_TRUE(request.body == expected_body) << "the body arrived altered";
    EXPECT_EQ(request.Header("content-md5"), Md5Base64Of(expected_body));
    EXPECT_EQ(request.Header("x-amz-content-sha256"), Sha256HexOf(expected_body));
  }

  fs::path directory_;
  SpawnedServer server_;
  int port_ = 0;
  HttpClient http_{ClientOptions{}};
};

TEST_F(S3ChecksumHeadersTest, SinglePutCarriesDigestsOfItsBodyAndASignatureOverThem) {
  const std::string head = Pattern(1000, 1);
  const std::string file_bytes = Pattern(300'000, 2);
  const fs::path file = WriteFile("small.bin", file_bytes);
  const std::string tail = Pattern(333, 3);
  const Body body = {head, FileSlice{file, 17, 250'000}, Borrow(tail)};
  const std::string expected = head + file_bytes.substr(17, 250'000) + tail;
  const std::string key = "studies/1.2.840.1/series one/SOP+\xC3\xBC.dcm";
  S3Client client(http_, Location(), Credentials(), {});

  const auto stored = client.Put(key, body);

  ASSERT_TRUE(stored.ok()) << stored.error().detail;
  EXPECT_EQ(stored->http_status, 200);
  EXPECT_EQ(stored->etag, "whole");
  EXPECT_EQ(stored->bytes, expected.size());
  EXPECT_FALSE(stored->multipart);
  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  const Recorded& put = requests[0];
  EXPECT_EQ(put.method, "PUT");
  EXPECT_EQ(put.target, "/checksums/studies/1.2.840.1/series%20one/SOP%2B%C3%BC.dcm");
  EXPECT_EQ(put.Header("content-type"), "application/dicom");
  ExpectPlainBody(put);
  ExpectDigestsOf(put, expected);
  ExpectSignedByUs(put,
                   {"content-md5", "content-type", "host", "x-amz-content-sha256", "x-amz-date"});
}

TEST_F(S3ChecksumHeadersTest, EmptyObjectCarriesTheDigestsOfNothing) {
  S3Client client(http_, Location(), Credentials(), {});

  const auto stored = client.Put("empty.dcm", Body{});

  ASSERT_TRUE(stored.ok()) << stored.error().detail;
  EXPECT_EQ(stored->bytes, 0u);
  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "PUT");
  ExpectPlainBody(requests[0]);
  ExpectDigestsOf(requests[0], "");
  // The well-known digests of no bytes, lest both sides agree on a wrong "empty".
  EXPECT_EQ(requests[0].Header("content-md5"), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(requests[0].Header("x-amz-content-sha256"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  ExpectSignedByUs(requests[0], {"content-md5", "host", "x-amz-content-sha256", "x-amz-date"});
}

TEST_F(S3ChecksumHeadersTest, MultipartPartsCarryTheirOwnDigestsAndCompleteListsEveryPart) {
  // 11 MiB of memory and file pieces in 5 MiB parts: the part boundaries fall inside the file
  // slices, so each part is a mix of pieces cut at odd offsets.
  const std::string memory = Pattern(kMiB + 3, 4);
  const std::string file_bytes = Pattern(7 * kMiB, 5);
  const fs::path file = WriteFile("large.bin", file_bytes);
  const std::string borrowed = Pattern(2 * kMiB - 3, 6);
  const Body body = {memory, FileSlice{file, 7, 6 * kMiB}, Borrow(borrowed),
                     FileSlice{file, 5 * kMiB, 2 * kMiB}};
  const std::string expected =
      memory + file_bytes.substr(7, 6 * kMiB) + borrowed + file_bytes.substr(5 * kMiB, 2 * kMiB);
  ASSERT_EQ(expected.size(), 11 * kMiB);
  S3Client client(http_, Location(), Credentials(), {5 * kMiB, 5 * kMiB});

  const auto stored = client.Put("multipart/large.dcm", body);

  ASSERT_TRUE(stored.ok()) << stored.error().detail;
  EXPECT_TRUE(stored->multipart);
  EXPECT_EQ(stored->http_status, 200);
  EXPECT_EQ(stored->etag, "final-3");
  EXPECT_EQ(stored->bytes, 11 * kMiB);
  const auto requests = Requests();
  // Create, three parts, Complete; no Abort.
  ASSERT_EQ(requests.size(), 5u);
  for (const Recorded& request : requests) {
    EXPECT_EQ(request.Path(), "/checksums/multipart/large.dcm");
  }

  const Recorded& create = requests[0];
  EXPECT_EQ(create.method, "POST");
  EXPECT_EQ(create.Query(), (std::map<std::string, std::string>{{"uploads", ""}}));
  EXPECT_EQ(create.Header("content-type"), "application/dicom");
  EXPECT_TRUE(create.body.empty());
  EXPECT_EQ(create.Header("x-amz-content-sha256"), Sha256HexOf(""));
  ExpectSignedByUs(create, {"content-type", "host", "x-amz-content-sha256", "x-amz-date"});

  std::string reassembled;
  const std::uint64_t part_sizes[] = {5 * kMiB, 5 * kMiB, 1 * kMiB};
  for (int number = 1; number <= 3; ++number) {
    const Recorded& part = requests[static_cast<std::size_t>(number)];
    SCOPED_TRACE("part " + std::to_string(number));
    EXPECT_EQ(part.method, "PUT");
    EXPECT_EQ(part.Query(), (std::map<std::string, std::string>{
                                {"partNumber", std::to_string(number)}, {"uploadId", "u1"}}));
    const std::uint64_t offset = 5 * kMiB * static_cast<std::uint64_t>(number - 1);
    const std::uint64_t size = part_sizes[number - 1];
    EXPECT_EQ(part.body.size(), size);
    ExpectPlainBody(part);
    ExpectDigestsOf(part, expected.substr(offset, size));
    ExpectSignedByUs(part, {"content-md5", "host", "x-amz-content-sha256", "x-amz-date"});
    reassembled += part.body;
  }
  EXPECT_EQ(reassembled.size(), expected.size());
  EXPECT_TRUE(reassembled == expected) << "the parts do not make up the object";

  const Recorded& complete = requests[4];
  EXPECT_EQ(complete.method, "POST");
  EXPECT_EQ(complete.Query(), (std::map<std::string, std::string>{{"uploadId", "u1"}}));
  ExpectPlainBody(complete);
  EXPECT_EQ(complete.Header("x-amz-content-sha256"), Sha256HexOf(complete.body));
  ExpectSignedByUs(complete, {"host", "x-amz-content-sha256", "x-amz-date"});
  // Every part, by number and with the ETag its upload was answered with, in order.
  static const std::regex kPart(
      R"(<Part>\s*<PartNumber>([0-9]+)</PartNumber>\s*<ETag>([^<]*)</ETag>\s*</Part>)");
  std::vector<std::pair<std::string, std::string>> listed;
  for (auto match = std::sregex_iterator(complete.body.begin(), complete.body.end(), kPart);
       match != std::sregex_iterator(); ++match) {
    listed.emplace_back((*match)[1],
                        std::regex_replace((*match)[2].str(), std::regex("&quot;"), "\""));
  }
  EXPECT_EQ(listed, (std::vector<std::pair<std::string, std::string>>{
                        {"1", "\"p1\""}, {"2", "\"p2\""}, {"3", "\"p3\""}}))
      << complete.body;
  EXPECT_TRUE(std::regex_search(complete.body,
                                std::regex(R"(^(<\?xml[^>]*>\s*)?<CompleteMultipartUpload[ >])")))
      << complete.body;
  EXPECT_NE(complete.body.find("</CompleteMultipartUpload>"), std::string::npos) << complete.body;
}

TEST_F(S3ChecksumHeadersTest, SessionTokenIsSentAndSigned) {
  const std::string token = "FQoGZXIvYXdzEJr//////////wEaDM+token/with+slashes==";
  S3Client client(http_, Location(), {kAccessKey, kSecretKey, token}, {});

  const auto stored = client.Put("token.dcm", Body{std::string("with a session token")});

  ASSERT_TRUE(stored.ok()) << stored.error().detail;
  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].Header("x-amz-security-token"), token);
  ExpectDigestsOf(requests[0], "with a session token");
  ExpectSignedByUs(requests[0], {"content-md5", "host", "x-amz-content-sha256", "x-amz-date",
                                 "x-amz-security-token"});
}

// The signature check above is itself checked: a request changed after signing fails it.
TEST_F(S3ChecksumHeadersTest, RecomputedSignatureNoticesAChangedRequest) {
  S3Client client(http_, Location(), Credentials(), {});
  ASSERT_TRUE(client.Put("tamper.dcm", Body{std::string("original")}).ok());
  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto parsed = ParseAuthorization(requests[0].Header("authorization").value_or(""));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->signature, ExpectedSignature(requests[0], *parsed, kSecretKey));

  Recorded other_md5 = requests[0];
  for (auto& [name, value] : other_md5.headers) {
    if (Lower(name) == "content-md5") {
      value = Md5Base64Of("changed");
    }
  }
  EXPECT_NE(parsed->signature, ExpectedSignature(other_md5, *parsed, kSecretKey));
  Recorded other_path = requests[0];
  other_path.target = "/checksums/tamper2.dcm";
  EXPECT_NE(parsed->signature, ExpectedSignature(other_path, *parsed, kSecretKey));
  EXPECT_NE(parsed->signature, ExpectedSignature(requests[0], *parsed, "another secret"));
}

}  // namespace
}  // namespace conduit::http
