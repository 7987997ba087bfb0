#include "router/forward/preparation.h"

#include <utility>

#include "codecs/transfer_syntax_registry.h"
#include "router/log/log.h"

namespace conduit::forward {
namespace asio = boost::asio;

const config::TranscodeProfile* PreparationServices::Profile(const std::string& name) const {
  if (name.empty()) return nullptr;
  for (const config::TranscodeProfile& profile : profiles) {
    if (profile.name == name) return &profile;
  }
  return nullptr;
}

asio::awaitable<std::optional<PreparedDataset>> PrepareOnPool(PreparationServices& services,
                                                              Destination& destination,
                                                              const QueuedInstancePtr& item,
                                                              const std::string& target_uid) {
  const config::TranscodeProfile* profile = services.Profile(item->route.transcode_profile);
  const DatasetPreparer& preparer = services.preparer;
  const std::string destination_name = destination.name();
  // A named job, not a temporary in the co_await expression: GCC 12 destroys such temporaries
  // twice when the coroutine resumes on another thread.
  auto job = [&preparer, item, destination_name, target_uid, profile] {
    return preparer.Prepare(*item, destination_name, target_uid, profile);
  };
  auto prepared = co_await services.pool.Run(std::move(job));
  const codecs::TransferSyntax* stored = codecs::FindTransferSyntax(item->transfer_syntax_uid);
  const codecs::TransferSyntax* target = codecs::FindTransferSyntax(target_uid);
  const bool transcoding = target_uid != item->transfer_syntax_uid && stored && target &&
                           (stored->encapsulated || target->encapsulated);
  if (!prepared) {
    if (transcoding) {
      services.metrics.Transcoded(item->transfer_syntax_uid, target_uid, "failed");
    }
    destination.Failed(item, DeliveryOutcome::kPermanent,
                       (transcoding ? "transcoding to " + target_uid + " failed: "
                                    : std::string("preparing the dataset failed: ")) +
                           prepared.error());
    co_return std::nullopt;
  }
  if (const auto& outcome = prepared->transcode) {
    services.metrics.Transcoded(item->transfer_syntax_uid, target_uid, "ok");
    services.metrics.Frames(outcome->frames, outcome->decode_seconds + outcome->encode_seconds,
                            outcome->encoded_bytes ? static_cast<double>(outcome->native_bytes) /
                                                         static_cast<double>(outcome->encoded_bytes)
                                                   : 0.0);
    if (outcome->lossy) {
      log::Info("destination ", destination_name, ": lossy ", target_uid, " copy of ",
                outcome->original_sop_instance_uid, " is the new instance ",
                outcome->sop_instance_uid);
    }
  }
  co_return std::move(prepared.value());
}

asio::awaitable<void> PersistPrepared(PreparationServices& services, Destination& destination,
                                      const QueuedInstancePtr& item, PreparedDataset& prepared) {
  if (!prepared.needs_persisting) co_return;
  const DatasetPreparer& preparer = services.preparer;
  const std::string destination_name = destination.name();
  auto persist = [&preparer, item, destination_name, dataset = std::move(prepared)]() mutable {
    if (const std::optional<std::string> error =
            preparer.Persist(*item, destination_name, dataset)) {
      log::Warning("destination ", destination_name, ": transcoded copy of ",
                   item->sop_instance_uid, " not spooled (sent from memory): ", *error);
    }
    return std::move(dataset);
  };
  prepared = co_await services.pool.RunDiskWork(std::move(persist));
}

asio::awaitable<std::optional<PreparedDataset>> PrepareForDestination(
    PreparationServices& services, Destination& destination, const QueuedInstancePtr& item,
    const std::string& target_uid) {
  std::optional<PreparedDataset> prepared =
      co_await PrepareOnPool(services, destination, item, target_uid);
  // Made durable before it is sent, so that a retry (even after a restart) reuses it.
  if (prepared) co_await PersistPrepared(services, destination, item, *prepared);
  co_return prepared;
}

}  // namespace conduit::forward
