#include "router/net/scu_association.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <exception>

#include "router/dimse/command_set.h"
#include "router/dimse/status.h"
#include "router/io/posix_file.h"
#include "router/net/implementation_identity.h"

namespace conduit::net {
namespace asio = boost::asio;
using asio::awaitable;

namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

constexpr std::string_view kVerificationSopClass = "1.2.840.10008.1.1";
// PS3.8 9.3.2.2: presentation context IDs are odd numbers 1..255, so at most 128 of them.
constexpr std::size_t kMaxProposedContexts = 128;
// An A-ASSOCIATE-AC is a few hundred bytes per context; a megabyte is generous and bounded.
constexpr std::uint32_t kMaxAssociateAcLength = 1 << 20;
// A-ASSOCIATE-RJ, A-RELEASE-RQ/RP and A-ABORT bodies are 4 bytes (PS3.8 9.3.4, 9.3.6-9.3.8).
constexpr std::uint32_t kMaxControlPduLength = 64;
// What we accept of a P-DATA-TF when we advertised no limit: answers are command sets only.
constexpr std::uint32_t kMaxUnlimitedPDataLength = 1 << 20;
// PDUs we send when the peer sets no limit (PS3.8 D.1: 0 means unlimited).
constexpr std::uint32_t kUnlimitedPeerPduCap = 1 << 20;
// Below this a peer's limit cannot carry a command set sensibly; AppendPDataTf needs > 6.
constexpr std::uint32_t kMinPeerPduLength = 64;
// A response command set is a dozen small elements.
constexpr std::size_t kMaxResponseCommandLength = std::size_t{64} * 1024;
// File bytes read per pread(); AppendPDataTf splits each chunk into PDUs within the peer limit.
constexpr std::size_t kFileChunkSize = std::size_t{256} * 1024;
// PS3.7 9.3.1.1: Priority MEDIUM.
constexpr std::uint16_t kPriorityMedium = 0x0000;

// Runs `operation` in a frame whose result is default-constructible, which co_spawn (and so
// the awaitable operators) requires of the value it delivers.
template <typename T>
awaitable<std::optional<T>> AsOptional(awaitable<T> operation) {
  co_return co_await std::move(operation);
}

// PS3.8 9.3.4, Table 9-21.
std::string RejectReasonText(const AssociateRj& rj) {
  switch (rj.source) {
    case RejectSource::kServiceUser:
      switch (rj.reason) {
        case reject_reason::kNoReasonGiven:
          return "no reason given";
        case reject_reason::kApplicationContextNotSupported:
          return "application context name not supported";
        case reject_reason::kCallingAeNotRecognized:
          return "calling AE title not recognized";
        case reject_reason::kCalledAeNotRecognized:
          return "called AE title not recognized";
        default:
          return "reason " + std::to_string(rj.reason) + " (service user)";
      }
    case RejectSource::kServiceProviderAcse:
      if (rj.reason == reject_reason::kProtocolVersionNotSupported) {
        return "protocol version not supported";
      }
      return "no reason given (ACSE)";
    case RejectSource::kServiceProviderPresentation:
      if (rj.reason == reject_reason::kTemporaryCongestion) {
        return "temporary congestion";
      }
      if (rj.reason == reject_reason::kLocalLimitExceeded) {
        return "local limit exceeded";
      }
      return "reason " + std::to_string(rj.reason) + " (presentation)";
  }
  return "reason " + std::to_string(rj.reason);
}

std::string AbortText(ByteView body) {
  auto abort = ParseAbort(body);
  if (!abort) {
    return "association aborted by peer";
  }
  return std::string("association aborted by peer (") +
         (abort->source == AbortSource::kServiceUser ? "service user" : "service provider") +
         ", reason " + std::to_string(static_cast<int>(abort->reason)) + ")";
}

std::string Seconds(std::chrono::seconds timeout) { return std::to_string(timeout.count()) + " s"; }

// Reads exactly `size` bytes at `offset`; an error text otherwise.
std::optional<std::string> ReadExactly(int fd, std::uint8_t* out, std::size_t size,
                                       std::uint64_t offset) {
  while (size > 0) {
    const ssize_t got = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return std::string(std::strerror(errno));
    }
    if (got == 0) {
      return std::string("file ends before the dataset does");
    }
    out += got;
    size -= static_cast<std::size_t>(got);
    offset += static_cast<std::uint64_t>(got);
  }
  return std::nullopt;
}

}  // namespace

ScuAssociation::ScuAssociation(const asio::any_io_executor& executor)
    : executor_(executor), socket_(executor), resolver_(executor) {}

ScuAssociation::~ScuAssociation() { Close(); }

template <typename T>
awaitable<std::optional<T>> ScuAssociation::WithTimeout(awaitable<T> operation,
                                                        std::chrono::seconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  timed_out_ = false;
  auto outcome = co_await (AsOptional(std::move(operation)) || Expire(timeout));
  if (outcome.index() != 0 || timed_out_) {
    co_return std::nullopt;
  }
  co_return std::move(std::get<0>(outcome));
}

awaitable<void> ScuAssociation::Expire(std::chrono::seconds timeout) {
  asio::steady_timer timer(executor_, timeout);
  auto [error] = co_await timer.async_wait(kNoThrow);
  if (error) {
    co_return;  // the operation finished first
  }
  timed_out_ = true;
  // Not every operation honours per-operation cancellation (the resolver does not): cancel
  // the objects themselves so that the operation completes now.
  boost::system::error_code ignored;
  socket_.cancel(ignored);
  resolver_.cancel();
}

awaitable<Result<ScuDone, ScuError>> ScuAssociation::Open(const ScuPeer& peer,
                                                          std::vector<ProposedContext> contexts) {
  auto invalid = [](std::string detail) {
    return ScuError{ScuFailure::kPermanent, std::move(detail)};
  };
  if (open_) {
    co_return invalid("association already open");
  }
  if (peer.host.empty()) {
    co_return invalid("no host to connect to");
  }
  for (const std::string* ae : {&peer.called_ae, &peer.calling_ae}) {
    // PS3.5 6.2: an AE title is 1-16 characters.
    if (ae->empty() || ae->size() > 16) {
      co_return invalid("AE title '" + *ae + "' is not 1-16 characters");
    }
  }
  if (contexts.empty()) {
    co_return invalid("no presentation context to propose");
  }
  if (contexts.size() > kMaxProposedContexts) {
    co_return invalid(std::to_string(contexts.size()) +
                      " presentation contexts proposed, at most 128 fit in an association");
  }
  for (const ProposedContext& context : contexts) {
    if (context.abstract_syntax.empty() || context.transfer_syntaxes.empty()) {
      co_return invalid("presentation context without abstract or transfer syntax");
    }
  }
  peer_ = peer;
  contexts_.clear();
  peer_max_pdu_length_ = 0;
  try {
    auto connected = co_await Connect();
    if (!connected) {
      co_return connected.error();
    }
    co_return co_await Negotiate(std::move(contexts));
  } catch (const std::exception& error) {
    Abort();
    co_return ScuError{ScuFailure::kTransient, std::string("A-ASSOCIATE failed: ") + error.what()};
  }
}

awaitable<Result<ScuDone, ScuError>> ScuAssociation::Connect() {
  const std::string where = peer_.host + ":" + std::to_string(peer_.port);
  auto attempt = [this, &where]() -> awaitable<Result<ScuDone, ScuError>> {
    auto [resolve_error, endpoints] = co_await resolver_.async_resolve(
        peer_.host, std::to_string(peer_.port), asio::ip::resolver_base::numeric_service, kNoThrow);
    if (resolve_error) {
      co_return ScuError{ScuFailure::kTransient,
                         "resolve " + peer_.host + ": " + resolve_error.message()};
    }
    auto [connect_error, endpoint] = co_await asio::async_connect(socket_, endpoints, kNoThrow);
    if (connect_error) {
      co_return ScuError{ScuFailure::kTransient,
                         "connect " + where + ": " + connect_error.message()};
    }
    co_return ScuDone{};
  };
  auto connected = co_await WithTimeout(attempt(), peer_.connect_timeout);
  if (!connected) {
    Close();
    co_return ScuError{ScuFailure::kTransient, "connect " + where + ": no connection within " +
                                                   Seconds(peer_.connect_timeout)};
  }
  if (!*connected) {
    Close();
    co_return connected->error();
  }
  // DIMSE sends small command PDUs and waits for answers: Nagle would hold them ~40 ms.
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  open_ = true;  // the transport, not yet the association: lets Fail() send an A-ABORT
  co_return ScuDone{};
}

awaitable<Result<ScuDone, ScuError>> ScuAssociation::Negotiate(
    std::vector<ProposedContext> contexts) {
  AssociateRq request;
  request.called_ae = peer_.called_ae;
  request.calling_ae = peer_.calling_ae;
  request.application_context = std::string(kDicomApplicationContext);
  request.max_pdu_length = peer_.max_pdu_bytes;
  request.implementation_class_uid = std::string(kImplementationClassUid);
  request.implementation_version_name = std::string(kImplementationVersionName);
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    request.presentation_contexts.push_back({static_cast<std::uint8_t>(2 * i + 1),
                                             std::move(contexts[i].abstract_syntax),
                                             std::move(contexts[i].transfer_syntaxes)});
  }
  send_buffer_ = EncodeAssociateRq(request);
  if (auto written = co_await Write(send_buffer_, "A-ASSOCIATE-RQ"); !written) {
    co_return written.error();
  }

  auto pdu = co_await ReadPdu("A-ASSOCIATE-AC");
  if (!pdu) {
    co_return pdu.error();
  }
  switch (pdu->type) {
    case PduType::kAssociateAc:
      break;
    case PduType::kAssociateRj: {
      auto rejection = ParseAssociateRj(pdu->body);
      Close();  // PS3.8 9.2 (AE-4): the requestor closes the connection after A-ASSOCIATE-RJ
      if (!rejection) {
        co_return ScuError{ScuFailure::kTransient,
                           "malformed A-ASSOCIATE-RJ: " + rejection.error().detail};
      }
      const bool permanent = rejection->result == RejectResult::kPermanent;
      co_return ScuError{permanent ? ScuFailure::kPermanent : ScuFailure::kTransient,
                         std::string("association rejected (") +
                             (permanent ? "permanent" : "transient") +
                             "): " + RejectReasonText(*rejection)};
    }
    case PduType::kAbort: {
      const std::string detail = AbortText(pdu->body) + " during negotiation";
      Close();
      co_return ScuError{ScuFailure::kTransient, detail};
    }
    default:
      co_return Fail("unexpected PDU type " + std::to_string(static_cast<int>(pdu->type)) +
                         " in answer to A-ASSOCIATE-RQ",
                     AbortReason::kUnexpectedPdu);
  }

  auto accepted = ParseAssociateAc(pdu->body);
  if (!accepted) {
    co_return Fail("malformed A-ASSOCIATE-AC: " + accepted.error().detail, accepted.error().reason);
  }
  if (accepted->max_pdu_length != 0 && accepted->max_pdu_length < kMinPeerPduLength) {
    co_return Fail(
        "peer's maximum PDU length " + std::to_string(accepted->max_pdu_length) + " is too small",
        AbortReason::kInvalidPduParameterValue);
  }
  peer_max_pdu_length_ =
      accepted->max_pdu_length == 0 ? kUnlimitedPeerPduCap : accepted->max_pdu_length;
  for (const PresentationContextAc& answer : accepted->presentation_contexts) {
    if (answer.result != ContextResult::kAcceptance) {
      continue;
    }
    // PS3.8 9.3.3.2: the acceptor picks one of the transfer syntaxes proposed for the context.
    // A context answered with an ID or syntax we never proposed is not one we can use.
    const auto proposed =
        std::find_if(request.presentation_contexts.begin(), request.presentation_contexts.end(),
                     [&](const PresentationContextRq& rq) { return rq.id == answer.id; });
    if (proposed == request.presentation_contexts.end()) {
      continue;
    }
    if (std::find(proposed->transfer_syntaxes.begin(), proposed->transfer_syntaxes.end(),
                  answer.transfer_syntax) == proposed->transfer_syntaxes.end()) {
      continue;
    }
    if (std::any_of(contexts_.begin(), contexts_.end(),
                    [&](const Context& known) { return known.id == answer.id; })) {
      continue;
    }
    contexts_.push_back({answer.id, proposed->abstract_syntax, answer.transfer_syntax});
  }
  co_return ScuDone{};
}

std::optional<ScuAssociation::AcceptedContext> ScuAssociation::FindContext(
    std::string_view abstract_syntax, std::span<const std::string> transfer_syntaxes) const {
  for (const std::string& syntax : transfer_syntaxes) {
    for (const Context& context : contexts_) {
      if (context.abstract_syntax == abstract_syntax && context.transfer_syntax == syntax) {
        return AcceptedContext{context.id, context.transfer_syntax};
      }
    }
  }
  return std::nullopt;
}

bool ScuAssociation::AcceptsAbstractSyntax(std::string_view abstract_syntax) const {
  return std::any_of(contexts_.begin(), contexts_.end(), [&](const Context& context) {
    return context.abstract_syntax == abstract_syntax;
  });
}

awaitable<Result<DimseResponse, ScuError>> ScuAssociation::Store(std::uint8_t context_id,
                                                                 std::string_view sop_class_uid,
                                                                 std::string_view sop_instance_uid,
                                                                 const DatasetSource& dataset) {
  if (!open_) {
    co_return ScuError{ScuFailure::kTransient, "association is not open"};
  }
  const auto context = std::find_if(contexts_.begin(), contexts_.end(),
                                    [&](const Context& known) { return known.id == context_id; });
  if (context == contexts_.end()) {
    co_return ScuError{ScuFailure::kPermanent,
                       "presentation context " + std::to_string(context_id) + " was not accepted"};
  }
  if (context->abstract_syntax != sop_class_uid) {
    co_return ScuError{ScuFailure::kPermanent,
                       "SOP class " + std::string(sop_class_uid) + " does not match context " +
                           std::to_string(context_id) + " (" + context->abstract_syntax + ")"};
  }
  try {
    int fd = -1;
    if (const auto* range = std::get_if<FileRange>(&dataset)) {
      fd = ::open(range->path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        co_return ScuError{ScuFailure::kPermanent,
                           "spool file " + range->path.string() + ": " + std::strerror(errno)};
      }
    }
    const io::FileDescriptor file(fd);
    if (const auto* range = std::get_if<FileRange>(&dataset)) {
      struct stat status {};
      if (::fstat(fd, &status) != 0) {
        co_return ScuError{ScuFailure::kPermanent,
                           "spool file " + range->path.string() + ": " + std::strerror(errno)};
      }
      const auto size = static_cast<std::uint64_t>(status.st_size);
      if (range->offset > size || range->length > size - range->offset) {
        co_return ScuError{ScuFailure::kPermanent,
                           "spool file " + range->path.string() + ": " + std::to_string(size) +
                               " bytes, shorter than the dataset's end at " +
                               std::to_string(range->offset + range->length)};
      }
    }

    const std::uint16_t message_id = NextMessageId();
    dimse::CommandSet command;
    command.command_field = dimse::command_field::kCStoreRq;
    command.message_id = message_id;
    command.affected_sop_class_uid = std::string(sop_class_uid);
    command.affected_sop_instance_uid = std::string(sop_instance_uid);
    command.priority = kPriorityMedium;
    command.data_set_type = dimse::kDataSetPresent;
    send_buffer_.clear();
    AppendPDataTf(send_buffer_, context_id, true, true, dimse::EncodeCommandSet(command),
                  peer_max_pdu_length_);
    if (auto sent = co_await SendDataset(context_id, dataset, fd); !sent) {
      co_return sent.error();
    }
    co_return co_await AwaitResponse(context_id, dimse::command_field::kCStoreRsp, message_id,
                                     "C-STORE-RSP");
  } catch (const std::exception& error) {
    Abort();
    co_return ScuError{ScuFailure::kTransient, std::string("C-STORE failed: ") + error.what()};
  }
}

awaitable<Result<ScuDone, ScuError>> ScuAssociation::SendDataset(std::uint8_t context_id,
                                                                 const DatasetSource& dataset,
                                                                 int file) {
  const auto* range = std::get_if<FileRange>(&dataset);
  const std::span<const std::uint8_t> memory =
      range ? std::span<const std::uint8_t>{} : std::get<std::span<const std::uint8_t>>(dataset);
  const std::uint64_t total = range ? range->length : memory.size();
  if (range && !file_chunk_) {
    file_chunk_.reset(new std::uint8_t[kFileChunkSize]);
  }
  std::uint64_t done = 0;
  // One pass per chunk even for an empty dataset: PS3.8 E.2 wants its last fragment sent.
  do {
    const std::size_t size = static_cast<std::size_t>(
        std::min<std::uint64_t>(total - done, range ? kFileChunkSize : kFileChunkSize * 4));
    ByteView chunk;
    if (range) {
      if (auto error = ReadExactly(file, file_chunk_.get(), size, range->offset + done)) {
        const std::string detail = "spool file " + range->path.string() + ": " + *error;
        // Nothing has gone out yet on the first chunk: the association stays usable.
        if (done != 0) {
          Abort();
        }
        co_return ScuError{ScuFailure::kPermanent, detail};
      }
      chunk = ByteView(file_chunk_.get(), size);
    } else {
      chunk = memory.subspan(static_cast<std::size_t>(done), size);
    }
    const bool last = done + size == total;
    AppendPDataTf(send_buffer_, context_id, false, last, chunk, peer_max_pdu_length_);
    if (auto written = co_await Write(send_buffer_, "dataset"); !written) {
      co_return written.error();
    }
    send_buffer_.clear();
    done += size;
    bytes_sent_ += size;
  } while (done < total);
  co_return ScuDone{};
}

awaitable<Result<DimseResponse, ScuError>> ScuAssociation::Echo() {
  if (!open_) {
    co_return ScuError{ScuFailure::kTransient, "association is not open"};
  }
  const auto context = std::find_if(contexts_.begin(), contexts_.end(), [](const Context& known) {
    return known.abstract_syntax == kVerificationSopClass;
  });
  if (context == contexts_.end()) {
    co_return ScuError{ScuFailure::kPermanent, "peer did not accept the Verification SOP class"};
  }
  try {
    const std::uint16_t message_id = NextMessageId();
    dimse::CommandSet command;
    command.command_field = dimse::command_field::kCEchoRq;
    command.message_id = message_id;
    command.affected_sop_class_uid = std::string(kVerificationSopClass);
    command.data_set_type = dimse::kNoDataSet;
    send_buffer_.clear();
    AppendPDataTf(send_buffer_, context->id, true, true, dimse::EncodeCommandSet(command),
                  peer_max_pdu_length_);
    if (auto written = co_await Write(send_buffer_, "C-ECHO-RQ"); !written) {
      co_return written.error();
    }
    co_return co_await AwaitResponse(context->id, dimse::command_field::kCEchoRsp, message_id,
                                     "C-ECHO-RSP");
  } catch (const std::exception& error) {
    Abort();
    co_return ScuError{ScuFailure::kTransient, std::string("C-ECHO failed: ") + error.what()};
  }
}

awaitable<Result<DimseResponse, ScuError>> ScuAssociation::AwaitResponse(
    std::uint8_t context_id, std::uint16_t command_field, std::uint16_t message_id,
    std::string_view name) {
  std::vector<std::uint8_t> command_bytes;
  for (;;) {
    auto pdu = co_await ReadPdu(name);
    if (!pdu) {
      co_return pdu.error();
    }
    switch (pdu->type) {
      case PduType::kPDataTf:
        break;
      case PduType::kAbort: {
        const std::string detail = AbortText(pdu->body) + " while awaiting " + std::string(name);
        Close();
        co_return ScuError{ScuFailure::kTransient, detail};
      }
      case PduType::kReleaseRq:
        co_return Fail("peer requested release while awaiting " + std::string(name),
                       AbortReason::kUnexpectedPdu);
      default:
        co_return Fail("unexpected PDU type " + std::to_string(static_cast<int>(pdu->type)) +
                           " while awaiting " + std::string(name),
                       AbortReason::kUnexpectedPdu);
    }
    pdvs_.clear();
    if (auto error = ParsePDataTf(pdu->body, pdvs_)) {
      co_return Fail(error->detail, error->reason);
    }
    for (std::size_t i = 0; i < pdvs_.size(); ++i) {
      const Pdv& pdv = pdvs_[i];
      if (pdv.context_id != context_id || !pdv.is_command) {
        co_return Fail("unexpected " + std::string(pdv.is_command ? "command" : "dataset") +
                           " fragment on context " + std::to_string(pdv.context_id) +
                           " while awaiting " + std::string(name),
                       AbortReason::kUnexpectedPduParameter);
      }
      if (command_bytes.size() + pdv.data.size() > kMaxResponseCommandLength) {
        co_return Fail(std::string(name) + " longer than 64 KiB",
                       AbortReason::kInvalidPduParameterValue);
      }
      command_bytes.insert(command_bytes.end(), pdv.data.begin(), pdv.data.end());
      if (!pdv.is_last_fragment) {
        continue;
      }
      if (i + 1 != pdvs_.size()) {
        co_return Fail("PDVs after the end of " + std::string(name),
                       AbortReason::kUnexpectedPduParameter);
      }
      auto response = dimse::ParseCommandSet(command_bytes);
      if (!response) {
        co_return Fail("malformed " + std::string(name) + ": " + response.error(),
                       AbortReason::kInvalidPduParameterValue);
      }
      if (response->command_field != command_field) {
        co_return Fail("command field " + dimse::FormatStatus(response->command_field) + " where " +
                           std::string(name) + " was expected",
                       AbortReason::kUnexpectedPduParameter);
      }
      // PS3.7 9.3.1.2: the response names the request it answers.
      if (response->message_id_being_responded_to != message_id) {
        co_return Fail(std::string(name) + " answers message " +
                           std::to_string(response->message_id_being_responded_to.value_or(0)) +
                           ", not " + std::to_string(message_id),
                       AbortReason::kInvalidPduParameterValue);
      }
      if (!response->status || response->has_data_set()) {
        co_return Fail(std::string(name) + " without Status or with a dataset",
                       AbortReason::kInvalidPduParameterValue);
      }
      co_return DimseResponse{*response->status, std::move(response->error_comment)};
    }
  }
}

awaitable<void> ScuAssociation::Release() {
  if (!open_) {
    co_return;
  }
  try {
    send_buffer_ = EncodeReleaseRq();
    if (!co_await Write(send_buffer_, "A-RELEASE-RQ")) co_return;
    for (;;) {
      auto pdu = co_await ReadPdu("A-RELEASE-RP");
      if (!pdu) {
        co_return;  // already aborted or closed
      }
      switch (pdu->type) {
        case PduType::kReleaseRp:
          Close();  // PS3.8 9.2 (AR-3): the requestor closes the connection
          co_return;
        case PduType::kReleaseRq:
          // PS3.8 9.2.2: release collision; the requestor answers first, then awaits its RP.
          send_buffer_ = EncodeReleaseRp();
          if (!co_await Write(send_buffer_, "A-RELEASE-RP")) co_return;
          break;
        case PduType::kPDataTf:
          break;  // PS3.8 9.2 (Sta7): data may still arrive; nothing is outstanding
        case PduType::kAbort:
          Close();
          co_return;
        default:
          Fail("unexpected PDU during release", AbortReason::kUnexpectedPdu);
          co_return;
      }
    }
  } catch (const std::exception&) {
    Abort();
  }
}

awaitable<Result<ScuAssociation::ReceivedPdu, ScuError>> ScuAssociation::ReadPdu(
    std::string_view awaiting) {
  auto read = co_await WithTimeout(ReadPduUntimed(), peer_.response_timeout);
  if (!read) {
    // PS3.8 9.1.5: the requestor aborts when its timer expires.
    co_return Fail("no " + std::string(awaiting) + " within " + Seconds(peer_.response_timeout));
  }
  if (!*read) {
    ReadFault fault = read->error();
    fault.detail += " while awaiting " + std::string(awaiting);
    if (fault.protocol) {
      co_return Fail(std::move(fault.detail), *fault.protocol);
    }
    Close();
    co_return ScuError{ScuFailure::kTransient, std::move(fault.detail)};
  }
  co_return read->value();
}

awaitable<Result<ScuAssociation::ReceivedPdu, ScuAssociation::ReadFault>>
ScuAssociation::ReadPduUntimed() {
  auto transport = [this](const boost::system::error_code& error, bool inside) {
    if (!open_) {
      return ReadFault{"association closed locally", std::nullopt};
    }
    if (error == asio::error::eof) {
      return ReadFault{
          inside ? "connection closed by peer inside a PDU" : "connection closed by peer",
          std::nullopt};
    }
    return ReadFault{"read failed: " + error.message(), std::nullopt};
  };
  std::array<std::uint8_t, kPduHeaderSize> header_bytes{};
  auto [header_error, header_read] =
      co_await asio::async_read(socket_, asio::buffer(header_bytes), kNoThrow);
  if (header_error) {
    co_return transport(header_error, false);
  }
  const PduHeader header = DecodePduHeader(header_bytes);
  std::uint32_t limit = 0;
  switch (static_cast<PduType>(header.type)) {
    case PduType::kAssociateAc:
      limit = kMaxAssociateAcLength;
      break;
    case PduType::kPDataTf:
      limit = peer_.max_pdu_bytes == 0 ? kMaxUnlimitedPDataLength : peer_.max_pdu_bytes;
      break;
    case PduType::kAssociateRq:
    case PduType::kAssociateRj:
    case PduType::kReleaseRq:
    case PduType::kReleaseRp:
    case PduType::kAbort:
      limit = kMaxControlPduLength;
      break;
    default:
      co_return ReadFault{"unknown PDU type " + std::to_string(header.type),
                          AbortReason::kUnrecognizedPdu};
  }
  if (header.length > limit) {
    co_return ReadFault{"PDU type " + std::to_string(header.type) + " of " +
                            std::to_string(header.length) + " bytes exceeds the limit of " +
                            std::to_string(limit),
                        AbortReason::kInvalidPduParameterValue};
  }
  if (header.length > receive_capacity_) {
    receive_buffer_.reset(new std::uint8_t[header.length]);  // default-initialised: no memset
    receive_capacity_ = header.length;
  }
  auto [body_error, body_read] = co_await asio::async_read(
      socket_, asio::buffer(receive_buffer_.get(), header.length), kNoThrow);
  if (body_error) {
    co_return transport(body_error, true);
  }
  co_return ReceivedPdu{static_cast<PduType>(header.type),
                        ByteView(receive_buffer_.get(), header.length)};
}

awaitable<Result<ScuDone, ScuError>> ScuAssociation::Write(ByteView bytes, std::string_view what) {
  auto written = co_await WithTimeout(WriteUntimed(bytes), peer_.response_timeout);
  if (!written) {
    co_return Fail("writing " + std::string(what) + " stalled for " +
                   Seconds(peer_.response_timeout));
  }
  if (!*written) {
    Close();
    co_return ScuError{ScuFailure::kTransient,
                       "writing " + std::string(what) + ": " + written->error().detail};
  }
  co_return ScuDone{};
}

awaitable<Result<ScuDone, ScuError>> ScuAssociation::WriteUntimed(ByteView bytes) {
  if (!open_) {
    co_return ScuError{ScuFailure::kTransient, "association closed locally"};
  }
  writing_ = true;
  auto [error, written] = co_await asio::async_write(socket_, asio::buffer(bytes), kNoThrow);
  // After a failed or cancelled write the stream may end inside a PDU: writing_ stays set so
  // that no A-ABORT is appended to half a PDU.
  if (error) {
    co_return ScuError{ScuFailure::kTransient, error.message()};
  }
  writing_ = false;
  co_return ScuDone{};
}

std::uint16_t ScuAssociation::NextMessageId() {
  const std::uint16_t id = next_message_id_;
  next_message_id_ = next_message_id_ == 0xFFFF ? 1 : next_message_id_ + 1;
  return id;
}

ScuError ScuAssociation::Fail(std::string detail, AbortReason reason) {
  SendAbortAndClose({AbortSource::kServiceProvider, reason});
  return ScuError{ScuFailure::kTransient, std::move(detail)};
}

void ScuAssociation::Abort() {
  SendAbortAndClose({AbortSource::kServiceUser, AbortReason::kNotSpecified});
}

void ScuAssociation::SendAbortAndClose(const net::Abort& abort) {
  if (open_ && !writing_) {
    // Best effort and without blocking: the peer may be gone or not reading (PS3.8 9.2, AA-1).
    boost::system::error_code ignored;
    socket_.non_blocking(true, ignored);
    asio::write(socket_, asio::buffer(EncodeAbort(abort)), ignored);
  }
  Close();
}

void ScuAssociation::Close() {
  open_ = false;
  writing_ = false;
  contexts_.clear();
  boost::system::error_code ignored;
  resolver_.cancel();
  if (socket_.is_open()) {
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
}

}  // namespace conduit::net
