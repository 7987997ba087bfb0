#include "router/forward/forwarding_service.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstdio>
#include <set>
#include <sstream>

#include "router/forward/archive_forwarder.h"
#include "router/forward/folder_sender.h"
#include "router/forward/object_key.h"
#include "router/forward/s3_sender.h"
#include "router/forward/stow_sender.h"
#include "router/log/log.h"
#include "router/spool/header_reader.h"
#include "router/spool/spool_usage.h"

namespace conduit::forward {
namespace {

constexpr std::chrono::milliseconds kTickInterval{200};
constexpr std::uint64_t kTicksPerExpirySweep = 25;  // every 5 s
constexpr std::chrono::seconds kHousekeepingInterval{1};
constexpr std::size_t kShowLimit = 50;
constexpr const char* kJournalExtension = ".journal";

std::string FormatAge(std::chrono::system_clock::duration age) {
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(age).count();
  if (seconds < 0) seconds = 0;
  char text[32];
  if (seconds < 120) {
    std::snprintf(text, sizeof text, "%llds", static_cast<long long>(seconds));
  } else if (seconds < 7200) {
    std::snprintf(text, sizeof text, "%lldm", static_cast<long long>(seconds / 60));
  } else if (seconds < 172800) {
    std::snprintf(text, sizeof text, "%lldh", static_cast<long long>(seconds / 3600));
  } else {
    std::snprintf(text, sizeof text, "%lldd", static_cast<long long>(seconds / 86400));
  }
  return text;
}

std::string StateName(const Destination& destination, const QueueStatus& status) {
  if (!destination.config()) return "not-configured";
  if (status.circuit != CircuitState::kClosed) return CircuitStateName(status.circuit);
  if (status.paused_until && *status.paused_until > Clock::now()) return "paused";
  return status.owed() > 0 ? "sending" : "idle";
}

admin::AdminReply Error(std::string text) { return admin::AdminReply{false, std::move(text)}; }

}  // namespace

ForwardingService::ForwardingService(const config::Config& config,
                                     const std::filesystem::path& committed_directory,
                                     spool::SpoolUsage& usage, boost::asio::io_context& io,
                                     metrics::ForwardMetrics& metrics,
                                     metrics::TranscodeMetrics& transcode_metrics)
    : config_(config),
      committed_directory_(committed_directory),
      journal_directory_(config.spool.directory / "queues"),
      usage_(usage),
      io_(io),
      metrics_(metrics),
      pool_(config.transcoding.threads != 0 ? config.transcoding.threads
                                            : std::max(1U, std::thread::hardware_concurrency()),
            transcode_metrics),
      preparer_(config.spool.directory),
      preparation_{config.transcoding.profiles, pool_, preparer_, transcode_metrics},
      tick_strand_(boost::asio::make_strand(io)),
      tick_timer_(tick_strand_) {
  std::filesystem::create_directories(journal_directory_);
  for (const config::DestinationConfig& destination : config.destinations) {
    DestinationNamed(destination.name);
  }
}

ForwardingService::~ForwardingService() {
  // Jobs on the pool use the preparer and the items; they finish before either goes.
  pool_.Join();
  {
    std::lock_guard lock(housekeeping_mutex_);
    housekeeping_stop_ = true;
  }
  housekeeping_wake_.notify_all();
  if (housekeeping_.joinable()) housekeeping_.join();
  forwarders_.clear();
  RunHousekeepingOnce();
}

Destination& ForwardingService::DestinationNamed(const std::string& name) {
  std::lock_guard lock(destinations_mutex_);
  auto found = destinations_.find(name);
  if (found != destinations_.end()) return *found->second;
  const config::DestinationConfig* configured = nullptr;
  for (const config::DestinationConfig& destination : config_.destinations) {
    if (destination.name == name) configured = &destination;
  }
  // Names come from the configuration or from spool records our rules wrote, which the rules
  // loader only accepted as configured destination names: plain file names either way.
  auto journal = DeliveryJournal::Open(journal_directory_ / (name + kJournalExtension));
  if (!journal) throw std::runtime_error(journal.error());
  auto destination = std::make_unique<Destination>(
      name, configured, std::move(journal.value()), metrics_.ForDestination(configured, name),
      [this](const std::string& spool_id) { Settled(spool_id); });
  return *destinations_.emplace(name, std::move(destination)).first->second;
}

std::vector<QueuedInstancePtr> ForwardingService::ItemsFor(const spool::SpoolRecord& record,
                                                           const std::filesystem::path& file,
                                                           std::uint64_t file_bytes) const {
  std::vector<QueuedInstancePtr> items;
  for (const rules::Route& route : record.routes) {
    auto item = std::make_shared<QueuedInstance>();
    item->spool_id = record.spool_id;
    item->file = file;
    item->file_bytes = file_bytes;
    item->sop_class_uid = record.sop_class_uid;
    item->sop_instance_uid = record.sop_instance_uid;
    item->transfer_syntax_uid = record.transfer_syntax_uid;
    item->study_instance_uid = record.study_instance_uid;
    item->series_instance_uid = record.series_instance_uid;
    item->received_at = record.facts.received_at;
    item->route = route;
    items.push_back(std::move(item));
  }
  return items;
}

ForwardRecoverySummary ForwardingService::Recover() {
  ForwardRecoverySummary summary;
  std::set<std::string> spooled_ids;
  for (const auto& entry : std::filesystem::directory_iterator(committed_directory_)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".dcm") continue;
    const std::string id = entry.path().stem().string();
    spooled_ids.insert(id);
    auto header = spool::InstanceHeader::Read(entry.path());
    std::optional<spool::SpoolRecord> record;
    if (header) record = spool::ParseSpoolRecord(header.value()->private_information());
    if (!record || record->spool_id != id) {
      log::Error("spool file ", entry.path().string(),
                 " has no readable spool record; kept, not forwarded");
      ++summary.unreadable;
      continue;
    }
    if (record->routes.empty()) {
      ++summary.unrouted;
      continue;
    }
    SpooledFile file{entry.path(), entry.file_size(), 0, {}};
    for (const rules::Route& route : record->routes) file.destinations.push_back(route.destination);
    for (QueuedInstancePtr& item : ItemsFor(*record, entry.path(), file.bytes)) {
      Destination& destination = DestinationNamed(item->route.destination);
      const auto& states = destination.journal().recovered();
      const auto state = states.find(id);
      if (state != states.end() && (state->second.delivered || state->second.purged)) continue;
      ++file.destinations_owing;
      if (state != states.end() && state->second.dead_lettered) {
        item->dead_letter_reason = state->second.reason;
        destination.AddDeadLetter(std::move(item));
        ++summary.dead_lettered;
        continue;
      }
      if (state != states.end() && state->second.attempted) {
        item->maybe_delivered_before = true;
        ++summary.maybe_delivered;
      }
      const Clock::time_point arrival = item->received_at;
      destination.Add(std::move(item), arrival);
      ++summary.queued;
    }
    std::lock_guard lock(files_mutex_);
    if (file.destinations_owing == 0) {
      to_release_.push_back(std::move(file));
      ++summary.released;
    } else {
      files_.emplace(id, std::move(file));
    }
  }
  preparer_.RemoveOrphans([&](const std::string& id) { return spooled_ids.contains(id); });
  std::lock_guard lock(destinations_mutex_);
  for (auto& [name, destination] : destinations_) {
    if (const std::error_code error = destination->journal().Compact(
            [&](const std::string& id) { return spooled_ids.contains(id); })) {
      log::Warning("cannot compact ", destination->journal().path().string(), ": ",
                   error.message());
    }
    if (!destination->config()) {
      const QueueStatus status = destination->Status();
      log::Warning("destination '", name, "' is not in the configuration but ",
                   status.owed() + status.dead_letter,
                   " spooled instances are routed to it; they are kept (see `conduit queue "
                   "show ",
                   name, "`; purge them or configure the destination again)");
    }
  }
  return summary;
}

std::unique_ptr<Forwarder> ForwardingService::MakeForwarder(
    Destination& destination, const config::DestinationConfig& config) {
  using config::DestinationKind;
  if (config.kind == DestinationKind::kDimse) {
    return std::make_unique<DimseForwarder>(io_, destination, config, preparation_);
  }
  const auto count_response = [&metrics = destination.metrics()](long status) {
    metrics.HttpAnswered(status);
  };
  ArchiveSenderFactory make_sender;
  unsigned workers = config.http.parallel_requests;
  // The template was checked when the configuration was loaded.
  auto key_template = KeyTemplate::Parse(config.key_template);
  switch (config.kind) {
    case DestinationKind::kStow:
      make_sender = [&config, count_response](const std::atomic<bool>& cancel) {
        return std::make_unique<StowSender>(config, cancel, count_response);
      };
      break;
    case DestinationKind::kS3:
      make_sender = [&config, count_response,
                     key = key_template.value()](const std::atomic<bool>& cancel) {
        return std::make_unique<S3Sender>(config, key, cancel, count_response);
      };
      break;
    case DestinationKind::kFolder:
      // One writer: each file costs two flushes, and more writers only queue at the disk.
      workers = 1;
      make_sender = [&config, key = key_template.value()](const std::atomic<bool>&) {
        return std::make_unique<FolderSender>(config.folder, key);
      };
      break;
    case DestinationKind::kDimse:
      break;
  }
  return std::make_unique<ArchiveForwarder>(io_, destination, config, preparation_,
                                            std::move(make_sender), workers);
}

void ForwardingService::Start() {
  {
    std::lock_guard lock(destinations_mutex_);
    for (auto& [name, destination] : destinations_) {
      if (!destination->config()) continue;
      forwarders_.push_back(MakeForwarder(*destination, *destination->config()));
    }
  }
  for (const auto& forwarder : forwarders_) forwarder->Start();
  boost::asio::post(tick_strand_, [this] { ScheduleTick(); });
  housekeeping_ = std::thread([this] { RunHousekeeping(); });
}

void ForwardingService::Stop() {
  for (const auto& forwarder : forwarders_) forwarder->Stop();
  boost::asio::post(tick_strand_, [this] {
    stopping_ = true;
    tick_timer_.cancel();
  });
}

bool ForwardingService::Stopped() const {
  return std::all_of(forwarders_.begin(), forwarders_.end(),
                     [](const auto& forwarder) { return forwarder->Stopped(); });
}

void ForwardingService::Enqueue(const spool::SpoolRecord& record, std::uint64_t file_bytes) {
  if (record.routes.empty()) return;
  const std::filesystem::path file = committed_directory_ / (record.spool_id + ".dcm");
  std::vector<QueuedInstancePtr> items = ItemsFor(record, file, file_bytes);
  {
    std::lock_guard lock(files_mutex_);
    SpooledFile spooled{file, file_bytes, items.size(), {}};
    for (const rules::Route& route : record.routes)
      spooled.destinations.push_back(route.destination);
    files_.emplace(record.spool_id, std::move(spooled));
  }
  const Clock::time_point now = Clock::now();
  for (QueuedInstancePtr& item : items) {
    DestinationNamed(item->route.destination).Add(std::move(item), now);
  }
}

void ForwardingService::Settled(const std::string& spool_id) {
  std::lock_guard lock(files_mutex_);
  journals_need_clearing_ = true;
  auto found = files_.find(spool_id);
  if (found == files_.end() || --found->second.destinations_owing > 0) return;
  to_release_.push_back(std::move(found->second));
  files_.erase(found);
}

void ForwardingService::ScheduleTick() {
  if (stopping_) return;
  const bool sweep = ++ticks_ % kTicksPerExpirySweep == 0;
  {
    std::lock_guard lock(destinations_mutex_);
    for (auto& [name, destination] : destinations_) destination->Tick(sweep);
  }
  tick_timer_.expires_after(kTickInterval);
  tick_timer_.async_wait([this](const boost::system::error_code& error) {
    if (!error) ScheduleTick();
  });
}

void ForwardingService::RunHousekeeping() {
  std::unique_lock lock(housekeeping_mutex_);
  while (!housekeeping_stop_) {
    housekeeping_wake_.wait_for(lock, kHousekeepingInterval);
    lock.unlock();
    RunHousekeepingOnce();
    lock.lock();
  }
}

void ForwardingService::RunHousekeepingOnce() {
  {
    std::lock_guard lock(destinations_mutex_);
    for (auto& [name, destination] : destinations_) destination->SyncJournal();
  }
  std::vector<SpooledFile> released;
  {
    std::lock_guard lock(files_mutex_);
    released.swap(to_release_);
    if (files_.empty() && journals_need_clearing_) {
      // Nothing in the spool is owed to anyone: no journal line can matter any more. Holding
      // files_mutex_ keeps new instances out until the journals are empty.
      std::lock_guard destinations_lock(destinations_mutex_);
      for (auto& [name, destination] : destinations_) {
        if (const std::error_code error = destination->journal().Clear()) {
          log::Warning("cannot truncate ", destination->journal().path().string(), ": ",
                       error.message());
        }
      }
      journals_need_clearing_ = false;
    }
  }
  // The delivered marks are durable (synced above) before the files go.
  for (const SpooledFile& file : released) {
    if (::unlink(file.path.c_str()) != 0 && errno != ENOENT) {
      log::Warning("cannot remove delivered spool file ", file.path.string(), ": ",
                   std::strerror(errno));
      continue;
    }
    usage_.RemoveCommitted(file.bytes);
    preparer_.Forget(file.path.stem().string(), file.destinations);
  }
}

admin::AdminReply ForwardingService::HandleAdminCommand(const std::vector<std::string>& words) {
  if (words.size() < 2 || words[0] != "queue") return Error("unknown command");
  const std::string& verb = words[1];
  if (verb == "list") return ListQueues();
  if (words.size() < 3) return Error("'queue " + verb + "' needs a destination name");
  Destination* destination = nullptr;
  {
    std::lock_guard lock(destinations_mutex_);
    auto found = destinations_.find(words[2]);
    if (found != destinations_.end()) destination = found->second.get();
  }
  if (!destination) {
    std::string known;
    std::lock_guard lock(destinations_mutex_);
    for (const auto& [name, unused] : destinations_) known += (known.empty() ? "" : ", ") + name;
    return Error("no destination named '" + words[2] + "' (known: " + known + ")");
  }
  if (verb == "show") return ShowQueue(*destination);
  ItemSelection selection;
  bool all = false;
  for (std::size_t i = 3; i < words.size(); ++i) {
    if (words[i] == "--dead-letter") {
      selection.dead_letter = true;
    } else if (words[i] == "--all") {
      all = true;
    } else if (words[i] == "--study" && i + 1 < words.size()) {
      selection.study = words[++i];
    } else {
      return Error("unknown option '" + words[i] + "'");
    }
  }
  const std::string scope = std::string(selection.dead_letter ? "dead-lettered " : "") +
                            "instances" + (selection.study ? " of study " + *selection.study : "");
  if (verb == "retry") {
    const std::size_t count = destination->RetryNow(selection);
    log::Info("operator: retry ", count, " ", scope, " for ", destination->name());
    return {true, "retrying " + std::to_string(count) + " " + scope + " for " +
                      destination->name() + " now\n"};
  }
  if (verb == "purge") {
    if (!all && !selection.dead_letter && !selection.study) {
      return Error("purge needs --dead-letter, --study UID or --all");
    }
    const std::size_t count = destination->Purge(selection);
    log::Warning("operator: purged ", count, " ", scope, " from ", destination->name());
    return {true, "purged " + std::to_string(count) + " " + scope + " from " + destination->name() +
                      "; they will not be sent there\n"};
  }
  return Error("unknown queue command '" + verb + "'");
}

admin::AdminReply ForwardingService::ListQueues() {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-20s %-14s %7s %7s %6s %6s %7s %6s %7s  %s\n", "DESTINATION",
                "STATE", "OWED", "READY", "RETRY", "HELD", "SENDING", "DEAD", "OLDEST",
                "LAST ERROR");
  out << line;
  std::lock_guard lock(destinations_mutex_);
  const Clock::time_point now = Clock::now();
  for (const auto& [name, destination] : destinations_) {
    const QueueStatus status = destination->Status();
    const std::string oldest =
        status.oldest_received ? FormatAge(now - *status.oldest_received) : "-";
    std::snprintf(line, sizeof line, "%-20s %-14s %7zu %7zu %6zu %6zu %7zu %6zu %7s  %s\n",
                  name.c_str(), StateName(*destination, status).c_str(), status.owed(),
                  status.ready, status.retry_wait, status.held, status.in_flight,
                  status.dead_letter, oldest.c_str(),
                  status.last_error.empty() ? "-" : status.last_error.c_str());
    out << line;
  }
  return {true, out.str()};
}

admin::AdminReply ForwardingService::ShowQueue(Destination& destination) {
  std::ostringstream out;
  const QueueStatus status = destination.Status();
  const Clock::time_point now = Clock::now();
  out << "destination: " << destination.name() << "\n";
  if (const config::DestinationConfig* config = destination.config()) {
    switch (config->kind) {
      case config::DestinationKind::kDimse:
        out << "address: " << config->called_ae << "@" << config->host << ":" << config->port
            << " (calling AE " << config->calling_ae << ", " << config->max_associations
            << " associations)\n";
        break;
      case config::DestinationKind::kStow:
        out << "address: STOW-RS " << config->stow.url << "/studies ("
            << config->http.parallel_requests << " parallel requests, up to "
            << config->stow.max_instances_per_request << " instances each)\n";
        break;
      case config::DestinationKind::kS3:
        out << "address: S3 " << config->s3.endpoint << " bucket " << config->s3.bucket << ", keys "
            << config->key_template << " (" << config->http.parallel_requests
            << " parallel requests)\n";
        break;
      case config::DestinationKind::kFolder:
        out << "address: folder " << config->folder.string() << ", files " << config->key_template
            << "\n";
        break;
    }
  } else {
    out << "address: not in the configuration (nothing is sent)\n";
  }
  out << "state: " << StateName(destination, status) << "\n"
      << "owed: " << status.owed() << " (ready " << status.ready << ", waiting to retry "
      << status.retry_wait << ", held for a quiet study/series " << status.held << ", sending "
      << status.in_flight << ")\n"
      << "dead-lettered: " << status.dead_letter << "\n";
  if (status.oldest_received) {
    out << "oldest owed: " << FormatAge(now - *status.oldest_received) << " old\n";
  }
  if (!status.last_error.empty()) {
    out << "last error: " << status.last_error;
    if (status.last_error_at) out << " (" << FormatAge(now - *status.last_error_at) << " ago)";
    out << "\n";
  }
  const auto print = [&](const std::vector<QueuedInstancePtr>& items, bool dead) {
    for (const QueuedInstancePtr& item : items) {
      out << "  " << item->spool_id << "  " << item->sop_instance_uid << "  study "
          << item->study_instance_uid << "  age " << FormatAge(now - item->received_at);
      if (dead) {
        out << "  reason: " << item->dead_letter_reason;
      } else if (item->failures > 0) {
        out << "  failures " << item->failures << ", last: " << item->last_error;
      }
      out << "\n";
    }
  };
  const std::vector<QueuedInstancePtr> pending = destination.Pending(kShowLimit);
  out << "owed instances" << (status.owed() > pending.size() ? " (first 50)" : "") << ":\n";
  print(pending, false);
  const std::vector<QueuedInstancePtr> dead = destination.DeadLetters(kShowLimit);
  out << "dead-letter queue" << (status.dead_letter > dead.size() ? " (first 50)" : "") << ":\n";
  print(dead, true);
  return {true, out.str()};
}

}  // namespace conduit::forward
