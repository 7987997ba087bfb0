// A minimal C-STORE receiver for bench/transcode_bench.sh: the destination for transfer syntaxes
// DCMTK 3.6.7 cannot receive (its storescp aborts the association on the HTJ2K ones, whatever
// its association profile accepted). It accepts every presentation context in its first proposed
// transfer syntax, answers C-ECHO at once and C-STORE with status 0x0000 once the data set's last
// fragment has arrived, keeps nothing, and when an association ends appends one line per
// transfer syntax it received instances in to a tally file: "UID COUNT BYTES FIRST LAST", the
// instances, their data sets' bytes, and when the first and the last of them were answered
// (epoch seconds, microseconds): the script sums the counts and takes those times as the
// arrivals, so that it need not poll anything while it measures. It replaces a Python sink that
// cost a noticeable share of the 2 cores it shares with the router being measured: it reads the
// socket in large chunks, never copies a data set beyond the receive buffer, and does nothing per
// instance but count it and send the response.
//
// Usage: conduit_cstore_sink PORT TALLY_FILE   (listens on 127.0.0.1:PORT until killed)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace {

// PS3.8 9.3: PDU types, item types and fixed sizes.
constexpr std::uint8_t kAssociateRq = 0x01;
constexpr std::uint8_t kAssociateAc = 0x02;
constexpr std::uint8_t kPDataTf = 0x04;
constexpr std::uint8_t kReleaseRq = 0x05;
constexpr std::uint8_t kApplicationContextItem = 0x10;
constexpr std::uint8_t kPresentationContextRqItem = 0x20;
constexpr std::uint8_t kPresentationContextAcItem = 0x21;
constexpr std::uint8_t kTransferSyntaxItem = 0x40;
constexpr std::uint8_t kUserInformationItem = 0x50;
constexpr std::uint8_t kMaxLengthItem = 0x51;
constexpr std::uint8_t kImplementationClassUidItem = 0x52;
constexpr std::size_t kPduHeaderBytes = 6;
constexpr std::size_t kItemHeaderBytes = 4;
// Protocol version, reserved, called and calling AE titles, reserved: echoed in the A-ASSOCIATE-AC.
constexpr std::size_t kAssociateFixedBytes = 68;
// PDV item length (4), presentation context ID (1), message control header (1).
constexpr std::size_t kPdvHeaderBytes = 6;
constexpr std::uint8_t kControlCommand = 0x01;
constexpr std::uint8_t kControlLast = 0x02;
// A-RELEASE-RP: type, reserved, length 4, 4 reserved bytes.
constexpr std::array<std::uint8_t, 10> kReleaseRp = {0x06, 0, 0, 0, 0, 4, 0, 0, 0, 0};

constexpr std::string_view kApplicationContextName = "1.2.840.10008.3.1.1.1";
constexpr std::string_view kImplementationClassUid = "1.2.826.0.1.3680043.2.1143.107.104";
constexpr std::uint32_t kAdvertisedMaxPduBytes = 131072;  // what storescp -pdu gets in the bench
constexpr std::uint32_t kMaxPduBytes = 64u << 20;         // beyond this the peer is not DICOM
constexpr std::size_t kMaxCommandBytes = 65536;           // a command set is a few hundred bytes
constexpr std::size_t kMaxUidBytes = 64;
// Several 128 KiB P-DATA-TF PDUs: one recv() takes whatever the sender has written so far.
constexpr std::size_t kReadBufferBytes = 1 << 20;

// PS3.7 9.3 / E.1: command set elements (group 0000) and values.
constexpr std::uint16_t kCommandGroupLength = 0x0000;
constexpr std::uint16_t kAffectedSopClassUid = 0x0002;
constexpr std::uint16_t kCommandField = 0x0100;
constexpr std::uint16_t kMessageId = 0x0110;
constexpr std::uint16_t kMessageIdBeingRespondedTo = 0x0120;
constexpr std::uint16_t kCommandDataSetType = 0x0800;
constexpr std::uint16_t kStatus = 0x0900;
constexpr std::uint16_t kAffectedSopInstanceUid = 0x1000;
constexpr std::uint16_t kNoDataSet = 0x0101;
constexpr std::uint16_t kResponseBit = 0x8000;
constexpr std::uint16_t kSuccess = 0x0000;

std::uint16_t ReadBe16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
std::uint32_t ReadBe32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}
std::uint16_t ReadLe16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[1] << 8 | p[0]);
}
std::uint32_t ReadLe32(const std::uint8_t* p) {
  return std::uint32_t{p[3]} << 24 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[1]} << 8 | p[0];
}
void WriteBe32(std::uint8_t* p, std::uint32_t value) {
  for (int i = 3; i >= 0; --i, value >>= 8) p[i] = static_cast<std::uint8_t>(value);
}
void WriteLe32(std::uint8_t* p, std::uint32_t value) {
  for (int i = 0; i < 4; ++i, value >>= 8) p[i] = static_cast<std::uint8_t>(value);
}
void AppendBytes(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}
void AppendBytes(std::vector<std::uint8_t>& out, std::string_view text) {
  out.insert(out.end(), text.begin(), text.end());
}
void AppendBe16(std::vector<std::uint8_t>& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value >> 8));
  out.push_back(static_cast<std::uint8_t>(value));
}
void AppendBe32(std::vector<std::uint8_t>& out, std::uint32_t value) {
  out.resize(out.size() + 4);
  WriteBe32(out.data() + out.size() - 4, value);
}
void AppendLe16(std::vector<std::uint8_t>& out, std::uint16_t value) {
  out.push_back(static_cast<std::uint8_t>(value));
  out.push_back(static_cast<std::uint8_t>(value >> 8));
}
void AppendLe32(std::vector<std::uint8_t>& out, std::uint32_t value) {
  out.resize(out.size() + 4);
  WriteLe32(out.data() + out.size() - 4, value);
}
void AppendItemHeader(std::vector<std::uint8_t>& out, std::uint8_t type, std::size_t length) {
  out.push_back(type);
  out.push_back(0);
  AppendBe16(out, static_cast<std::uint16_t>(length));
}
// An implicit VR little endian element of group 0000, its value padded to even length with NUL.
void AppendElement(std::vector<std::uint8_t>& out, std::uint16_t element,
                   std::span<const std::uint8_t> value) {
  const std::size_t padded = value.size() + value.size() % 2;
  AppendLe16(out, kCommandGroupLength);
  AppendLe16(out, element);
  AppendLe32(out, static_cast<std::uint32_t>(padded));
  AppendBytes(out, value);
  if (padded != value.size()) out.push_back(0);
}
void AppendUsElement(std::vector<std::uint8_t>& out, std::uint16_t element, std::uint16_t value) {
  const std::array<std::uint8_t, 2> bytes = {static_cast<std::uint8_t>(value),
                                             static_cast<std::uint8_t>(value >> 8)};
  AppendElement(out, element, bytes);
}

// Logs why a connection is being closed; returns false for the handlers to pass on.
bool Reject(const char* why) {
  std::fprintf(stderr, "conduit_cstore_sink: closing a connection: %s\n", why);
  return false;
}

bool SendAll(int fd, std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    // MSG_NOSIGNAL: a peer that has gone must close this connection, not kill the process.
    const ssize_t sent = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(sent));
  }
  return true;
}

// Buffers the socket so that one recv() brings in a whole PDU, often several, and hands each
// PDU out contiguous and in place: data set bytes are never copied beyond this buffer.
class PduReader {
 public:
  explicit PduReader(int fd) : fd_(fd), buffer_(kReadBufferBytes) {}

  // Makes the next `bytes` bytes available at data(); false on EOF or a receive error.
  bool Fill(std::size_t bytes) {
    if (end_ - begin_ >= bytes) return true;
    if (begin_ + bytes > buffer_.size()) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      if (bytes > buffer_.size()) buffer_.resize(bytes);
    }
    while (end_ - begin_ < bytes) {
      const ssize_t got = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      end_ += static_cast<std::size_t>(got);
    }
    return true;
  }
  const std::uint8_t* data() const { return buffer_.data() + begin_; }
  void Consume(std::size_t bytes) {
    begin_ += bytes;
    // An empty buffer starts over at its front, so that the next PDU rarely needs a memmove.
    if (begin_ == end_) begin_ = end_ = 0;
  }

 private:
  int fd_;
  std::vector<std::uint8_t> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// The parts of a request's command set that its response needs.
struct Command {
  std::span<const std::uint8_t> affected_sop_class_uid;  // empty when absent
  std::span<const std::uint8_t> affected_sop_instance_uid;
  std::uint16_t command_field = 0;
  std::uint16_t message_id = 0;
  bool has_data_set = false;
};

std::optional<Command> ParseCommand(std::span<const std::uint8_t> bytes) {
  Command command;
  std::optional<std::uint16_t> command_field, message_id, data_set_type;
  while (!bytes.empty()) {
    if (bytes.size() < 8) return std::nullopt;
    const std::uint16_t group = ReadLe16(bytes.data());
    const std::uint16_t element = ReadLe16(bytes.data() + 2);
    const std::uint32_t length = ReadLe32(bytes.data() + 4);
    if (group != kCommandGroupLength || length > bytes.size() - 8) return std::nullopt;
    const auto value = bytes.subspan(8, length);
    bytes = bytes.subspan(8 + length);
    const auto us = [&value]() -> std::optional<std::uint16_t> {
      if (value.size() != 2) return std::nullopt;
      return ReadLe16(value.data());
    };
    switch (element) {
      case kAffectedSopClassUid:
        command.affected_sop_class_uid = value;
        break;
      case kAffectedSopInstanceUid:
        command.affected_sop_instance_uid = value;
        break;
      case kCommandField:
        command_field = us();
        break;
      case kMessageId:
        message_id = us();
        break;
      case kCommandDataSetType:
        data_set_type = us();
        break;
      default:
        break;
    }
  }
  if (!command_field || !message_id || !data_set_type) return std::nullopt;
  command.command_field = *command_field;
  command.message_id = *message_id;
  command.has_data_set = *data_set_type != kNoDataSet;
  return command;
}

struct SyntaxTally {
  std::string uid;
  std::uint64_t instances = 0;
  std::uint64_t bytes = 0;
  std::chrono::system_clock::time_point first_answer{};
  std::chrono::system_clock::time_point last_answer{};
};

// Seconds since the epoch, to the microsecond: comparable with the script's `date +%s.%N`.
std::string EpochSeconds(std::chrono::system_clock::time_point time) {
  const long long micros =
      std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%lld.%06lld", micros / 1000000, micros % 1000000);
  return text.data();
}

std::mutex tally_file_mutex;

// One association, on its own thread, from A-ASSOCIATE-RQ to release, EOF or nonsense.
class Association {
 public:
  Association(int fd, const char* tally_path) : fd_(fd), tally_path_(tally_path), reader_(fd) {
    context_tally_.fill(kNotAccepted);
  }
  ~Association() { ::close(fd_); }
  Association(const Association&) = delete;
  Association& operator=(const Association&) = delete;

  void Serve() {
    while (reader_.Fill(kPduHeaderBytes)) {
      const std::uint8_t type = reader_.data()[0];
      const std::uint32_t length = ReadBe32(reader_.data() + 2);
      if (length > kMaxPduBytes) {
        Reject("PDU longer than 64 MiB");
        break;
      }
      if (!reader_.Fill(kPduHeaderBytes + length)) break;
      const std::span body(reader_.data() + kPduHeaderBytes, length);
      bool open = false;
      if (type == kAssociateRq) {
        open = OnAssociateRq(body);
      } else if (type == kPDataTf) {
        open = associated_ ? OnPData(body) : Reject("P-DATA-TF before the association");
      } else if (type == kReleaseRq) {
        SendAll(fd_, kReleaseRp);
      }
      reader_.Consume(kPduHeaderBytes + length);
      if (!open) break;
    }
    AppendTally();
  }

 private:
  static constexpr std::size_t kNotAccepted = SIZE_MAX;

  bool OnAssociateRq(std::span<const std::uint8_t> body) {
    if (associated_) return Reject("a second A-ASSOCIATE-RQ");
    if (body.size() < kAssociateFixedBytes) return Reject("A-ASSOCIATE-RQ too short");
    std::vector<std::uint8_t> ac(kPduHeaderBytes);  // the header is written last
    AppendBytes(ac, body.first(kAssociateFixedBytes));
    AppendItemHeader(ac, kApplicationContextItem, kApplicationContextName.size());
    AppendBytes(ac, kApplicationContextName);
    for (auto items = body.subspan(kAssociateFixedBytes); !items.empty();) {
      if (items.size() < kItemHeaderBytes) return Reject("truncated A-ASSOCIATE-RQ item");
      const std::uint8_t item_type = items[0];
      const std::size_t length = ReadBe16(items.data() + 2);
      if (length > items.size() - kItemHeaderBytes) return Reject("A-ASSOCIATE-RQ item overrun");
      const auto item = items.subspan(kItemHeaderBytes, length);
      items = items.subspan(kItemHeaderBytes + length);
      if (item_type == kPresentationContextRqItem && !AcceptContext(item, ac)) return false;
    }
    AppendItemHeader(ac, kUserInformationItem,
                     2 * kItemHeaderBytes + 4 + kImplementationClassUid.size());
    AppendItemHeader(ac, kMaxLengthItem, 4);
    AppendBe32(ac, kAdvertisedMaxPduBytes);
    AppendItemHeader(ac, kImplementationClassUidItem, kImplementationClassUid.size());
    AppendBytes(ac, kImplementationClassUid);
    ac[0] = kAssociateAc;
    ac[1] = 0;
    WriteBe32(ac.data() + 2, static_cast<std::uint32_t>(ac.size() - kPduHeaderBytes));
    associated_ = true;
    return SendAll(fd_, ac);
  }

  // Accepts a presentation context item (PS3.8 9.3.2.2) in its first transfer syntax and appends
  // the A-ASSOCIATE-AC's item for it to `ac`.
  bool AcceptContext(std::span<const std::uint8_t> item, std::vector<std::uint8_t>& ac) {
    if (item.size() < 4) return Reject("presentation context item too short");
    const std::uint8_t context_id = item[0];
    for (auto sub_items = item.subspan(4); !sub_items.empty();) {
      if (sub_items.size() < kItemHeaderBytes) return Reject("truncated presentation context");
      const std::uint8_t sub_item_type = sub_items[0];
      const std::size_t length = ReadBe16(sub_items.data() + 2);
      if (length > sub_items.size() - kItemHeaderBytes) return Reject("sub-item overrun");
      if (sub_item_type != kTransferSyntaxItem) {
        sub_items = sub_items.subspan(kItemHeaderBytes + length);
        continue;
      }
      if (length > kMaxUidBytes) return Reject("transfer syntax UID longer than 64 bytes");
      const auto syntax = sub_items.subspan(kItemHeaderBytes, length);
      std::string uid(syntax.begin(), syntax.end());
      while (!uid.empty() && uid.back() == '\0') uid.pop_back();  // UIDs are padded with NUL
      context_tally_[context_id] = TallyIndex(uid);
      AppendItemHeader(ac, kPresentationContextAcItem, 4 + kItemHeaderBytes + syntax.size());
      AppendBytes(ac, std::array<std::uint8_t, 4>{context_id, 0, 0, 0});  // result 0: acceptance
      AppendItemHeader(ac, kTransferSyntaxItem, syntax.size());
      AppendBytes(ac, syntax);
      return true;
    }
    return Reject("presentation context without a transfer syntax");
  }

  std::size_t TallyIndex(const std::string& uid) {
    for (std::size_t i = 0; i < tallies_.size(); ++i) {
      if (tallies_[i].uid == uid) return i;
    }
    tallies_.push_back({uid});
    return tallies_.size() - 1;
  }

  bool OnPData(std::span<const std::uint8_t> body) {
    while (!body.empty()) {
      if (body.size() < kPdvHeaderBytes) return Reject("truncated PDV");
      // The item length counts the context ID and control header bytes, then the fragment.
      const std::uint32_t length = ReadBe32(body.data());
      if (length < 2 || length > body.size() - 4) return Reject("PDV length beyond its PDU");
      const std::uint8_t context_id = body[4];
      const std::uint8_t control = body[5];
      const auto fragment = body.subspan(kPdvHeaderBytes, length - 2);
      body = body.subspan(4 + length);
      if (context_tally_[context_id] == kNotAccepted) return Reject("PDV in no accepted context");
      const bool last = (control & kControlLast) != 0;
      const bool open = (control & kControlCommand) != 0
                            ? OnCommandFragment(context_id, fragment, last)
                            : OnDataSetFragment(context_id, fragment, last);
      if (!open) return false;
    }
    return true;
  }

  bool OnCommandFragment(std::uint8_t context_id, std::span<const std::uint8_t> fragment,
                         bool last) {
    if (data_set_pending_) return Reject("command fragment while a data set was expected");
    if (command_.size() + fragment.size() > kMaxCommandBytes) return Reject("command too long");
    AppendBytes(command_, fragment);
    if (!last) return true;
    const auto command = ParseCommand(command_);
    if (!command) return Reject("malformed command set");
    // Built now, while the request's UIDs are at hand; sent when the data set is complete.
    BuildResponse(*command, context_id);
    command_.clear();
    if (command->has_data_set) {
      data_set_pending_ = true;
      data_set_context_ = context_id;
      data_set_bytes_ = 0;
      return true;
    }
    return SendAll(fd_, response_);
  }

  bool OnDataSetFragment(std::uint8_t context_id, std::span<const std::uint8_t> fragment,
                         bool last) {
    if (!data_set_pending_ || context_id != data_set_context_) {
      return Reject("data set fragment without its command");
    }
    data_set_bytes_ += fragment.size();
    if (!last) return true;
    data_set_pending_ = false;
    SyntaxTally& tally = tallies_[context_tally_[context_id]];
    const auto now = std::chrono::system_clock::now();
    if (tally.instances == 0) tally.first_answer = now;
    tally.last_answer = now;
    ++tally.instances;
    tally.bytes += data_set_bytes_;
    return SendAll(fd_, response_);
  }

  // The whole P-DATA-TF PDU answering `command` with status 0x0000, into response_.
  void BuildResponse(const Command& command, std::uint8_t context_id) {
    response_.assign(kPduHeaderBytes + kPdvHeaderBytes, 0);
    AppendElement(response_, kCommandGroupLength, std::array<std::uint8_t, 4>{});  // UL, below
    const std::size_t group_length_at = response_.size() - 4;
    if (!command.affected_sop_class_uid.empty()) {
      AppendElement(response_, kAffectedSopClassUid, command.affected_sop_class_uid);
    }
    AppendUsElement(response_, kCommandField, command.command_field | kResponseBit);
    AppendUsElement(response_, kMessageIdBeingRespondedTo, command.message_id);
    AppendUsElement(response_, kCommandDataSetType, kNoDataSet);
    AppendUsElement(response_, kStatus, kSuccess);
    if (!command.affected_sop_instance_uid.empty()) {
      AppendElement(response_, kAffectedSopInstanceUid, command.affected_sop_instance_uid);
    }
    WriteLe32(response_.data() + group_length_at,
              static_cast<std::uint32_t>(response_.size() - group_length_at - 4));
    const auto pdu_length = static_cast<std::uint32_t>(response_.size() - kPduHeaderBytes);
    response_[0] = kPDataTf;
    WriteBe32(response_.data() + 2, pdu_length);
    WriteBe32(response_.data() + kPduHeaderBytes, pdu_length - 4);
    response_[kPduHeaderBytes + 4] = context_id;
    response_[kPduHeaderBytes + 5] = kControlCommand | kControlLast;
  }

  void AppendTally() const {
    std::string lines;
    for (const SyntaxTally& tally : tallies_) {
      if (tally.instances == 0) continue;
      lines += tally.uid + ' ' + std::to_string(tally.instances) + ' ' +
               std::to_string(tally.bytes) + ' ' + EpochSeconds(tally.first_answer) + ' ' +
               EpochSeconds(tally.last_answer) + '\n';
    }
    const std::lock_guard lock(tally_file_mutex);
    // Opened even with nothing to add, so that the file exists once any association (the
    // script's C-ECHO probes included) has ended: a missing file means the sink never served.
    std::ofstream file(tally_path_, std::ios::app);
    file << lines;
    file.close();
    if (!file) std::fprintf(stderr, "conduit_cstore_sink: cannot append to %s\n", tally_path_);
  }

  const int fd_;
  const char* const tally_path_;
  PduReader reader_;
  bool associated_ = false;
  // Per presentation context ID: its index in tallies_, kNotAccepted if it was not proposed.
  std::array<std::size_t, 256> context_tally_;
  std::vector<SyntaxTally> tallies_;
  std::vector<std::uint8_t> command_;  // the command set's fragments so far
  std::vector<std::uint8_t> response_;
  bool data_set_pending_ = false;
  std::uint8_t data_set_context_ = 0;
  std::uint64_t data_set_bytes_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT TALLY_FILE\n", argv[0]);
    return 2;
  }
  char* port_end = nullptr;
  const unsigned long port = std::strtoul(argv[1], &port_end, 10);
  if (*port_end != '\0' || port == 0 || port > 65535) {
    std::fprintf(stderr, "conduit_cstore_sink: bad port %s\n", argv[1]);
    return 2;
  }
  const char* const tally_path = argv[2];

  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int on = 1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener < 0 || ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      ::bind(listener, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 64) != 0) {
    std::perror("conduit_cstore_sink: listen");
    return 1;
  }
  for (;;) {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::perror("conduit_cstore_sink: accept");
      // Out of descriptors or memory: give connections time to end rather than spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    // Responses are small and the sender waits for each: no Nagle delay.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    try {
      std::thread([fd, tally_path] {
        try {
          Association(fd, tally_path).Serve();
        } catch (const std::exception& error) {  // e.g. no memory for a huge PDU
          std::fprintf(stderr, "conduit_cstore_sink: %s\n", error.what());
        }
      }).detach();
    } catch (const std::system_error& error) {
      std::fprintf(stderr, "conduit_cstore_sink: no thread for a connection: %s\n", error.what());
      ::close(fd);
    }
  }
}
