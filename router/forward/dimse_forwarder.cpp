#include "router/forward/dimse_forwarder.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <iterator>

#include "codecs/transfer_syntax_registry.h"
#include "router/dimse/status.h"
#include "router/log/log.h"
#include "router/spool/part10_header.h"

namespace conduit::forward {
namespace asio = boost::asio;

namespace {

constexpr std::string_view kStored = "stored";
constexpr std::string_view kVerificationSopClass = "1.2.840.10008.1.1";
constexpr const char* kImplicitLittleEndian = "1.2.840.10008.1.2";
// PS3.8 9.3.2.2 allows 128 presentation contexts; each pair proposes at most two.
constexpr std::size_t kMaxProposedPairs = 60;
// How long an idle lane sleeps when it has no association to watch: Wake() ends it early.
constexpr std::chrono::hours kIdleSleep{1};

// Compressed pixel data, or a deflated dataset: sent as stored unless the destination refuses
// that (then decoded / inflated), rather than offered alongside the uncompressed syntaxes.
bool IsCompressed(const std::string& uid) {
  const codecs::TransferSyntax* syntax = codecs::FindTransferSyntax(uid);
  return syntax && (syntax->encapsulated || syntax->deflated);
}

}  // namespace

DimseForwarder::Lane::Lane(asio::io_context& io)
    : strand(asio::make_strand(io)), wake_timer(strand) {}

DimseForwarder::DimseForwarder(asio::io_context& io, Destination& destination,
                               const config::DestinationConfig& config,
                               PreparationServices& services)
    : io_(io), destination_(destination), config_(config), services_(services) {
  for (std::uint32_t i = 0; i < config.max_associations; ++i) {
    lanes_.push_back(std::make_unique<Lane>(io));
  }
}

DimseForwarder::~DimseForwarder() = default;

void DimseForwarder::Start() {
  destination_.SetWake([this] { Wake(); });
  for (const auto& lane : lanes_) {
    ++running_lanes_;
    asio::co_spawn(lane->strand, RunLane(*lane), asio::detached);
  }
}

void DimseForwarder::Wake() {
  for (const auto& lane : lanes_) {
    asio::post(lane->strand, [&timer = lane->wake_timer] { timer.cancel(); });
  }
}

void DimseForwarder::Stop() {
  stopping_ = true;
  destination_.SetWake({});
  for (const auto& lane : lanes_) {
    // Whatever is being sent is cut off: unconfirmed, it stays owed and goes again later.
    asio::post(lane->strand, [&lane = *lane] {
      lane.wake_timer.cancel();
      if (lane.association) lane.association->Abort();
    });
  }
}

bool DimseForwarder::Stopped() const { return running_lanes_ == 0; }

asio::awaitable<void> DimseForwarder::RunLane(Lane& lane) {
  while (!stopping_) {
    if (destination_.BeginProbe()) {
      co_await Probe(lane);
      continue;
    }
    std::vector<QueuedInstancePtr> batch = destination_.Take();
    if (!batch.empty()) {
      co_await SendBatch(lane, std::move(batch));
      continue;
    }
    const bool open = lane.association && lane.association->is_open();
    if (open && std::chrono::steady_clock::now() - lane.last_used >= config_.idle_timeout) {
      co_await CloseAssociation(lane);
      continue;
    }
    if (open) {
      lane.wake_timer.expires_at(lane.last_used + config_.idle_timeout);
    } else {
      lane.wake_timer.expires_after(kIdleSleep);
    }
    co_await lane.wake_timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (lane.association && lane.association->is_open()) {
    lane.association->Abort();
    destination_.metrics().AssociationClosed();
  }
  lane.association.reset();
  --running_lanes_;
}

asio::awaitable<void> DimseForwarder::SendBatch(Lane& lane, std::vector<QueuedInstancePtr> batch) {
  if (!(lane.association && lane.association->is_open() && Covers(*lane.association, batch))) {
    co_await CloseAssociation(lane);
    if (!co_await OpenFor(lane, batch)) co_return;
  }
  std::deque<QueuedInstancePtr> pending(std::make_move_iterator(batch.begin()),
                                        std::make_move_iterator(batch.end()));
  std::optional<PreparedAhead> ahead;  // pending.front()'s, when it was prepared early
  while (!pending.empty()) {
    if (stopping_ || !lane.association->is_open()) {
      // Cut off (shutdown, or the association broke on the previous instance).
      co_await GiveBack(pending, ahead);
      co_return;
    }
    const QueuedInstancePtr item = std::move(pending.front());
    pending.pop_front();
    std::optional<PreparedAhead> current = std::move(ahead);
    ahead.reset();
    if (pending.empty() && PreparationTarget(*lane.association, *item)) {
      TakeAhead(lane, pending);
    }
    const std::optional<std::string> next_target =
        pending.empty() ? std::nullopt : PreparationTarget(*lane.association, *pending.front());
    bool carry_on = true;
    if (next_target) {
      // The current one is made durable (if it was transcoded) and sent while the pool works on
      // the next: the lane's next pool job starts as soon as this one ends, whatever the disk
      // and the destination take.
      using namespace asio::experimental::awaitable_operators;
      auto [sent, next_dataset] =
          co_await (SendOne(lane, item, current) && PrepareAhead(pending.front(), *next_target));
      carry_on = sent;
      ahead = PreparedAhead{*next_target, std::move(next_dataset)};
    } else {
      carry_on = co_await SendOne(lane, item, current);
    }
    if (!carry_on) {
      co_await GiveBack(pending, ahead);
      co_await CloseAssociation(lane);
      co_return;
    }
  }
  if (config_.max_instances_per_association != 0 &&
      lane.sent_on_association >= config_.max_instances_per_association) {
    co_await CloseAssociation(lane);
  }
}

asio::awaitable<void> DimseForwarder::GiveBack(std::deque<QueuedInstancePtr>& pending,
                                               std::optional<PreparedAhead>& ahead) {
  if (ahead && !ahead->dataset) {
    pending.pop_front();  // dead-lettered: it could not be prepared
  } else if (ahead && !stopping_) {
    // Spooled now, so that the retry sends this copy instead of transcoding again. (At shutdown
    // it is dropped: the restart transcodes it again.)
    co_await Persist(pending.front(), *ahead->dataset);
  }
  if (!pending.empty()) destination_.Return({pending.begin(), pending.end()});
}

void DimseForwarder::TakeAhead(Lane& lane, std::deque<QueuedInstancePtr>& pending) {
  // Room for the current instance and this one on the association.
  const std::uint32_t limit = config_.max_instances_per_association;
  if (stopping_ || (limit != 0 && lane.sent_on_association + 2 > limit)) return;
  std::vector<QueuedInstancePtr> next = destination_.Take();
  if (next.empty()) return;
  if (!Covers(*lane.association, next)) {
    destination_.Return(std::move(next));  // it needs another association: sent as usual
    return;
  }
  pending.insert(pending.end(), std::make_move_iterator(next.begin()),
                 std::make_move_iterator(next.end()));
}

std::optional<std::string> DimseForwarder::PreparationTarget(const net::ScuAssociation& association,
                                                             const QueuedInstance& item) const {
  const auto context = association.FindContext(item.sop_class_uid, Candidates(KeyOf(item)));
  if (!context || GoesAsStored(item, context->transfer_syntax)) return std::nullopt;
  return context->transfer_syntax;
}

bool DimseForwarder::GoesAsStored(const QueuedInstance& item, const std::string& context_syntax) {
  return context_syntax == item.transfer_syntax_uid && item.route.edits.empty() &&
         item.route.transcode_profile.empty();
}

asio::awaitable<bool> DimseForwarder::SendOne(Lane& lane, const QueuedInstancePtr& item,
                                              std::optional<PreparedAhead>& ahead) {
  if (ahead && !ahead->dataset) co_return true;  // it could not be prepared: dead-lettered
  net::ScuAssociation& association = *lane.association;
  const ContextKey key = KeyOf(*item);
  const std::vector<std::string> candidates = Candidates(key);
  const auto context = association.FindContext(item->sop_class_uid, candidates);
  if (!context && key.transcode_profile.empty() && IsCompressed(item->transfer_syntax_uid) &&
      !NeedsDecode(key)) {
    // Refused as stored: offer it decoded on the next association (issue: the pipeline is used
    // when a destination accepts none of the syntaxes the instance is stored in).
    {
      std::lock_guard lock(recent_mutex_);
      decode_keys_.push_back(key);
    }
    destination_.Return({item});
    co_return false;
  }
  if (!context) {
    std::string reason;
    if (!key.transcode_profile.empty() && !services_.Profile(key.transcode_profile)) {
      reason = "transcode profile '" + key.transcode_profile + "' is not in the configuration";
    } else if (!association.AcceptsAbstractSyntax(item->sop_class_uid)) {
      reason = "destination refused SOP class " + item->sop_class_uid +
               " (presentation context rejected)";
    } else if (candidates.empty()) {
      reason = "Conduit cannot produce any transfer syntax offered to this destination from " +
               item->transfer_syntax_uid;
    } else {
      reason = "destination accepts SOP class " + item->sop_class_uid +
               " only in transfer syntaxes other than those offered (" + candidates.front() +
               (candidates.size() > 1 ? ", ..." : "") + ")";
    }
    destination_.Failed(item, DeliveryOutcome::kPermanent, reason);
    co_return true;
  }
  // Streamed straight from the spool when it can be; prepared on the pool otherwise.
  std::optional<PreparedDataset> prepared;
  net::DatasetSource source;
  std::string sop_instance_uid = item->sop_instance_uid;
  if (GoesAsStored(*item, context->transfer_syntax)) {
    auto offset = spool::ReadDatasetOffset(item->file);
    if (!offset) {
      destination_.Failed(item, DeliveryOutcome::kPermanent, offset.error());
      co_return true;
    }
    source = net::FileRange{item->file, offset.value(), item->file_bytes - offset.value()};
  } else {
    if (ahead && ahead->target_uid == context->transfer_syntax) {
      prepared = std::move(ahead->dataset);
      co_await Persist(item, *prepared);  // durable before it is sent
    } else {
      prepared = co_await Prepare(item, context->transfer_syntax);
    }
    if (!prepared) co_return true;  // dead-lettered with the reason
    sop_instance_uid = prepared->sop_instance_uid;
    if (prepared->file.empty()) {
      source = std::span<const std::uint8_t>(prepared->bytes);
    } else {
      source = net::FileRange{prepared->file, prepared->dataset_offset, prepared->dataset_bytes};
    }
  }
  const std::uint64_t bytes_before = association.bytes_sent();
  const auto started = std::chrono::steady_clock::now();
  auto response =
      co_await association.Store(context->id, item->sop_class_uid, sop_instance_uid, source);
  lane.last_used = std::chrono::steady_clock::now();
  ++lane.sent_on_association;
  if (!response) {
    const net::ScuError& error = response.error();
    if (error.kind == net::ScuFailure::kPermanent) {
      destination_.Failed(item, DeliveryOutcome::kPermanent, error.detail);
    } else {
      destination_.Failed(item, DeliveryOutcome::kTransient, error.detail);
      destination_.ConnectionFailed(error.detail);
    }
    if (!association.is_open()) destination_.metrics().AssociationClosed();
    co_return true;
  }
  const double seconds = std::chrono::duration<double>(lane.last_used - started).count();
  destination_.metrics().Sent(response.value().status, seconds,
                              association.bytes_sent() - bytes_before);
  const std::uint16_t status = response.value().status;
  const DeliveryOutcome outcome = ClassifyStoreStatus(status, config_.warning_is_success);
  if (outcome == DeliveryOutcome::kDelivered) {
    destination_.Delivered(item);
    co_return true;
  }
  std::string reason = "C-STORE status " + dimse::FormatStatus(status);
  if (!response.value().error_comment.empty()) reason += ": " + response.value().error_comment;
  destination_.Failed(item, outcome, reason);
  co_return true;
}

asio::awaitable<std::optional<PreparedDataset>> DimseForwarder::Prepare(
    const QueuedInstancePtr& item, const std::string& target_uid) {
  co_return co_await PrepareForDestination(services_, destination_, item, target_uid);
}

asio::awaitable<std::optional<PreparedDataset>> DimseForwarder::PrepareAhead(
    const QueuedInstancePtr& item, const std::string& target_uid) {
  co_return co_await PrepareOnPool(services_, destination_, item, target_uid);
}

asio::awaitable<void> DimseForwarder::Persist(const QueuedInstancePtr& item,
                                              PreparedDataset& prepared) {
  co_await PersistPrepared(services_, destination_, item, prepared);
}

asio::awaitable<bool> DimseForwarder::OpenFor(Lane& lane,
                                              const std::vector<QueuedInstancePtr>& batch) {
  lane.association = std::make_unique<net::ScuAssociation>(lane.strand);
  auto opened = co_await lane.association->Open(Peer(), Proposals(batch));
  if (!opened) {
    const net::ScuError& error = opened.error();
    if (error.kind == net::ScuFailure::kPermanent) {
      // The destination said no for good (e.g. it does not know our AE title): retrying the
      // same association would be refused the same way, so the items go to dead-letter.
      for (const QueuedInstancePtr& item : batch) {
        destination_.Failed(item, DeliveryOutcome::kPermanent, error.detail);
      }
      destination_.ConnectionFailed(error.detail);
    } else {
      destination_.Return(batch);
      destination_.ConnectionFailed(error.detail);
    }
    lane.association.reset();
    co_return false;
  }
  destination_.ConnectionSucceeded();
  destination_.metrics().AssociationOpened();
  lane.sent_on_association = 0;
  lane.last_used = std::chrono::steady_clock::now();
  co_return true;
}

asio::awaitable<void> DimseForwarder::Probe(Lane& lane) {
  co_await CloseAssociation(lane);
  // The lane's own slot, so that Stop() can abort a probe too.
  lane.association = std::make_unique<net::ScuAssociation>(lane.strand);
  net::ScuAssociation& probe = *lane.association;
  std::vector<net::ProposedContext> verification(1);
  verification[0].abstract_syntax = std::string(kVerificationSopClass);
  verification[0].transfer_syntaxes.push_back(kImplicitLittleEndian);
  auto opened = co_await probe.Open(Peer(), std::move(verification));
  if (!opened) {
    lane.association.reset();
    destination_.ConnectionFailed("probe: " + opened.error().detail);
    co_return;
  }
  auto echoed = co_await probe.Echo();
  co_await probe.Release();
  lane.association.reset();
  if (!echoed || echoed.value().status != dimse::status::kSuccess) {
    destination_.ConnectionFailed(
        "probe: " + (echoed ? "C-ECHO status " + dimse::FormatStatus(echoed.value().status)
                            : echoed.error().detail));
    co_return;
  }
  destination_.ConnectionSucceeded();
}

asio::awaitable<void> DimseForwarder::CloseAssociation(Lane& lane) {
  if (!lane.association) co_return;
  if (lane.association->is_open()) {
    co_await lane.association->Release();
    destination_.metrics().AssociationClosed();
  }
  lane.association.reset();
}

bool DimseForwarder::Covers(const net::ScuAssociation& association,
                            const std::vector<QueuedInstancePtr>& batch) const {
  return std::all_of(batch.begin(), batch.end(), [&](const QueuedInstancePtr& item) {
    return association.FindContext(item->sop_class_uid, Candidates(KeyOf(*item))).has_value();
  });
}

DimseForwarder::ContextKey DimseForwarder::KeyOf(const QueuedInstance& item) {
  return {item.sop_class_uid, item.transfer_syntax_uid, item.route.transcode_profile};
}

std::vector<std::string> DimseForwarder::Candidates(const ContextKey& key) const {
  if (!key.transcode_profile.empty()) {
    // The route asked for this encoding: that one only.
    const config::TranscodeProfile* profile = services_.Profile(key.transcode_profile);
    if (!profile || !CanProduce(key.stored_transfer_syntax, profile->transfer_syntax, profile)) {
      return {};
    }
    return {profile->transfer_syntax};
  }
  // A compressed instance is offered as stored, or, once the destination refused that,
  // decoded to the configured uncompressed syntaxes.
  const bool compressed = IsCompressed(key.stored_transfer_syntax);
  const bool decode = compressed && NeedsDecode(key);
  std::vector<std::string> candidates;
  for (const std::string& entry : config_.transfer_syntaxes) {
    const std::string& uid = entry == kStored ? key.stored_transfer_syntax : entry;
    if (!CanProduce(key.stored_transfer_syntax, uid, nullptr)) continue;
    if (compressed && (uid == key.stored_transfer_syntax) == decode) continue;
    if (std::find(candidates.begin(), candidates.end(), uid) == candidates.end()) {
      candidates.push_back(uid);
    }
  }
  return candidates;
}

bool DimseForwarder::NeedsDecode(const ContextKey& key) const {
  std::lock_guard lock(recent_mutex_);
  return std::find(decode_keys_.begin(), decode_keys_.end(), key) != decode_keys_.end();
}

std::vector<net::ProposedContext> DimseForwarder::Proposals(
    const std::vector<QueuedInstancePtr>& batch) {
  std::vector<ContextKey> keys;
  {
    std::lock_guard lock(recent_mutex_);
    for (const QueuedInstancePtr& item : batch) {
      const ContextKey key = KeyOf(*item);
      std::erase(recent_contexts_, key);
      recent_contexts_.push_front(key);
    }
    while (recent_contexts_.size() > kMaxProposedPairs) recent_contexts_.pop_back();
    keys.assign(recent_contexts_.begin(), recent_contexts_.end());
  }
  // The stored syntax in a context of its own, the other candidates in another: a context
  // accepts a single syntax, and the destination must be free to take the stored one.
  std::vector<net::ProposedContext> proposals;
  for (const ContextKey& key : keys) {
    const std::vector<std::string> candidates = Candidates(key);
    std::vector<std::string> others;
    bool offers_stored = false;
    for (const std::string& uid : candidates) {
      if (uid == key.stored_transfer_syntax) {
        offers_stored = true;
      } else {
        others.push_back(uid);
      }
    }
    if (offers_stored) proposals.push_back({key.sop_class_uid, {key.stored_transfer_syntax}});
    if (!others.empty()) proposals.push_back({key.sop_class_uid, others});
    // Nothing producible: propose what is stored anyway, so that the answer tells a refused
    // SOP class from a refused syntax in the dead-letter reason.
    if (candidates.empty()) {
      proposals.push_back({key.sop_class_uid, {key.stored_transfer_syntax}});
    }
  }
  // Several keys can ask for the same context (same SOP class and syntaxes): propose it once.
  std::vector<net::ProposedContext> unique;
  for (net::ProposedContext& proposal : proposals) {
    const bool seen = std::any_of(unique.begin(), unique.end(), [&](const auto& other) {
      return other.abstract_syntax == proposal.abstract_syntax &&
             other.transfer_syntaxes == proposal.transfer_syntaxes;
    });
    if (!seen) unique.push_back(std::move(proposal));
  }
  return unique;
}

net::ScuPeer DimseForwarder::Peer() const {
  net::ScuPeer peer;
  peer.host = config_.host;
  peer.port = config_.port;
  peer.called_ae = config_.called_ae;
  peer.calling_ae = config_.calling_ae;
  peer.max_pdu_bytes = config_.max_pdu_bytes;
  peer.connect_timeout = config_.connect_timeout;
  peer.response_timeout = config_.response_timeout;
  return peer;
}

}  // namespace conduit::forward
