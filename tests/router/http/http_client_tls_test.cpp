// HttpClient's certificate verification against a real TLS server: a test CA made with the
// openssl CLI for this run only, and Python's http.server behind ssl.SSLContext serving two
// certificates that CA signed, one for localhost and 127.0.0.1 and one for other names. What is
// proven: the CA given as tls.ca_file is trusted, and only it; the host name is checked; verify =
// false turns both checks off; every refusal is a kTls failure whose detail says why.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "router/http/http_client.h"
#include "spawned_server.h"

extern char** environ;

namespace conduit::http {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kBody = "hello over tls";

// Extensions for the CAs and the two server certificates. The config is ours, so that the
// system's openssl.cnf (default extensions, policies) plays no part.
constexpr const char* kOpensslConfig = R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[localhost]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[other]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:other.example, DNS:other.localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
)";

// Two HTTPS servers in one process, on ports the kernel picks (printed on one line): the first
// with the localhost certificate, the second with the other.example one. The handshake runs in
// each connection's thread (not in accept), so a client that refuses a certificate cannot stall
// the server. Answers 200 with a small body and says which server answered.
constexpr const char* kServerScript = R"(
import http.server, os, ssl, sys, threading

directory = sys.argv[1]

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = b"hello over tls"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-As", self.server.served_as)
        self.end_headers()
        self.wfile.write(body)

class TlsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name):
        super().__init__(("127.0.0.1", 0), Handler)
        self.served_as = name
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(os.path.join(directory, name + ".pem"),
                                     os.path.join(directory, name + ".key"))

    def get_request(self):
        connection, address = super().get_request()
        return self.context.wrap_socket(connection, server_side=True,
                                        do_handshake_on_connect=False), address

    def handle_error(self, request, address):
        pass  # refused handshakes are what the tests are about

servers = [TlsServer("localhost"), TlsServer("other")]
for server in servers:
    threading.Thread(target=server.serve_forever, daemon=True).start()
print(" ".join(str(server.server_address[1]) for server in servers), flush=True)
# Gone with the test binary, even if it crashes: its end of the stdin pipe closes.
sys.stdin.read()
os._exit(0)
)";

std::string ReadText(const fs::path& file) {
  std::ifstream in(file);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs `args` (args[0] looked up in PATH) with its output appended to `log`; an empty string when
// it exits 0, else what went wrong.
std::string RunCommand(const std::vector<std::string>& args, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& arg : copy) {
    argv.push_back(arg.data());
  }
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  std::string command;
  for (const std::string& arg : args) {
    command += (command.empty() ? "" : " ") + arg;
  }
  if (spawned != 0) {
    return "cannot run " + command + ": " + std::strerror(spawned);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return command + " failed: " + ReadText(log);
  }
  return {};
}

class HttpClientTlsTest : public testing::Test {
 protected:
  // A failure here is reported by each test's SetUp: a failed SetUpTestSuite makes GoogleTest
  // skip the tests, and CTest counts skipped tests as passed.
  static void SetUpTestSuite() {
    directory_ = fs::temp_directory_path() / ("conduit-tls-test-" + std::to_string(::getpid()));
    fs::remove_all(directory_);
    fs::create_directories(directory_);
    startup_error_ = MakeCertificates();
    if (startup_error_.empty()) {
      startup_error_ = StartServers();
    }
  }

  static void TearDownTestSuite() {
    server_.Stop();
    std::error_code ignored;
    fs::remove_all(directory_, ignored);
  }

  void SetUp() override {
    ASSERT_TRUE(startup_error_.empty()) << startup_error_;
    ASSERT_NE(localhost_port_, 0);
    ASSERT_NE(other_port_, 0);
  }

  // ca.pem signs localhost.pem and other.pem; rogue-ca.pem signs nothing the servers present.
  static std::string MakeCertificates() {
    const fs::path config = directory_ / "openssl.cnf";
    std::ofstream(config) << kOpensslConfig;
    const fs::path log = directory_ / "openssl.log";
    const auto path = [](const std::string& name) { return (directory_ / name).string(); };
    const std::vector<std::string> new_key = {"-newkey", "ec", "-pkeyopt",
                                              "ec_paramgen_curve:prime256v1", "-nodes"};
    for (const std::string ca : {"ca", "rogue-ca"}) {
      std::vector<std::string> args = {"openssl",       "req",         "-x509", "-config",
                                       config.string(), "-extensions", "ca"};
      args.insert(args.end(), new_key.begin(), new_key.end());
      args.insert(args.end(), {"-keyout", path(ca + ".key"), "-out", path(ca + ".pem"), "-days",
                               "2", "-subj", "/CN=Conduit test " + ca});
      if (std::string error = RunCommand(args, log); !error.empty()) {
        return error;
      }
    }
    int serial = 2;
    for (const auto& [name, subject] :
         {std::pair<std::string, std::string>{"localhost", "localhost"},
          {"other", "other.example"}}) {
      std::vector<std::string> request = {"openssl", "req", "-new", "-config", config.string()};
      request.insert(request.end(), new_key.begin(), new_key.end());
      request.insert(request.end(), {"-keyout", path(name + ".key"), "-out", path(name + ".csr"),
                                     "-subj", "/CN=" + subject});
      if (std::string error = RunCommand(request, log); !error.empty()) {
        return error;
      }
      const std::vector<std::string> sign = {"openssl",
                                             "x509",
                                             "-req",
                                             "-in",
                                             path(name + ".csr"),
                                             "-CA",
                                             path("ca.pem"),
                                             "-CAkey",
                                             path("ca.key"),
                                             "-set_serial",
                                             std::to_string(serial++),
                                             "-days",
                                             "2",
                                             "-extfile",
                                             config.string(),
                                             "-extensions",
                                             name,
                                             "-out",
                                             path(name + ".pem")};
      if (std::string error = RunCommand(sign, log); !error.empty()) {
        return error;
      }
    }
    return {};
  }

  static std::string StartServers() {
    const fs::path stderr_file = directory_ / "server.log";
    if (std::string error =
            server_.Start(kPython, {"-c", kServerScript, directory_.string()}, stderr_file);
        !error.empty()) {
      return "the HTTPS server did not start: " + error;
    }
    // The first line holds the two ports.
    std::istringstream(server_.first_line()) >> localhost_port_ >> other_port_;
    if (localhost_port_ == 0 || other_port_ == 0) {
      return "the HTTPS server did not start: it printed \"" + server_.first_line() + "\"; " +
             ReadText(stderr_file);
    }
    return {};
  }

  static ClientOptions Options(bool verify, const fs::path& ca_file) {
    ClientOptions options;
    options.connect_timeout = std::chrono::milliseconds(2000);
    options.request_timeout = std::chrono::milliseconds(5000);
    options.tls.verify = verify;
    options.tls.ca_file = ca_file;
    return options;
  }

  static Result<HttpResponse, HttpError> Get(const ClientOptions& options, const std::string& host,
                                             int port) {
    HttpClient client(options);
    HttpRequest request;
    request.url = "https://" + host + ":" + std::to_string(port) + "/";
    return client.Perform(request);
  }

  static fs::path TestCa() { return directory_ / "ca.pem"; }
  static fs::path RogueCa() { return directory_ / "rogue-ca.pem"; }

  static inline fs::path directory_;
  static inline std::string startup_error_;
  static inline SpawnedServer server_;
  static inline int localhost_port_ = 0;
  static inline int other_port_ = 0;
};

// The failure a refused certificate must be: kTls, with a detail that says it was the
// certificate and which server it was.
void ExpectCertificateRefused(const Result<HttpResponse, HttpError>& answer,
                              const std::string& host, int port) {
  ASSERT_FALSE(answer.ok()) << "status " << answer->status;
  EXPECT_EQ(answer.error().kind, HttpFailure::kTls)
      << HttpFailureName(answer.error().kind) << ": " << answer.error().detail;
  EXPECT_NE(answer.error().detail.find("certificate"), std::string::npos) << answer.error().detail;
  EXPECT_NE(answer.error().detail.find("https://" + host + ":" + std::to_string(port)),
            std::string::npos)
      << answer.error().detail;
}

TEST_F(HttpClientTlsTest, TestCaAsCaFileIsTrustedByNameAndByAddress) {
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    const auto answer = Get(Options(true, TestCa()), host, localhost_port_);
    ASSERT_TRUE(answer.ok()) << host << ": " << answer.error().detail;
    EXPECT_EQ(answer->status, 200) << host;
    EXPECT_EQ(answer->body, kBody) << host;
    EXPECT_EQ(answer->Header("x-served-as"), "localhost") << host;
  }
}

// OpenSSL's words for a certificate whose issuer is not trusted.
void ExpectUntrustedIssuer(const Result<HttpResponse, HttpError>& answer) {
  if (!answer.ok()) {
    EXPECT_NE(answer.error().detail.find("issuer"), std::string::npos) << answer.error().detail;
  }
}

TEST_F(HttpClientTlsTest, SystemCasDoNotTrustTheTestCa) {
  const auto answer = Get(Options(true, {}), "localhost", localhost_port_);
  ExpectCertificateRefused(answer, "localhost", localhost_port_);
  ExpectUntrustedIssuer(answer);
}

TEST_F(HttpClientTlsTest, UnrelatedCaAsCaFileIsRefused) {
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    SCOPED_TRACE(host);
    const auto answer = Get(Options(true, RogueCa()), host, localhost_port_);
    ExpectCertificateRefused(answer, host, localhost_port_);
    ExpectUntrustedIssuer(answer);
  }
}

TEST_F(HttpClientTlsTest, CaFileBundleTrustsEachOfItsCas) {
  // A bundle of the unrelated CA and the test CA: trusted, since the test CA is in it.
  const fs::path bundle = directory_ / "bundle.pem";
  std::ofstream(bundle) << ReadText(RogueCa()) << ReadText(TestCa());
  const auto answer = Get(Options(true, bundle), "localhost", localhost_port_);
  ASSERT_TRUE(answer.ok()) << answer.error().detail;
  EXPECT_EQ(answer->status, 200);
}

TEST_F(HttpClientTlsTest, VerifyFalseAcceptsAnyCertificateAndName) {
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    for (const int port : {localhost_port_, other_port_}) {
      const auto answer = Get(Options(false, {}), host, port);
      ASSERT_TRUE(answer.ok()) << host << ":" << port << ": " << answer.error().detail;
      EXPECT_EQ(answer->status, 200);
      EXPECT_EQ(answer->body, kBody);
    }
  }
  // With an unrelated CA as well: verification is off, so it decides nothing.
  const auto answer = Get(Options(false, RogueCa()), "localhost", localhost_port_);
  ASSERT_TRUE(answer.ok()) << answer.error().detail;
  EXPECT_EQ(answer->status, 200);
}

TEST_F(HttpClientTlsTest, CertificateForAnotherNameIsRefusedDespiteTheRightCa) {
  // The other server's certificate is valid, and trusted where its name is asked for
  // (libcurl resolves every *.localhost name to loopback) ...
  const auto by_its_name = Get(Options(true, TestCa()), "other.localhost", other_port_);
  ASSERT_TRUE(by_its_name.ok()) << by_its_name.error().detail;
  EXPECT_EQ(by_its_name->status, 200);
  EXPECT_EQ(by_its_name->Header("x-served-as"), "other");

  // ... but not for localhost nor 127.0.0.1, which it does not name.
  for (const std::string host : {"localhost", "127.0.0.1"}) {
    SCOPED_TRACE(host);
    const auto answer = Get(Options(true, TestCa()), host, other_port_);
    ExpectCertificateRefused(answer, host, other_port_);
    if (!answer.ok()) {
      // libcurl's words for a name mismatch, not for an untrusted issuer.
      EXPECT_EQ(answer.error().detail.find("issuer"), std::string::npos) << answer.error().detail;
      EXPECT_NE(answer.error().detail.find(host), std::string::npos) << answer.error().detail;
    }
  }
}

TEST_F(HttpClientTlsTest, MissingCaFileIsATlsFailureNamingIt) {
  const fs::path missing = directory_ / "no-such-ca.pem";
  const auto answer = Get(Options(true, missing), "localhost", localhost_port_);
  ASSERT_FALSE(answer.ok()) << "status " << answer->status;
  EXPECT_EQ(answer.error().kind, HttpFailure::kTls)
      << HttpFailureName(answer.error().kind) << ": " << answer.error().detail;
  EXPECT_NE(answer.error().detail.find(missing.string()), std::string::npos)
      << answer.error().detail;
}

TEST_F(HttpClientTlsTest, OneClientKeepsVerifyingAcrossRequests) {
  // A kept-alive connection to the trusted server must not let a request to the other one
  // through.
  HttpClient client(Options(true, TestCa()));
  HttpRequest good;
  good.url = "https://localhost:" + std::to_string(localhost_port_) + "/";
  HttpRequest wrong_name;
  wrong_name.url = "https://localhost:" + std::to_string(other_port_) + "/";

  const auto first = client.Perform(good);
  const auto second = client.Perform(wrong_name);
  const auto third = client.Perform(good);

  ASSERT_TRUE(first.ok()) << first.error().detail;
  ExpectCertificateRefused(second, "localhost", other_port_);
  ASSERT_TRUE(third.ok()) << third.error().detail;
  EXPECT_EQ(third->body, kBody);
}

}  // namespace
}  // namespace conduit::http
