// One outgoing association (Conduit as association requestor, PS3.8 9.2) for C-STORE and
// C-ECHO (PS3.7 9.1.1, 9.1.5) on the same Upper Layer codec as the listener. Each call runs on
// the caller's strand, one operation at a time; failures are values, never exceptions.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "codecs/result.h"
#include "router/net/pdu.h"
#include "router/net/pdu_codec.h"

namespace conduit::net {

// Why an SCU operation failed. kTransient: worth retrying later (connection refused or reset,
// timeout, A-ASSOCIATE-RJ "rejected-transient", A-ABORT from the peer, a malformed answer).
// kPermanent: retrying the same thing will fail the same way (A-ASSOCIATE-RJ
// "rejected-permanent", an unreadable spool file, a context that was not accepted, a bad
// argument). `detail` is one line for logs and dead-letter reasons.
enum class ScuFailure { kTransient, kPermanent };
struct ScuError {
  ScuFailure kind = ScuFailure::kTransient;
  std::string detail;
};

struct ScuPeer {
  std::string host;
  std::uint16_t port = 104;
  std::string called_ae;
  std::string calling_ae;
  std::uint32_t max_pdu_bytes = 131072;  // our receive limit, advertised in the A-ASSOCIATE-RQ
  std::chrono::seconds connect_timeout{10};
  std::chrono::seconds response_timeout{60};  // each wait for an answer PDU, and each write
};

struct ProposedContext {
  std::string abstract_syntax;
  std::vector<std::string> transfer_syntaxes;
};

// Where a dataset to send comes from: a byte range of a file (streamed in chunks, never read
// whole into memory) or bytes already in memory (which must outlive the Store call).
struct FileRange {
  std::filesystem::path path;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};
using DatasetSource = std::variant<FileRange, std::span<const std::uint8_t>>;

struct DimseResponse {
  std::uint16_t status = 0;
  std::string error_comment;
};

// Success of an operation that has no value (Result needs a value type).
using ScuDone = std::monostate;

class ScuAssociation {
 public:
  struct AcceptedContext {
    std::uint8_t id = 0;
    std::string transfer_syntax;
  };

  // Run every call on one strand of `executor`.
  explicit ScuAssociation(const boost::asio::any_io_executor& executor);
  ~ScuAssociation();  // closes the connection without a word if still open
  ScuAssociation(const ScuAssociation&) = delete;
  ScuAssociation& operator=(const ScuAssociation&) = delete;

  // Connects (within connect_timeout), proposes `contexts` with ids 1, 3, 5, ... (at most 128,
  // PS3.8 9.3.2.2) and reads the A-ASSOCIATE-AC or -RJ (within response_timeout).
  boost::asio::awaitable<Result<ScuDone, ScuError>> Open(const ScuPeer& peer,
                                                         std::vector<ProposedContext> contexts);
  bool is_open() const { return open_; }

  // The accepted context for `abstract_syntax` whose transfer syntax comes first in
  // `transfer_syntaxes` (preference order); nullopt if no accepted context has any of them.
  std::optional<AcceptedContext> FindContext(std::string_view abstract_syntax,
                                             std::span<const std::string> transfer_syntaxes) const;
  // Whether any context for `abstract_syntax` was accepted, whatever its transfer syntax: tells
  // "SOP class refused" from "transfer syntax refused".
  bool AcceptsAbstractSyntax(std::string_view abstract_syntax) const;
  // The P-DATA-TF variable field length we send within, once open: the peer's maximum from its
  // A-ASSOCIATE-AC, or 1 MiB when it set none (0, PS3.8 D.1).
  std::uint32_t peer_max_pdu_length() const { return peer_max_pdu_length_; }

  // One C-STORE-RQ (PS3.7 9.3.1.1, priority MEDIUM) on `context_id`, the dataset as P-DATA-TF
  // PDUs within the peer's limit, then the C-STORE-RSP's status and ErrorComment. A transport
  // or protocol failure aborts the association; an unreadable or short spool file is reported
  // as kPermanent and leaves the association open when nothing had been sent yet.
  boost::asio::awaitable<Result<DimseResponse, ScuError>> Store(std::uint8_t context_id,
                                                                std::string_view sop_class_uid,
                                                                std::string_view sop_instance_uid,
                                                                const DatasetSource& dataset);
  // C-ECHO (PS3.7 9.3.5) on an accepted Verification context; kPermanent if none was accepted.
  boost::asio::awaitable<Result<DimseResponse, ScuError>> Echo();
  // A-RELEASE-RQ, waits for A-RELEASE-RP (response_timeout) and closes; on anything else it
  // aborts and closes. Never fails.
  boost::asio::awaitable<void> Release();
  // A-ABORT (best effort, not in the middle of a PDU being written) and close: for shutdown and
  // protocol errors. Pending operations then end with a transient error.
  void Abort();

  // Dataset bytes sent over this object's lifetime.
  std::uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  struct Context {
    std::uint8_t id = 0;
    std::string abstract_syntax;
    std::string transfer_syntax;
  };
  struct ReceivedPdu {
    PduType type = PduType::kAbort;
    ByteView body;  // into receive_buffer_, valid until the next read
  };
  // A read that failed: the transport (`protocol` empty) or a PDU we refuse (abort reason).
  struct ReadFault {
    std::string detail;
    std::optional<AbortReason> protocol;
  };

  template <typename T>
  boost::asio::awaitable<std::optional<T>> WithTimeout(boost::asio::awaitable<T> operation,
                                                       std::chrono::seconds timeout);
  boost::asio::awaitable<void> Expire(std::chrono::seconds timeout);
  boost::asio::awaitable<Result<ScuDone, ScuError>> Connect();
  boost::asio::awaitable<Result<ScuDone, ScuError>> Negotiate(
      std::vector<ProposedContext> contexts);
  boost::asio::awaitable<Result<ReceivedPdu, ScuError>> ReadPdu(std::string_view awaiting);
  boost::asio::awaitable<Result<ReceivedPdu, ReadFault>> ReadPduUntimed();
  boost::asio::awaitable<Result<ScuDone, ScuError>> Write(ByteView bytes, std::string_view what);
  boost::asio::awaitable<Result<ScuDone, ScuError>> WriteUntimed(ByteView bytes);
  boost::asio::awaitable<Result<DimseResponse, ScuError>> AwaitResponse(std::uint8_t context_id,
                                                                        std::uint16_t command_field,
                                                                        std::uint16_t message_id,
                                                                        std::string_view name);
  boost::asio::awaitable<Result<ScuDone, ScuError>> SendDataset(std::uint8_t context_id,
                                                                const DatasetSource& dataset,
                                                                int file);
  std::uint16_t NextMessageId();
  // Aborts with a provider A-ABORT (PS3.8 9.3.8) and returns a transient error.
  ScuError Fail(std::string detail, AbortReason reason = AbortReason::kNotSpecified);
  void SendAbortAndClose(const net::Abort& abort);
  void Close();

  boost::asio::any_io_executor executor_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::ip::tcp::resolver resolver_;
  ScuPeer peer_;
  bool open_ = false;
  bool writing_ = false;    // an async_write is in flight: no A-ABORT may interleave with it
  bool timed_out_ = false;  // set by Expire when it cancelled the pending operation
  std::uint32_t peer_max_pdu_length_ = 0;
  std::uint16_t next_message_id_ = 1;
  std::vector<Context> contexts_;  // accepted only
  std::uint64_t bytes_sent_ = 0;
  std::vector<Pdv> pdvs_;  // reused across P-DATA-TF PDUs
  std::unique_ptr<std::uint8_t[]> receive_buffer_;
  std::size_t receive_capacity_ = 0;
  std::unique_ptr<std::uint8_t[]> file_chunk_;  // reused pread() buffer
  Bytes send_buffer_;                           // reused PDU buffer; keeps its capacity
};

}  // namespace conduit::net
