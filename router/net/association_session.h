// One accepted TCP connection, from A-ASSOCIATE-RQ to release or abort (PS3.8 9.2), as a
// coroutine on its own strand. It answers C-ECHO and C-STORE; each C-STORE dataset streams into
// the spool as its PDVs arrive and is answered only once the spool says it is durable.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "router/config/config.h"
#include "router/dimse/command_set.h"
#include "router/net/association_policy.h"
#include "router/net/pdu.h"
#include "router/net/pdu_codec.h"
#include "router/routing/rules_runtime.h"
#include "rules/association_facts.h"

namespace conduit::metrics {
class IngestMetrics;
}
namespace conduit::routing {
class RulesRuntime;
}
namespace conduit::spool {
class IncomingInstance;
class Spool;
class SpoolCommitter;
}  // namespace conduit::spool

namespace conduit::net {

// What every session needs; owned by the server, outlives all sessions.
struct SessionDependencies {
  const config::ListenerConfig& config;
  const AssociationPolicy& policy;
  spool::Spool& spool;
  spool::SpoolCommitter& committer;
  metrics::IngestMetrics& metrics;
  const routing::RulesRuntime& rules;
};

class AssociationSession {
 public:
  AssociationSession(boost::asio::ip::tcp::socket socket, SessionDependencies& dependencies,
                     AdmissionFacts admission, std::uint64_t association_id);
  ~AssociationSession();

  // Runs the association to its end; never throws.
  boost::asio::awaitable<void> Run();

 private:
  enum class Ending {
    kReleased,
    kRejected,
    kPeerAborted,
    kPeerClosed,
    kProtocolError,
    kTimeout,
  };

  // A PDU just read; `body` points into the session's receive buffer until the next read.
  struct ReceivedPdu {
    PduHeader header;
    ByteView body;
  };

  // A DIMSE message being reassembled from PDVs (PS3.7 section 8, PS3.8 E.2).
  struct MessageInProgress {
    std::uint8_t context_id = 0;
    std::vector<std::uint8_t> command_bytes;
    std::optional<dimse::CommandSet> command;           // once the last command fragment arrived
    std::unique_ptr<spool::IncomingInstance> instance;  // the C-STORE dataset being spooled
    routing::RulesSnapshot rules;      // taken when the C-STORE began; routes this instance
    std::uint16_t refusal_status = 0;  // the answer, when the dataset is drained, not stored
    std::string refusal_comment;
  };

  boost::asio::awaitable<void> Serve();
  boost::asio::awaitable<void> Watchdog();
  // nullopt when the connection is gone or the PDU was refused (an A-ABORT has been sent).
  boost::asio::awaitable<std::optional<ReceivedPdu>> ReadPdu(std::uint32_t max_p_data_length);
  boost::asio::awaitable<bool> Negotiate(const ReceivedPdu& pdu);
  boost::asio::awaitable<void> ServeEstablished();
  // nullopt to go on; an error aborts the association.
  boost::asio::awaitable<std::optional<PduError>> HandlePdv(const Pdv& pdv);
  boost::asio::awaitable<std::optional<PduError>> OnCommandComplete();
  boost::asio::awaitable<void> OnDataSetComplete();
  void BeginStore(MessageInProgress& message);
  boost::asio::awaitable<void> Respond(std::uint8_t context_id, const dimse::CommandSet& request,
                                       std::uint16_t status, std::string comment);
  boost::asio::awaitable<bool> Send(std::vector<std::uint8_t> bytes);
  boost::asio::awaitable<void> SendAbort(const PduError& error);
  void ExtendDeadline(std::chrono::seconds timeout);
  void Close();

  boost::asio::ip::tcp::socket socket_;
  SessionDependencies& dependencies_;
  AdmissionFacts admission_;
  std::uint64_t id_;
  rules::AssociationFacts facts_;
  std::chrono::steady_clock::time_point deadline_;
  bool established_ = false;
  bool write_failed_ = false;
  Ending ending_ = Ending::kPeerClosed;
  std::string ending_detail_;
  std::uint32_t peer_max_pdu_length_ = 0;
  std::map<std::uint8_t, AcceptedContext> contexts_;
  std::optional<MessageInProgress> message_;
  std::vector<Pdv> pdvs_;  // reused across P-DATA-TF PDUs
  // Reused for every PDU and never zero-filled: a fresh 128 KiB vector per PDU cost a quarter
  // of the router's CPU in page faults and memset.
  std::unique_ptr<std::uint8_t[]> receive_buffer_;
  std::size_t receive_capacity_ = 0;
  std::uint64_t instances_stored_ = 0;
  std::uint64_t bytes_stored_ = 0;
  std::uint64_t stores_failed_ = 0;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace conduit::net
