#include "router/admin/admin_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "router/app/admin_client.h"

namespace conduit::admin {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

sockaddr_un AddressOf(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  return address;
}

// A plain client socket, for what SendAdminRequest never sends.
class RawClient {
 public:
  explicit RawClient(const std::filesystem::path& path)
      : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    const sockaddr_un address = AddressOf(path);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~RawClient() { Close(); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }
  // Everything until the server closes (or the 5 s receive timeout).
  std::string ReadAll() {
    std::string data;
    char chunk[1024];
    for (;;) {
      const ssize_t got = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (got <= 0) return data;
      data.append(chunk, static_cast<std::size_t>(got));
    }
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  bool connected_ = false;
};

class AdminServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("conduit-admin-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    socket_ = directory_ / "run" / "admin.sock";  // "run" does not exist: Open creates it
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    StopServer();
    work_.reset();
    io_.stop();
    thread_.join();
    std::filesystem::remove_all(directory_);
  }

  AdminReply Handle(const std::vector<std::string>& words) {
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(words);
    }
    if (!words.empty() && words[0] == "fail") return {false, "no such destination\n"};
    if (!words.empty() && words[0] == "throw") throw std::runtime_error("queue store broken");
    std::string text = "did:";
    for (const std::string& word : words) text += " " + word;
    return {true, text + "\n"};
  }

  void StartServer(AdminServerLimits limits = {}) {
    server_ = std::make_unique<AdminServer>(
        io_, socket_, [this](const std::vector<std::string>& words) { return Handle(words); },
        limits);
    server_->Open();
    accept_loop_ = asio::co_spawn(server_->executor(), server_->AcceptLoop(), asio::use_future);
  }

  void StopServer() {
    if (!server_) return;
    server_->Close();
    ASSERT_EQ(accept_loop_.wait_for(5s), std::future_status::ready) << "AcceptLoop did not end";
    server_.reset();
  }

  Result<AdminReply, std::string> Send(const std::vector<std::string>& words) {
    return app::SendAdminRequest(socket_, words, 5s);
  }

  std::vector<std::vector<std::string>> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread thread_;
  std::filesystem::path directory_;
  std::filesystem::path socket_;
  std::unique_ptr<AdminServer> server_;
  std::future<void> accept_loop_;
  std::mutex mutex_;
  std::vector<std::vector<std::string>> requests_;
};

TEST_F(AdminServerTest, RoundTripsTheWordsAndTheReply) {
  StartServer();
  const std::vector<std::string> words{"queue", "retry", "pacs", "--dead-letter"};
  auto reply = Send(words);
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_TRUE(reply->ok);
  EXPECT_EQ(reply->text, "did: queue retry pacs --dead-letter\n");
  ASSERT_EQ(requests().size(), 1u);
  EXPECT_EQ(requests()[0], words);

  struct stat info {};
  ASSERT_EQ(::lstat(socket_.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0660u);
}

TEST_F(AdminServerTest, ServesOneRequestAfterAnother) {
  StartServer();
  for (int i = 0; i < 20; ++i) {
    auto reply = Send({"queue", "show", "dest" + std::to_string(i)});
    ASSERT_TRUE(reply.ok()) << reply.error();
    EXPECT_EQ(reply->text, "did: queue show dest" + std::to_string(i) + "\n");
  }
}

TEST_F(AdminServerTest, ErrorReplyPropagates) {
  StartServer();
  auto reply = Send({"fail", "pacs"});
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_FALSE(reply->ok);
  EXPECT_EQ(reply->text, "no such destination\n");
}

TEST_F(AdminServerTest, HandlerExceptionBecomesAnErrorReply) {
  StartServer();
  auto reply = Send({"throw"});
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_FALSE(reply->ok);
  EXPECT_EQ(reply->text, "internal error: queue store broken\n");
  // The server lives on.
  auto next = Send({"queue", "list"});
  ASSERT_TRUE(next.ok()) << next.error();
  EXPECT_TRUE(next->ok);
}

TEST_F(AdminServerTest, OversizedRequestIsRefused) {
  StartServer();
  RawClient client(socket_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send(std::string(kMaxRequestBytes + 1000, 'a')));
  EXPECT_EQ(client.ReadAll(), "error\nrequest too large (at most 4096 bytes)\n");
  EXPECT_TRUE(requests().empty());
}

TEST_F(AdminServerTest, RequestOfExactlyTheLimitIsServed) {
  StartServer();
  // One word of 4094 bytes, its "\n" and the empty line: 4096 bytes.
  auto reply = Send({std::string(kMaxRequestBytes - 2, 'w')});
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_TRUE(reply->ok);
  auto over = Send({std::string(kMaxRequestBytes - 1, 'w')});
  ASSERT_TRUE(over.ok()) << over.error();
  EXPECT_FALSE(over->ok);
  EXPECT_EQ(over->text, "request too large (at most 4096 bytes)\n");
}

TEST_F(AdminServerTest, TooManyWordsAreRefused) {
  StartServer();
  auto fine = Send(std::vector<std::string>(kMaxRequestWords, "w"));
  ASSERT_TRUE(fine.ok()) << fine.error();
  EXPECT_TRUE(fine->ok);
  auto refused = Send(std::vector<std::string>(kMaxRequestWords + 1, "w"));
  ASSERT_TRUE(refused.ok()) << refused.error();
  EXPECT_FALSE(refused->ok);
  EXPECT_EQ(refused->text, "too many words (at most 32)\n");
  EXPECT_EQ(requests().size(), 1u);
}

TEST_F(AdminServerTest, EmptyAndUnterminatedRequestsAreRefused) {
  StartServer();
  auto empty = Send({});
  ASSERT_TRUE(empty.ok()) << empty.error();
  EXPECT_FALSE(empty->ok);
  EXPECT_EQ(empty->text, "empty request\n");

  RawClient client(socket_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("queue\nlist\n"));
  client.ShutdownWrite();
  EXPECT_EQ(client.ReadAll(), "error\nthe request ended before its empty line\n");
  EXPECT_TRUE(requests().empty());
}

TEST_F(AdminServerTest, SlowClientIsClosedAtTheDeadline) {
  StartServer({.max_connections = 8, .deadline = 200ms});
  RawClient client(socket_);
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Send("queue\n"));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(client.ReadAll(), "");  // closed without a reply
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_TRUE(requests().empty());
}

TEST_F(AdminServerTest, StaleSocketIsReplaced) {
  // A socket file nobody listens on, as a crashed daemon leaves it.
  std::filesystem::create_directories(socket_.parent_path());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  const sockaddr_un address = AddressOf(socket_);
  ASSERT_EQ(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  ::close(fd);
  ASSERT_TRUE(std::filesystem::is_socket(socket_));

  StartServer();
  auto reply = Send({"queue", "list"});
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_TRUE(reply->ok);
}

TEST_F(AdminServerTest, SecondServerOnTheSamePathThrows) {
  StartServer();
  AdminServer second(io_, socket_, [](const std::vector<std::string>&) { return AdminReply{}; });
  try {
    second.Open();
    FAIL() << "a second server opened " << socket_;
  } catch (const std::runtime_error& error) {
    EXPECT_EQ(std::string(error.what()), "another conduit is running on " + socket_.string());
  }
  // The first one still answers on its socket.
  auto reply = Send({"queue", "list"});
  ASSERT_TRUE(reply.ok()) << reply.error();
  EXPECT_TRUE(reply->ok);
}

TEST_F(AdminServerTest, PathThatIsNotASocketIsLeftAlone) {
  std::filesystem::create_directories(socket_.parent_path());
  std::ofstream(socket_) << "precious";
  AdminServer server(io_, socket_, [](const std::vector<std::string>&) { return AdminReply{}; });
  EXPECT_THROW(server.Open(), std::runtime_error);
  std::ifstream in(socket_);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

TEST_F(AdminServerTest, TooLongPathThrows) {
  AdminServer server(io_, directory_ / std::string(120, 'x'),
                     [](const std::vector<std::string>&) { return AdminReply{}; });
  EXPECT_THROW(server.Open(), std::runtime_error);
}

TEST_F(AdminServerTest, DestructorRemovesTheSocketFile) {
  StartServer();
  ASSERT_TRUE(std::filesystem::exists(socket_));
  StopServer();
  EXPECT_FALSE(std::filesystem::exists(socket_));
}

TEST_F(AdminServerTest, ClientToMissingSocketGivesAClearError) {
  const std::filesystem::path missing = directory_ / "nope.sock";
  auto reply = app::SendAdminRequest(missing, {"queue", "list"}, 2s);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error(), "cannot reach the conduit daemon at " + missing.string() +
                               ": No such file or directory (is it running? is admin.socket in "
                               "the config the same?)");
}

TEST_F(AdminServerTest, NinthConcurrentConnectionIsToldTooMany) {
  StartServer();
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 8; ++i) {
    idle.push_back(std::make_unique<RawClient>(socket_));
    ASSERT_TRUE(idle.back()->connected());
  }
  // Accepted in order: the eight are counted before the ninth is accepted.
  auto refused = Send({"queue", "list"});
  ASSERT_TRUE(refused.ok()) << refused.error();
  EXPECT_FALSE(refused->ok);
  EXPECT_EQ(refused->text, "too many admin connections\n");
  EXPECT_TRUE(requests().empty());

  // One idle connection goes: a slot frees up once the server has seen it close.
  idle.front()->Close();
  std::optional<AdminReply> served;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!served && std::chrono::steady_clock::now() < deadline) {
    auto reply = Send({"queue", "list"});
    ASSERT_TRUE(reply.ok()) << reply.error();
    if (reply->ok)
      served = *reply;
    else
      std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(served.has_value());
  EXPECT_EQ(served->text, "did: queue list\n");
}

}  // namespace
}  // namespace conduit::admin
