#include "router/net/association_session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>

#include "router/dimse/status.h"
#include "router/log/log.h"
#include "router/metrics/ingest_metrics.h"
#include "router/spool/incoming_instance.h"
#include "router/spool/spool.h"
#include "router/spool/spool_committer.h"

namespace conduit::net {
namespace asio = boost::asio;
using asio::awaitable;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

// A-ASSOCIATE-RQ carries at most 128 presentation contexts of a few hundred bytes each; a
// megabyte is generous and still bounded.
constexpr std::uint32_t kMaxAssociateRqLength = 1 << 20;
// A-RELEASE and A-ABORT bodies are 4 bytes; anything larger is refused before it is read.
constexpr std::uint32_t kMaxControlPduLength = 64;
// A command set is a dozen small elements; this bounds its reassembly buffer.
constexpr std::size_t kMaxCommandSetLength = 64 * 1024;

bool IsValidUid(const std::string& uid) {
  if (uid.empty() || uid.size() > 64) return false;
  for (char c : uid) {
    if ((c < '0' || c > '9') && c != '.') return false;
  }
  return true;
}

PduError ProtocolError(AbortReason reason, std::string detail) {
  return PduError{reason, std::move(detail)};
}

// Who is on the association, for every line about it: AEs (empty before A-ASSOCIATE-RQ) and the
// peer's address.
std::string Parties(const rules::AssociationFacts& facts) {
  return "calling=" + facts.calling_ae + " called=" + facts.called_ae +
         " peer=" + facts.peer_address + ":" + std::to_string(facts.peer_port);
}

std::string_view EndingName(int ending) {
  static constexpr std::string_view kNames[] = {"released",    "rejected",       "peer_aborted",
                                                "peer_closed", "protocol_error", "timeout"};
  return kNames[ending];
}

}  // namespace

AssociationSession::AssociationSession(asio::ip::tcp::socket socket,
                                       SessionDependencies& dependencies, AdmissionFacts admission,
                                       std::uint64_t association_id)
    : socket_(std::move(socket)),
      dependencies_(dependencies),
      admission_(std::move(admission)),
      id_(association_id),
      started_(std::chrono::steady_clock::now()) {
  facts_.peer_address = admission_.peer_address;
  boost::system::error_code ignored;
  const auto remote = socket_.remote_endpoint(ignored);
  facts_.peer_port = remote.port();
  dependencies_.metrics.AssociationOpened();
}

AssociationSession::~AssociationSession() { dependencies_.metrics.AssociationClosed(); }

awaitable<void> AssociationSession::Run() {
  using namespace asio::experimental::awaitable_operators;
  try {
    co_await (Serve() || Watchdog());
  } catch (const std::exception& error) {
    // The one catch of a session: whatever escaped ends this association only.
    if (ending_ != Ending::kTimeout) {
      ending_ = Ending::kProtocolError;
      ending_detail_ = error.what();
    }
  }
  if (ending_ == Ending::kTimeout && established_) {
    // PS3.8 9.1.5: on a timer expiry the provider aborts. Best effort: the peer may be gone.
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
    asio::write(
        socket_,
        asio::buffer(EncodeAbort({AbortSource::kServiceProvider, AbortReason::kNotSpecified})),
        ignored);
  }
  message_.reset();  // an instance still being received is removed, never half-committed
  Close();
  switch (ending_) {
    case Ending::kPeerAborted:
      dependencies_.metrics.AssociationAborted("peer");
      break;
    case Ending::kProtocolError:
      dependencies_.metrics.AssociationAborted("protocol_error");
      break;
    case Ending::kTimeout:
      dependencies_.metrics.AssociationAborted("timeout");
      break;
    case Ending::kPeerClosed:
      if (established_) dependencies_.metrics.AssociationAborted("connection_lost");
      break;
    case Ending::kReleased:
    case Ending::kRejected:
      break;
  }
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  log::Info("association ", id_, " ended: ", EndingName(static_cast<int>(ending_)),
            ending_detail_.empty() ? "" : " (", ending_detail_, ending_detail_.empty() ? "" : ")",
            " ", Parties(facts_), " stored=", instances_stored_, " failed=", stores_failed_,
            " bytes=", bytes_stored_, " seconds=", seconds);
}

awaitable<void> AssociationSession::Watchdog() {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    timer.expires_at(deadline_);
    auto [error] = co_await timer.async_wait(kNoThrow);
    if (error == asio::error::operation_aborted) co_return;  // the session ended first
    if (std::chrono::steady_clock::now() >= deadline_) {
      ending_ = Ending::kTimeout;
      ending_detail_ = established_ ? "idle timeout" : "ARTIM timeout";
      co_return;  // cancels Serve()
    }
  }
}

void AssociationSession::ExtendDeadline(std::chrono::seconds timeout) {
  deadline_ = std::chrono::steady_clock::now() + timeout;
}

void AssociationSession::Close() {
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

awaitable<std::optional<AssociationSession::ReceivedPdu>> AssociationSession::ReadPdu(
    std::uint32_t max_p_data_length) {
  std::array<std::uint8_t, kPduHeaderSize> header_bytes{};
  auto [header_error, header_read] =
      co_await asio::async_read(socket_, asio::buffer(header_bytes), kNoThrow);
  if (header_error) {
    if (header_error != asio::error::eof && header_error != asio::error::operation_aborted) {
      ending_detail_ = header_error.message();
    }
    ending_ = ending_ == Ending::kTimeout ? Ending::kTimeout : Ending::kPeerClosed;
    co_return std::nullopt;
  }
  ReceivedPdu pdu;
  pdu.header = DecodePduHeader(header_bytes);
  std::uint32_t limit = 0;
  switch (static_cast<PduType>(pdu.header.type)) {
    case PduType::kAssociateRq:
    case PduType::kAssociateAc:
      limit = kMaxAssociateRqLength;
      break;
    case PduType::kPDataTf:
      limit = max_p_data_length;
      break;
    case PduType::kAssociateRj:
    case PduType::kReleaseRq:
    case PduType::kReleaseRp:
    case PduType::kAbort:
      limit = kMaxControlPduLength;
      break;
    default:
      co_await SendAbort(ProtocolError(AbortReason::kUnrecognizedPdu,
                                       "unknown PDU type " + std::to_string(pdu.header.type)));
      co_return std::nullopt;
  }
  if (pdu.header.length > limit) {
    co_await SendAbort(ProtocolError(AbortReason::kInvalidPduParameterValue,
                                     "PDU type " + std::to_string(pdu.header.type) + " of " +
                                         std::to_string(pdu.header.length) +
                                         " bytes exceeds the limit of " + std::to_string(limit)));
    co_return std::nullopt;
  }
  if (pdu.header.length > receive_capacity_) {
    receive_buffer_.reset(new std::uint8_t[pdu.header.length]);  // default-initialised: no memset
    receive_capacity_ = pdu.header.length;
  }
  pdu.body = ByteView(receive_buffer_.get(), pdu.header.length);
  auto [body_error, body_read] = co_await asio::async_read(
      socket_, asio::buffer(receive_buffer_.get(), pdu.header.length), kNoThrow);
  if (body_error) {
    ending_ = ending_ == Ending::kTimeout ? Ending::kTimeout : Ending::kPeerClosed;
    ending_detail_ = "connection lost inside a PDU";
    co_return std::nullopt;
  }
  co_return pdu;
}

awaitable<bool> AssociationSession::Send(std::vector<std::uint8_t> bytes) {
  auto [error, written] = co_await asio::async_write(socket_, asio::buffer(bytes), kNoThrow);
  if (error) {
    ending_ = ending_ == Ending::kTimeout ? Ending::kTimeout : Ending::kPeerClosed;
    ending_detail_ = "write failed: " + error.message();
    write_failed_ = true;
    co_return false;
  }
  co_return true;
}

awaitable<void> AssociationSession::SendAbort(const PduError& error) {
  ending_ = Ending::kProtocolError;
  ending_detail_ = error.detail;
  log::Warning("association ", id_, " [", Parties(facts_), "]: A-ABORT (reason ",
               static_cast<int>(error.reason), "): ", error.detail);
  co_await Send(EncodeAbort({AbortSource::kServiceProvider, error.reason}));
}

awaitable<void> AssociationSession::Serve() {
  const auto& config = dependencies_.config;
  ExtendDeadline(config.artim_timeout);  // PS3.8 9.1.5: ARTIM runs until A-ASSOCIATE-RQ arrives
  std::optional<ReceivedPdu> pdu = co_await ReadPdu(0);
  if (!pdu) co_return;
  if (pdu->header.type != static_cast<std::uint8_t>(PduType::kAssociateRq)) {
    co_await SendAbort(
        ProtocolError(AbortReason::kUnexpectedPdu,
                      "expected A-ASSOCIATE-RQ, got PDU type " + std::to_string(pdu->header.type)));
    co_return;
  }
  if (!co_await Negotiate(*pdu)) co_return;
  co_await ServeEstablished();
}

awaitable<bool> AssociationSession::Negotiate(const ReceivedPdu& pdu) {
  auto request = ParseAssociateRq(pdu.body);
  if (!request) {
    co_await SendAbort(request.error());
    co_return false;
  }
  facts_.calling_ae = request->calling_ae;
  facts_.called_ae = request->called_ae;
  admission_.spool_has_room = dependencies_.spool.usage().HasRoom();
  auto decision = dependencies_.policy.Decide(*request, admission_);
  if (auto* rejection = std::get_if<Rejection>(&decision)) {
    ending_ = Ending::kRejected;
    ending_detail_ = std::string(rejection->reason_label);
    dependencies_.metrics.AssociationRejected(rejection->reason_label);
    co_await Send(EncodeAssociateRj(rejection->response));
    // PS3.8 9.2 (Sta13): the requestor closes the connection after reading the rejection.
    ExtendDeadline(dependencies_.config.artim_timeout);
    std::array<std::uint8_t, 64> drain{};
    for (;;) {
      auto [error, read] = co_await socket_.async_read_some(asio::buffer(drain), kNoThrow);
      if (error) break;
    }
    ending_ = Ending::kRejected;
    co_return false;
  }
  auto& acceptance = std::get<Acceptance>(decision);
  contexts_ = std::move(acceptance.contexts);
  peer_max_pdu_length_ = request->max_pdu_length;
  if (!co_await Send(EncodeAssociateAc(acceptance.response))) co_return false;
  established_ = true;
  log::Info("association ", id_, " accepted: ", Parties(facts_), " contexts=", contexts_.size(),
            "/", request->presentation_contexts.size(), " peer_max_pdu=", peer_max_pdu_length_);
  co_return true;
}

awaitable<void> AssociationSession::ServeEstablished() {
  const auto& config = dependencies_.config;
  for (;;) {
    ExtendDeadline(config.idle_timeout);
    std::optional<ReceivedPdu> pdu = co_await ReadPdu(config.max_pdu_bytes);
    if (!pdu) co_return;
    switch (static_cast<PduType>(pdu->header.type)) {
      case PduType::kPDataTf: {
        pdvs_.clear();
        if (auto error = ParsePDataTf(pdu->body, pdvs_)) {
          co_await SendAbort(*error);
          co_return;
        }
        for (const Pdv& pdv : pdvs_) {
          if (auto error = co_await HandlePdv(pdv)) {
            co_await SendAbort(*error);
            co_return;
          }
          if (write_failed_) co_return;
        }
        break;
      }
      case PduType::kReleaseRq:
        if (message_) {
          co_await SendAbort(ProtocolError(AbortReason::kUnexpectedPdu,
                                           "A-RELEASE-RQ in the middle of a DIMSE message"));
          co_return;
        }
        if (co_await Send(EncodeReleaseRp())) ending_ = Ending::kReleased;
        co_return;
      case PduType::kAbort:
        ending_ = Ending::kPeerAborted;
        co_return;
      default:
        co_await SendAbort(ProtocolError(
            AbortReason::kUnexpectedPdu,
            "unexpected PDU type " + std::to_string(pdu->header.type) + " after association"));
        co_return;
    }
  }
}

awaitable<std::optional<PduError>> AssociationSession::HandlePdv(const Pdv& pdv) {
  if (!contexts_.contains(pdv.context_id)) {
    co_return ProtocolError(AbortReason::kInvalidPduParameterValue,
                            "PDV on presentation context " + std::to_string(pdv.context_id) +
                                ", which was not accepted");
  }
  if (message_ && message_->context_id != pdv.context_id) {
    co_return ProtocolError(AbortReason::kUnexpectedPduParameter,
                            "PDV for another presentation context inside a DIMSE message");
  }
  if (pdv.is_command) {
    if (message_ && message_->command) {
      co_return ProtocolError(AbortReason::kUnexpectedPduParameter,
                              "command fragment where a dataset fragment was expected");
    }
    if (!message_) message_.emplace().context_id = pdv.context_id;
    if (message_->command_bytes.size() + pdv.data.size() > kMaxCommandSetLength) {
      co_return ProtocolError(AbortReason::kInvalidPduParameterValue,
                              "command set longer than 64 KiB");
    }
    message_->command_bytes.insert(message_->command_bytes.end(), pdv.data.begin(), pdv.data.end());
    if (pdv.is_last_fragment) co_return co_await OnCommandComplete();
    co_return std::nullopt;
  }
  if (!message_ || !message_->command || !message_->command->has_data_set()) {
    co_return ProtocolError(AbortReason::kUnexpectedPduParameter,
                            "dataset fragment without a command announcing it");
  }
  if (message_->instance) {
    if (const std::error_code error = message_->instance->Append(pdv.data)) {
      log::Error("association ", id_, " [", Parties(facts_),
                 "]: writing sop=", message_->command->affected_sop_instance_uid,
                 " to the spool failed: ", error.message());
      message_->instance.reset();
      message_->refusal_status = dimse::status::kOutOfResources;
      message_->refusal_comment = "spool write failed: " + error.message();
    } else if (!dependencies_.spool.usage().HasRoom()) {
      dependencies_.spool.usage().MarkFull();
      message_->instance.reset();
      message_->refusal_status = dimse::status::kOutOfResources;
      message_->refusal_comment = "spool full";
    }
  }
  if (pdv.is_last_fragment) co_await OnDataSetComplete();
  co_return std::nullopt;
}

awaitable<std::optional<PduError>> AssociationSession::OnCommandComplete() {
  MessageInProgress& message = *message_;
  auto parsed = dimse::ParseCommandSet(message.command_bytes);
  if (!parsed) co_return ProtocolError(AbortReason::kInvalidPduParameterValue, parsed.error());
  message.command = std::move(parsed.value());
  message.command_bytes = {};
  const dimse::CommandSet& command = *message.command;
  if (!command.message_id) {
    // Without a message ID no response can be matched to the request.
    co_return ProtocolError(AbortReason::kInvalidPduParameterValue, "request without MessageID");
  }
  switch (command.command_field) {
    case dimse::command_field::kCEchoRq:
      message.refusal_status = dimse::status::kSuccess;
      break;
    case dimse::command_field::kCStoreRq:
      BeginStore(message);
      break;
    default:
      message.refusal_status = dimse::status::kUnrecognizedOperation;
      message.refusal_comment = "Conduit answers C-ECHO and C-STORE only";
      break;
  }
  if (!command.has_data_set()) {
    if (command.command_field == dimse::command_field::kCStoreRq) {
      message.instance.reset();
      message.refusal_status = dimse::status::kCannotUnderstand;
      message.refusal_comment = "C-STORE-RQ without a dataset";
    }
    co_await OnDataSetComplete();
  }
  co_return std::nullopt;
}

void AssociationSession::BeginStore(MessageInProgress& message) {
  const dimse::CommandSet& command = *message.command;
  const AcceptedContext& context = contexts_.at(message.context_id);
  if (!IsValidUid(command.affected_sop_class_uid) ||
      !IsValidUid(command.affected_sop_instance_uid)) {
    message.refusal_status = dimse::status::kCannotUnderstand;
    message.refusal_comment = "missing or invalid Affected SOP Class/Instance UID";
    return;
  }
  if (command.affected_sop_class_uid != context.abstract_syntax) {
    message.refusal_status = dimse::status::kSopClassNotSupported;
    message.refusal_comment = "SOP class differs from the presentation context's";
    return;
  }
  if (!dependencies_.spool.usage().HasRoom()) {
    dependencies_.spool.usage().MarkFull();
    message.refusal_status = dimse::status::kOutOfResources;
    message.refusal_comment = "spool full";
    return;
  }
  facts_.received_at = std::chrono::system_clock::now();
  spool::Part10Identity identity{command.affected_sop_class_uid, command.affected_sop_instance_uid,
                                 context.transfer_syntax, facts_.calling_ae, facts_.called_ae};
  auto instance = dependencies_.spool.Begin(identity, facts_, id_);
  if (!instance) {
    log::Error("association ", id_, " [", Parties(facts_),
               "]: cannot spool sop=", command.affected_sop_instance_uid, ": ", instance.error());
    message.refusal_status = dimse::status::kOutOfResources;
    message.refusal_comment = instance.error();
    return;
  }
  message.instance = std::move(instance.value());
  message.rules = dependencies_.rules.Current();
}

awaitable<void> AssociationSession::OnDataSetComplete() {
  MessageInProgress message = std::move(*message_);
  message_.reset();
  const dimse::CommandSet& command = *message.command;
  if (command.command_field == dimse::command_field::kCEchoRq) {
    dependencies_.metrics.EchoAnswered();
    co_await Respond(message.context_id, command, message.refusal_status, {});
    co_return;
  }
  std::uint16_t status = message.refusal_status;
  std::string comment = std::move(message.refusal_comment);
  if (message.instance) {
    const std::uint64_t dataset_bytes = message.instance->dataset_bytes();
    spool::CommitOutcome outcome = co_await dependencies_.committer.AsyncCommit(
        std::move(message.instance), std::move(message.rules), asio::use_awaitable);
    status = outcome.status;
    comment = std::move(outcome.error_comment);
    if (!outcome.discarded_by.empty()) {
      log::Info("association ", id_, " [", Parties(facts_),
                "]: sop=", command.affected_sop_instance_uid,
                " acknowledged and discarded by rule ", outcome.discarded_by);
    } else if (status == dimse::status::kSuccess) {
      ++instances_stored_;
      bytes_stored_ += dataset_bytes;
      dependencies_.metrics.InstanceStored(facts_.calling_ae, dataset_bytes);
    }
  }
  if (command.command_field == dimse::command_field::kCStoreRq) {
    dependencies_.metrics.StoreAnswered(status);
    if (status != dimse::status::kSuccess) {
      ++stores_failed_;
      log::Warning("association ", id_, " [", Parties(facts_),
                   "]: C-STORE of sop=", command.affected_sop_instance_uid, " answered ",
                   dimse::FormatStatus(status), ": ", comment);
    }
  }
  co_await Respond(message.context_id, command, status, std::move(comment));
}

awaitable<void> AssociationSession::Respond(std::uint8_t context_id,
                                            const dimse::CommandSet& request, std::uint16_t status,
                                            std::string comment) {
  const std::vector<std::uint8_t> command_bytes =
      dimse::EncodeCommandSet(dimse::MakeResponse(request, status, std::move(comment)));
  std::vector<std::uint8_t> pdus;
  AppendPDataTf(pdus, context_id, true, true, command_bytes, peer_max_pdu_length_);
  co_await Send(std::move(pdus));
}

}  // namespace conduit::net
