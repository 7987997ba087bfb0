// ScuAssociation against a real peer: DCMTK's storescp, spawned per test on a free port.
#include "router/net/scu_association.h"

#include <arpa/inet.h>
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "router/dimse/command_set.h"
#include "router/dimse/status.h"
#include "router/net/pdu_codec.h"

extern char** environ;

namespace conduit::net {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

constexpr const char* kExplicitVrLittleEndian = "1.2.840.10008.1.2.1";
constexpr const char* kImplicitVrLittleEndian = "1.2.840.10008.1.2";
constexpr const char* kVerification = "1.2.840.10008.1.1";
constexpr const char* kSecondaryCapture = "1.2.840.10008.5.1.4.1.1.7";

// Runs one coroutine to completion on `io` and returns its value.
template <typename T>
asio::awaitable<void> Capture(asio::awaitable<T> task, std::optional<T>& out) {
  out.emplace(co_await std::move(task));
}
template <typename T>
T RunOn(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> result;
  asio::co_spawn(io, Capture(std::move(task), result), [](const std::exception_ptr& error) {
    if (error) {
      std::rethrow_exception(error);
    }
  });
  io.restart();
  io.run();
  return std::move(*result);
}
void RunOn(asio::io_context& io, asio::awaitable<void> task) {
  asio::co_spawn(io, std::move(task), [](const std::exception_ptr& error) {
    if (error) {
      std::rethrow_exception(error);
    }
  });
  io.restart();
  io.run();
}

// A loopback socket bound to a port the kernel chose; listening if asked.
int BoundSocket(std::uint16_t& port, bool listen) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      (listen && ::listen(fd, 4) != 0) ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return -1;
  }
  port = ntohs(address.sin_port);
  return fd;
}

std::uint16_t FreePort() {
  std::uint16_t port = 0;
  const int fd = BoundSocket(port, false);
  if (fd >= 0) {
    ::close(fd);
  }
  return port;
}

// Whether something listens on `port`, from /proc (a probing connection would count as an
// association attempt in storescp's log).
bool IsListening(std::uint16_t port) {
  char wanted[8];
  std::snprintf(wanted, sizeof(wanted), ":%04X", port);
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // column titles
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      if (state == "0A" && local.ends_with(wanted)) {
        return true;
      }
    }
  }
  return false;
}

std::vector<std::uint8_t> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// DCMTK's storescp, run in a fresh directory until the test ends.
class StoreScp {
 public:
  explicit StoreScp(const std::vector<std::string>& options) {
    directory_ = fs::temp_directory_path() /
                 ("conduit-scu-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(directory_);
    fs::create_directories(directory_ / "in");
    port_ = FreePort();
    std::vector<std::string> arguments = {"storescp", "-od", (directory_ / "in").string(), "-aet",
                                          "DEST"};
    arguments.insert(arguments.end(), options.begin(), options.end());
    arguments.push_back(std::to_string(port_));
    std::vector<char*> argv;
    argv.reserve(arguments.size() + 1);
    for (std::string& argument : arguments) {
      argv.push_back(argument.data());
    }
    argv.push_back(nullptr);
    // DCMTK leaves Nagle on unless told: every answer would wait ~40 ms.
    std::vector<std::string> environment = {"TCP_NODELAY=1"};
    for (char** entry = environ; *entry != nullptr; ++entry) {
      environment.emplace_back(*entry);
    }
    std::vector<char*> envp;
    envp.reserve(environment.size() + 1);
    for (std::string& entry : environment) {
      envp.push_back(entry.data());
    }
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = (directory_ / "storescp.log").string();
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int spawned =
        posix_spawnp(&pid_, "storescp", &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
      pid_ = -1;
      return;
    }
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!IsListening(port_) && std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    listening_ = IsListening(port_);
  }
  ~StoreScp() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    fs::remove_all(directory_);
  }
  StoreScp(const StoreScp&) = delete;
  StoreScp& operator=(const StoreScp&) = delete;

  bool ready() const { return pid_ > 0 && listening_; }
  std::uint16_t port() const { return port_; }
  fs::path received() const { return directory_ / "in"; }
  fs::path scratch() const { return directory_; }
  std::string log() const {
    const auto bytes = ReadFile(directory_ / "storescp.log");
    return {bytes.begin(), bytes.end()};
  }

 private:
  fs::path directory_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool listening_ = false;
};

ScuPeer PeerAt(std::uint16_t port) {
  ScuPeer peer;
  peer.host = "127.0.0.1";
  peer.port = port;
  peer.called_ae = "DEST";
  peer.calling_ae = "CONDUIT";
  peer.connect_timeout = std::chrono::seconds(2);
  peer.response_timeout = std::chrono::seconds(5);
  return peer;
}

std::vector<ProposedContext> StorageContexts() {
  return {{kVerification, {kImplicitVrLittleEndian}},
          {kSecondaryCapture, {kExplicitVrLittleEndian, kImplicitVrLittleEndian}}};
}

// A Secondary Capture instance with `rows` x `columns` 8-bit pixels, written as a bare dataset
// in Explicit VR Little Endian (no Part 10 header): the bytes a C-STORE carries.
struct TestInstance {
  std::string sop_instance_uid;
  std::vector<std::uint8_t> pixels;
  std::vector<std::uint8_t> dataset;
};
TestInstance MakeInstance(const fs::path& scratch, std::uint16_t rows, std::uint16_t columns) {
  TestInstance instance;
  char uid[100];
  instance.sop_instance_uid = dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT);
  instance.pixels.resize(std::size_t{rows} * columns);
  for (std::size_t i = 0; i < instance.pixels.size(); ++i) {
    instance.pixels[i] = static_cast<std::uint8_t>((i * 7 + i / 251) & 0xFF);
  }
  DcmDataset dataset;
  dataset.putAndInsertString(DCM_SOPClassUID, kSecondaryCapture);
  dataset.putAndInsertString(DCM_SOPInstanceUID, instance.sop_instance_uid.c_str());
  dataset.putAndInsertString(DCM_StudyInstanceUID,
                             dcmGenerateUniqueIdentifier(uid, SITE_STUDY_UID_ROOT));
  dataset.putAndInsertString(DCM_SeriesInstanceUID,
                             dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT));
  dataset.putAndInsertString(DCM_PatientName, "Conduit^Test");
  dataset.putAndInsertString(DCM_PatientID, "SCU-1");
  dataset.putAndInsertString(DCM_Modality, "OT");
  dataset.putAndInsertString(DCM_ConversionType, "WSD");
  dataset.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  dataset.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  dataset.putAndInsertUint16(DCM_Rows, rows);
  dataset.putAndInsertUint16(DCM_Columns, columns);
  dataset.putAndInsertUint16(DCM_BitsAllocated, 8);
  dataset.putAndInsertUint16(DCM_BitsStored, 8);
  dataset.putAndInsertUint16(DCM_HighBit, 7);
  dataset.putAndInsertUint16(DCM_PixelRepresentation, 0);
  dataset.putAndInsertUint8Array(DCM_PixelData, instance.pixels.data(),
                                 static_cast<unsigned long>(instance.pixels.size()));
  const fs::path path = scratch / "dataset.bin";
  const OFCondition saved = dataset.saveFile(path.c_str(), EXS_LittleEndianExplicit);
  EXPECT_TRUE(saved.good()) << saved.text();
  instance.dataset = ReadFile(path);
  fs::remove(path);
  return instance;
}

// The one file storescp wrote, loaded: its SOP Instance UID and pixel bytes.
void ExpectReceived(const StoreScp& scp, const TestInstance& sent) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(scp.received())) {
    files.push_back(entry.path());
  }
  ASSERT_EQ(files.size(), 1u) << scp.log();
  DcmFileFormat file;
  ASSERT_TRUE(file.loadFile(files[0].c_str()).good());
  DcmDataset& dataset = *file.getDataset();
  OFString uid;
  ASSERT_TRUE(dataset.findAndGetOFString(DCM_SOPInstanceUID, uid).good());
  EXPECT_EQ(uid.c_str(), sent.sop_instance_uid);
  const Uint8* pixels = nullptr;
  unsigned long count = 0;
  ASSERT_TRUE(dataset.findAndGetUint8Array(DCM_PixelData, pixels, &count).good());
  ASSERT_EQ(count, sent.pixels.size());
  EXPECT_TRUE(std::equal(sent.pixels.begin(), sent.pixels.end(), pixels));
}

TEST(ScuAssociationTest, EchoesAndReleases) {
  StoreScp scp({});
  ASSERT_TRUE(scp.ready()) << scp.log();
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  auto opened = RunOn(io, scu.Open(PeerAt(scp.port()), StorageContexts()));
  ASSERT_TRUE(opened) << opened.error().detail;
  EXPECT_TRUE(scu.is_open());
  EXPECT_EQ(scu.peer_max_pdu_length(), 16384u);  // storescp's default
  auto echoed = RunOn(io, scu.Echo());
  ASSERT_TRUE(echoed) << echoed.error().detail;
  EXPECT_EQ(echoed->status, dimse::status::kSuccess);
  auto again = RunOn(io, scu.Echo());  // a second message on the same association
  ASSERT_TRUE(again) << again.error().detail;
  EXPECT_EQ(again->status, dimse::status::kSuccess);
  RunOn(io, scu.Release());
  EXPECT_FALSE(scu.is_open());
  auto closed = RunOn(io, scu.Echo());
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.error().kind, ScuFailure::kTransient);
}

TEST(ScuAssociationTest, StoresADatasetFromAFileRange) {
  StoreScp scp({});
  ASSERT_TRUE(scp.ready()) << scp.log();
  const TestInstance instance = MakeInstance(scp.scratch(), 16, 16);
  // The dataset sits between unrelated bytes, as it does after a spool file's own header.
  const fs::path spool_file = scp.scratch() / "spool.bin";
  {
    std::ofstream out(spool_file, std::ios::binary);
    out << std::string(100, 'x');
    out.write(reinterpret_cast<const char*>(instance.dataset.data()),
              static_cast<std::streamsize>(instance.dataset.size()));
    out << std::string(33, 'y');
  }
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  auto opened = RunOn(io, scu.Open(PeerAt(scp.port()), StorageContexts()));
  ASSERT_TRUE(opened) << opened.error().detail;
  const std::vector<std::string> preferred = {kExplicitVrLittleEndian};
  const auto context = scu.FindContext(kSecondaryCapture, preferred);
  ASSERT_TRUE(context);
  EXPECT_EQ(context->id, 3);
  EXPECT_EQ(context->transfer_syntax, kExplicitVrLittleEndian);

  auto stored = RunOn(io, scu.Store(context->id, kSecondaryCapture, instance.sop_instance_uid,
                                    FileRange{spool_file, 100, instance.dataset.size()}));
  ASSERT_TRUE(stored) << stored.error().detail << "\n" << scp.log();
  EXPECT_EQ(stored->status, dimse::status::kSuccess) << stored->error_comment;
  EXPECT_EQ(scu.bytes_sent(), instance.dataset.size());
  RunOn(io, scu.Release());
  ExpectReceived(scp, instance);
}

TEST(ScuAssociationTest, SplitsADatasetLargerThanThePeersMaxPdu) {
  StoreScp scp({"--max-pdu", "4096"});
  ASSERT_TRUE(scp.ready()) << scp.log();
  const TestInstance instance = MakeInstance(scp.scratch(), 1024, 1024);  // 1 MiB of pixels
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  auto opened = RunOn(io, scu.Open(PeerAt(scp.port()), StorageContexts()));
  ASSERT_TRUE(opened) << opened.error().detail;
  EXPECT_EQ(scu.peer_max_pdu_length(), 4096u);
  const std::vector<std::string> preferred = {kExplicitVrLittleEndian};
  const auto context = scu.FindContext(kSecondaryCapture, preferred);
  ASSERT_TRUE(context);
  auto stored = RunOn(io, scu.Store(context->id, kSecondaryCapture, instance.sop_instance_uid,
                                    std::span<const std::uint8_t>(instance.dataset)));
  ASSERT_TRUE(stored) << stored.error().detail << "\n" << scp.log();
  EXPECT_EQ(stored->status, dimse::status::kSuccess) << stored->error_comment;
  RunOn(io, scu.Release());
  ExpectReceived(scp, instance);
}

TEST(ScuAssociationTest, ReportsAShortSpoolFileAndStaysUsable) {
  StoreScp scp({});
  ASSERT_TRUE(scp.ready()) << scp.log();
  const TestInstance instance = MakeInstance(scp.scratch(), 16, 16);
  const fs::path spool_file = scp.scratch() / "short.bin";
  std::ofstream(spool_file, std::ios::binary)
      .write(reinterpret_cast<const char*>(instance.dataset.data()), 40);
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  ASSERT_TRUE(RunOn(io, scu.Open(PeerAt(scp.port()), StorageContexts())));
  const std::vector<std::string> preferred = {kExplicitVrLittleEndian};
  const auto context = scu.FindContext(kSecondaryCapture, preferred);
  ASSERT_TRUE(context);
  auto short_file = RunOn(io, scu.Store(context->id, kSecondaryCapture, instance.sop_instance_uid,
                                        FileRange{spool_file, 0, instance.dataset.size()}));
  ASSERT_FALSE(short_file);
  EXPECT_EQ(short_file.error().kind, ScuFailure::kPermanent);
  EXPECT_NE(short_file.error().detail.find("spool file"), std::string::npos);
  auto missing = RunOn(io, scu.Store(context->id, kSecondaryCapture, instance.sop_instance_uid,
                                     FileRange{scp.scratch() / "absent", 0, 10}));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ScuFailure::kPermanent);
  ASSERT_TRUE(scu.is_open());
  auto echoed = RunOn(io, scu.Echo());
  ASSERT_TRUE(echoed) << echoed.error().detail;
  EXPECT_EQ(echoed->status, dimse::status::kSuccess);
  RunOn(io, scu.Release());
}

TEST(ScuAssociationTest, RefusedAssociationIsPermanent) {
  StoreScp scp({"--refuse"});
  ASSERT_TRUE(scp.ready()) << scp.log();
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  auto opened = RunOn(io, scu.Open(PeerAt(scp.port()), StorageContexts()));
  ASSERT_FALSE(opened);
  // storescp --refuse answers rejected-permanent, service user, no reason given.
  EXPECT_EQ(opened.error().kind, ScuFailure::kPermanent) << opened.error().detail;
  EXPECT_EQ(opened.error().detail, "association rejected (permanent): no reason given");
  EXPECT_FALSE(scu.is_open());
}

TEST(ScuAssociationTest, ConnectionRefusedIsTransient) {
  const std::uint16_t port = FreePort();
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  auto opened = RunOn(io, scu.Open(PeerAt(port), StorageContexts()));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind, ScuFailure::kTransient);
  EXPECT_EQ(opened.error().detail,
            "connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(ScuAssociationTest, UnknownSopClassIsNotAccepted) {
  StoreScp scp({});
  ASSERT_TRUE(scp.ready()) << scp.log();
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  std::vector<ProposedContext> contexts = StorageContexts();
  contexts.push_back({"1.2.3.4.5.6.7", {kExplicitVrLittleEndian}});
  // A transfer syntax storescp does not offer by default: the SOP class is fine, the syntax not.
  contexts.push_back({"1.2.840.10008.5.1.4.1.1.2", {"1.2.840.10008.1.2.4.80"}});
  auto opened = RunOn(io, scu.Open(PeerAt(scp.port()), contexts));
  ASSERT_TRUE(opened) << opened.error().detail;
  const std::vector<std::string> preferred = {kExplicitVrLittleEndian, kImplicitVrLittleEndian};
  EXPECT_FALSE(scu.FindContext("1.2.3.4.5.6.7", preferred));
  EXPECT_FALSE(scu.AcceptsAbstractSyntax("1.2.3.4.5.6.7"));
  EXPECT_TRUE(scu.AcceptsAbstractSyntax(kSecondaryCapture));
  EXPECT_FALSE(scu.AcceptsAbstractSyntax("1.2.840.10008.5.1.4.1.1.2"));
  // Preference order: Implicit first finds the context accepted with... whatever storescp chose.
  const std::vector<std::string> implicit_first = {kImplicitVrLittleEndian,
                                                   kExplicitVrLittleEndian};
  const auto context = scu.FindContext(kSecondaryCapture, implicit_first);
  ASSERT_TRUE(context);
  EXPECT_EQ(context->id, 3);
  auto wrong = RunOn(io, scu.Store(5, "1.2.3.4.5.6.7", "1.2.3", std::span<const std::uint8_t>()));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind, ScuFailure::kPermanent);
  RunOn(io, scu.Release());
}

TEST(ScuAssociationTest, SilentPeerTimesOut) {
  std::uint16_t port = 0;
  const int listener = BoundSocket(port, true);  // the kernel accepts; nobody ever answers
  ASSERT_GE(listener, 0);
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  ScuPeer peer = PeerAt(port);
  peer.response_timeout = std::chrono::seconds(1);
  const auto started = std::chrono::steady_clock::now();
  auto opened = RunOn(io, scu.Open(peer, StorageContexts()));
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ::close(listener);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind, ScuFailure::kTransient);
  EXPECT_EQ(opened.error().detail, "no A-ASSOCIATE-AC within 1 s");
  EXPECT_GE(elapsed, std::chrono::milliseconds(900));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  EXPECT_FALSE(scu.is_open());
}

// A hand-scripted acceptor on blocking sockets, for answers no real peer gives on demand.
struct RawPdu {
  std::uint8_t type = 0;
  std::vector<std::uint8_t> body;
};
bool ReadAll(int fd, std::uint8_t* out, std::size_t size) {
  while (size > 0) {
    const ssize_t got = ::read(fd, out, size);
    if (got <= 0) {
      return false;
    }
    out += got;
    size -= static_cast<std::size_t>(got);
  }
  return true;
}
std::optional<RawPdu> ReadRawPdu(int fd) {
  std::array<std::uint8_t, kPduHeaderSize> header{};
  if (!ReadAll(fd, header.data(), header.size())) {
    return std::nullopt;
  }
  const PduHeader decoded = DecodePduHeader(header);
  RawPdu pdu{decoded.type, std::vector<std::uint8_t>(decoded.length)};
  if (!ReadAll(fd, pdu.body.data(), pdu.body.size())) {
    return std::nullopt;
  }
  return pdu;
}
void WriteRaw(int fd, const std::vector<std::uint8_t>& bytes) {
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

class ScriptedPeer {
 public:
  // `after_request` runs once the association is accepted and the first DIMSE command read.
  explicit ScriptedPeer(std::function<void(int fd, const dimse::CommandSet& request)> after_request)
      : listener_(BoundSocket(port_, true)) {
    thread_ = std::thread([this, after_request = std::move(after_request)] {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) {
        return;
      }
      Serve(fd, after_request);
      // Whatever the SCU sends last (an A-ABORT, say), then the end of the connection.
      while (auto pdu = ReadRawPdu(fd)) {
        last_type_ = pdu->type;
      }
      ::close(fd);
    });
  }
  ~ScriptedPeer() {
    ::shutdown(listener_, SHUT_RDWR);  // wakes accept() if nobody came
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(listener_);
  }
  std::uint16_t port() const { return port_; }
  // Type of the last PDU the SCU sent after the script ran (0: none); valid once joined.
  std::uint8_t Finish() {
    if (thread_.joinable()) {
      thread_.join();
    }
    return last_type_;
  }

 private:
  void Serve(int fd, const std::function<void(int, const dimse::CommandSet&)>& after_request) {
    auto rq_pdu = ReadRawPdu(fd);
    if (!rq_pdu || rq_pdu->type != 0x01) {
      return;
    }
    auto rq = ParseAssociateRq(rq_pdu->body);
    if (!rq) {
      return;
    }
    AssociateAc ac;
    ac.called_ae = rq->called_ae;
    ac.calling_ae = rq->calling_ae;
    ac.max_pdu_length = 16384;
    ac.implementation_class_uid = "1.2.3";
    for (const auto& context : rq->presentation_contexts) {
      ac.presentation_contexts.push_back(
          {context.id, ContextResult::kAcceptance, context.transfer_syntaxes.front()});
    }
    WriteRaw(fd, EncodeAssociateAc(ac));
    auto data = ReadRawPdu(fd);
    if (!data || data->type != 0x04) {
      return;
    }
    std::vector<Pdv> pdvs;
    if (ParsePDataTf(data->body, pdvs) || pdvs.size() != 1) {
      return;
    }
    auto request = dimse::ParseCommandSet(pdvs[0].data);
    if (!request) {
      return;
    }
    after_request(fd, *request);
  }

  std::uint16_t port_ = 0;
  int listener_ = -1;
  std::thread thread_;
  std::atomic<std::uint8_t> last_type_{0};
};

Result<DimseResponse, ScuError> EchoAgainst(ScriptedPeer& peer) {
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  ScuPeer settings = PeerAt(peer.port());
  settings.response_timeout = std::chrono::seconds(2);
  auto opened = RunOn(io, scu.Open(settings, StorageContexts()));
  if (!opened) {
    return opened.error();
  }
  auto echoed = RunOn(io, scu.Echo());
  EXPECT_EQ(scu.is_open(), echoed.ok());
  return echoed;
}

TEST(ScuAssociationTest, PeerAbortIsTransient) {
  ScriptedPeer peer([](int fd, const dimse::CommandSet&) {
    WriteRaw(fd, EncodeAbort({AbortSource::kServiceProvider, AbortReason::kUnexpectedPdu}));
  });
  auto echoed = EchoAgainst(peer);
  ASSERT_FALSE(echoed);
  EXPECT_EQ(echoed.error().kind, ScuFailure::kTransient);
  EXPECT_EQ(echoed.error().detail,
            "association aborted by peer (service provider, reason 2) while awaiting C-ECHO-RSP");
  EXPECT_EQ(peer.Finish(), 0);  // nothing more is said to a peer that aborted
}

TEST(ScuAssociationTest, ResponseToAnotherMessageAborts) {
  ScriptedPeer peer([](int fd, const dimse::CommandSet& request) {
    dimse::CommandSet response = dimse::MakeResponse(request, dimse::status::kSuccess);
    response.message_id_being_responded_to = request.message_id.value_or(0) + 1;
    std::vector<std::uint8_t> pdus;
    AppendPDataTf(pdus, 1, true, true, dimse::EncodeCommandSet(response), 0);
    WriteRaw(fd, pdus);
  });
  auto echoed = EchoAgainst(peer);
  ASSERT_FALSE(echoed);
  EXPECT_EQ(echoed.error().kind, ScuFailure::kTransient);
  EXPECT_EQ(echoed.error().detail, "C-ECHO-RSP answers message 2, not 1");
  EXPECT_EQ(peer.Finish(), 0x07);  // A-ABORT
}

TEST(ScuAssociationTest, PeerReleaseRequestMidOperationAborts) {
  ScriptedPeer peer([](int fd, const dimse::CommandSet&) { WriteRaw(fd, EncodeReleaseRq()); });
  auto echoed = EchoAgainst(peer);
  ASSERT_FALSE(echoed);
  EXPECT_EQ(echoed.error().kind, ScuFailure::kTransient);
  EXPECT_EQ(peer.Finish(), 0x07);
}

TEST(ScuAssociationTest, OversizedPduAborts) {
  ScriptedPeer peer([](int fd, const dimse::CommandSet&) {
    // A P-DATA-TF header announcing more than the 131072 bytes we advertised.
    WriteRaw(fd, {0x04, 0, 0x00, 0x10, 0x00, 0x00});
  });
  auto echoed = EchoAgainst(peer);
  ASSERT_FALSE(echoed);
  EXPECT_EQ(echoed.error().kind, ScuFailure::kTransient);
  EXPECT_EQ(echoed.error().detail,
            "PDU type 4 of 1048576 bytes exceeds the limit of 131072 while awaiting C-ECHO-RSP");
  EXPECT_EQ(peer.Finish(), 0x07);
}

TEST(ScuAssociationTest, PeerClosingIsTransient) {
  ScriptedPeer peer([](int fd, const dimse::CommandSet&) { ::shutdown(fd, SHUT_WR); });
  auto echoed = EchoAgainst(peer);
  ASSERT_FALSE(echoed);
  EXPECT_EQ(echoed.error().kind, ScuFailure::kTransient);
  EXPECT_EQ(echoed.error().detail, "connection closed by peer while awaiting C-ECHO-RSP");
}

TEST(ScuAssociationTest, RefusesTooManyContexts) {
  asio::io_context io;
  ScuAssociation scu(io.get_executor());
  std::vector<ProposedContext> contexts(129, {kSecondaryCapture, {kExplicitVrLittleEndian}});
  auto opened = RunOn(io, scu.Open(PeerAt(104), contexts));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind, ScuFailure::kPermanent);
}

}  // namespace
}  // namespace conduit::net
