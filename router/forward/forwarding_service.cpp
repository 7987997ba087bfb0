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
// A retired forwarder is destroyed this long after it stopped: a wake-up posted to one of its
// lanes just before it stopped has long run by then.
constexpr std::chrono::seconds kRetiredForwarderGrace{10};

std::int64_t SteadyNanoseconds(std::chrono::steady_clock::time_point time) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch()).count();
}

std::chrono::steady_clock::time_point SteadyTime(std::int64_t nanoseconds) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(nanoseconds)));
}

const config::DestinationConfig* FindDestination(const config::Config& config,
                                                 const std::string& name) {
  for (const config::DestinationConfig& destination : config.destinations) {
    if (destination.name == name) return &destination;
  }
  return nullptr;
}

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

ForwardingService::ForwardingService(std::shared_ptr<const config::Config> config,
                                     const std::filesystem::path& committed_directory,
                                     spool::SpoolUsage& usage, boost::asio::io_context& io,
                                     metrics::ForwardMetrics& metrics,
                                     metrics::TranscodeMetrics& transcode_metrics)
    : config_(std::move(config)),
      committed_directory_(committed_directory),
      journal_directory_(config_->spool.directory / "queues"),
      usage_(usage),
      io_(io),
      metrics_(metrics),
      pool_(config_->transcoding.threads != 0 ? config_->transcoding.threads
                                              : std::max(1U, std::thread::hardware_concurrency()),
            transcode_metrics),
      preparer_(config_->spool.directory),
      preparation_{config_->transcoding.profiles, pool_, preparer_, transcode_metrics},
      tick_strand_(boost::asio::make_strand(io)),
      tick_timer_(tick_strand_) {
  std::filesystem::create_directories(journal_directory_);
  std::lock_guard lock(destinations_mutex_);
  for (const config::DestinationConfig& destination : config_->destinations) {
    DestinationSlot& slot = destinations_[destination.name];
    slot.destination = MakeDestination(destination.name, &destination);
    slot.config = config_;
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
  for (auto& [name, slot] : destinations_) slot.forwarder.reset();
  retired_.clear();
  RunHousekeepingOnce();
}

std::unique_ptr<Destination> ForwardingService::MakeDestination(
    const std::string& name, const config::DestinationConfig* config) {
  // Names come from the configuration or from spool records our rules wrote, which the rules
  // loader only accepted as configured destination names: plain file names either way.
  auto journal = DeliveryJournal::Open(journal_directory_ / (name + kJournalExtension));
  if (!journal) throw std::runtime_error(journal.error());
  return std::make_unique<Destination>(name, config, std::move(journal.value()),
                                       metrics_.ForDestination(config, name),
                                       [this](const std::string& spool_id) { Settled(spool_id); });
}

ForwardingService::DestinationSlot& ForwardingService::SlotNamed(const std::string& name) {
  DestinationSlot& slot = destinations_[name];
  if (!slot.destination) slot.destination = MakeDestination(name, nullptr);
  return slot;
}

Destination& ForwardingService::DestinationNamed(const std::string& name) {
  std::lock_guard lock(destinations_mutex_);
  return *SlotNamed(name).destination;
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
  for (auto& [name, slot] : destinations_) {
    Destination* destination = slot.destination.get();
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
  // The watchdog expects the tick and housekeeping from now on, however long recovery took.
  const std::int64_t now = SteadyNanoseconds(std::chrono::steady_clock::now());
  last_tick_ns_ = now;
  last_housekeeping_ns_ = now;
  {
    std::lock_guard lock(destinations_mutex_);
    started_ = true;
    for (auto& [name, slot] : destinations_) {
      if (!slot.destination->config()) continue;
      if (!slot.forwarder)
        slot.forwarder = MakeForwarder(*slot.destination, *slot.destination->config());
      slot.forwarder->Start();
      slot.forwarder_started = true;
    }
  }
  boost::asio::post(tick_strand_, [this] { ScheduleTick(); });
  housekeeping_ = std::thread([this] { RunHousekeeping(); });
}

void ForwardingService::Stop() {
  {
    std::lock_guard lock(destinations_mutex_);
    stopped_ = true;
    for (auto& [name, slot] : destinations_) {
      if (slot.forwarder && slot.forwarder_started) slot.forwarder->Stop();
    }
  }
  boost::asio::post(tick_strand_, [this] {
    stopping_ = true;
    tick_timer_.cancel();
  });
}

bool ForwardingService::Stopped() const {
  std::lock_guard lock(destinations_mutex_);
  const bool slots_stopped = std::all_of(
      destinations_.begin(), destinations_.end(),
      [](auto& entry) { return !entry.second.forwarder || entry.second.forwarder->Stopped(); });
  return slots_stopped && std::all_of(retired_.begin(), retired_.end(), [](const auto& retired) {
           return retired.forwarder->Stopped();
         });
}

void ForwardingService::Configure(DestinationSlot& slot, const std::string& name,
                                  const config::DestinationConfig& config,
                                  std::shared_ptr<const config::Config> owner) {
  slot.destination->Reconfigure(&config);
  slot.config = std::move(owner);
  metrics_.ForDestination(&config, name);  // refreshes the limit gauges
  slot.forwarder = MakeForwarder(*slot.destination, config);
  slot.forwarder_started = false;
  // A replacement waits until its predecessor has stopped (CompleteHandovers): two forwarders
  // of one destination at once would share its wake-up and double its associations.
  if (started_ && !stopped_ && !Retiring(name)) {
    slot.forwarder->Start();
    slot.forwarder_started = true;
  }
}

void ForwardingService::Retire(DestinationSlot& slot, const std::string& name) {
  if (slot.forwarder) {
    // Also one that never started: stopping it now keeps its destructor, later, from touching
    // the destination's wake-up, which by then belongs to its successor.
    slot.forwarder->Stop();
    retired_.push_back(RetiredForwarder{name, slot.config, std::move(slot.forwarder), {}});
  }
  slot.forwarder_started = false;
}

bool ForwardingService::Retiring(const std::string& name) const {
  return std::any_of(retired_.begin(), retired_.end(), [&](const RetiredForwarder& retired) {
    return retired.name == name && !retired.forwarder->Stopped();
  });
}

DestinationChanges ForwardingService::Reconfigure(std::shared_ptr<const config::Config> config) {
  DestinationChanges changes;
  std::lock_guard lock(destinations_mutex_);
  for (const config::DestinationConfig& wanted : config->destinations) {
    const std::string& name = wanted.name;
    auto found = destinations_.find(name);
    if (found == destinations_.end()) {
      DestinationSlot& slot = destinations_[name];
      slot.destination = MakeDestination(name, nullptr);
      Configure(slot, name, wanted, config);
      changes.added.push_back(name);
      log::Info("reload: destination ", name, " added (", config::DestinationKindName(wanted.kind),
                ")");
      continue;
    }
    DestinationSlot& slot = found->second;
    const config::DestinationConfig* current = slot.destination->config();
    if (current && *current == wanted) {
      ++changes.unchanged;
      continue;
    }
    const QueueStatus status = slot.destination->Status();
    if (!current) {
      Configure(slot, name, wanted, config);
      changes.added.push_back(name);
      log::Info("reload: destination ", name, " configured again (",
                config::DestinationKindName(wanted.kind), "); its ",
                status.owed() + status.dead_letter, " kept instances are its queue again");
      continue;
    }
    Retire(slot, name);
    Configure(slot, name, wanted, config);
    changes.changed.push_back(name);
    log::Info("reload: destination ", name,
              " changed; its forwarder restarts with the new settings ", "(", status.owed(),
              " instances owed stay queued; what was being sent is sent again)");
  }
  for (auto& [name, slot] : destinations_) {
    if (!slot.destination->config() || FindDestination(*config, name)) continue;
    const QueueStatus status = slot.destination->Status();
    Retire(slot, name);
    slot.destination->Reconfigure(nullptr);
    slot.config = nullptr;
    changes.removed.push_back(name);
    log::Warning("reload: destination ", name, " removed; its forwarder stops and its ",
                 status.owed() + status.dead_letter,
                 " queued instances are kept as not-configured (purge them with `conduit queue "
                 "purge ",
                 name, " --all`, or configure the destination again)");
  }
  return changes;
}

std::vector<ForwardingService::RetiredForwarder> ForwardingService::CompleteHandovers() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<RetiredForwarder> finished;
  for (auto retired = retired_.begin(); retired != retired_.end();) {
    if (!retired->stopped_at && retired->forwarder->Stopped()) retired->stopped_at = now;
    if (retired->stopped_at && now - *retired->stopped_at >= kRetiredForwarderGrace) {
      finished.push_back(std::move(*retired));
      retired = retired_.erase(retired);
    } else {
      ++retired;
    }
  }
  if (stopped_) return finished;
  for (auto& [name, slot] : destinations_) {
    if (!slot.forwarder || slot.forwarder_started || Retiring(name)) continue;
    // New settings deserve a try now rather than after the old settings' backoff.
    const std::size_t retried = slot.destination->RetryNow({});
    slot.forwarder->Start();
    slot.forwarder_started = true;
    log::Info("destination ", name, ": forwarder started with the new settings",
              retried > 0 ? "; " : "",
              retried > 0 ? std::to_string(retried) + " instances waiting for a retry are tried now"
                          : std::string());
  }
  return finished;
}

std::optional<std::chrono::steady_clock::time_point> ForwardingService::LastTick() const {
  if (stopped_) return std::nullopt;
  return SteadyTime(last_tick_ns_.load());
}

std::chrono::steady_clock::time_point ForwardingService::LastHousekeeping() const {
  return SteadyTime(last_housekeeping_ns_.load());
}

std::vector<DestinationSummary> ForwardingService::Summaries() {
  std::vector<DestinationSummary> summaries;
  const Clock::time_point now = Clock::now();
  std::lock_guard lock(destinations_mutex_);
  for (const auto& [name, slot] : destinations_) {
    const QueueStatus status = slot.destination->Status();
    const config::DestinationConfig* config = slot.destination->config();
    DestinationSummary summary;
    summary.name = name;
    summary.kind = config ? config::DestinationKindName(config->kind) : "-";
    summary.state = StateName(*slot.destination, status);
    summary.owed = status.owed();
    summary.dead_lettered = status.dead_letter;
    if (status.oldest_received) summary.oldest_age = now - *status.oldest_received;
    summaries.push_back(std::move(summary));
  }
  return summaries;
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
  last_tick_ns_ = SteadyNanoseconds(std::chrono::steady_clock::now());
  const bool sweep = ++ticks_ % kTicksPerExpirySweep == 0;
  std::vector<RetiredForwarder> finished;  // destroyed outside the lock (archive workers join)
  {
    std::lock_guard lock(destinations_mutex_);
    finished = CompleteHandovers();
    for (auto& [name, slot] : destinations_) slot.destination->Tick(sweep);
  }
  finished.clear();
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
    last_housekeeping_ns_ = SteadyNanoseconds(std::chrono::steady_clock::now());
    lock.lock();
  }
}

void ForwardingService::RunHousekeepingOnce() {
  {
    std::lock_guard lock(destinations_mutex_);
    for (auto& [name, slot] : destinations_) slot.destination->SyncJournal();
  }
  std::vector<SpooledFile> released;
  {
    std::lock_guard lock(files_mutex_);
    released.swap(to_release_);
    if (files_.empty() && journals_need_clearing_) {
      // Nothing in the spool is owed to anyone: no journal line can matter any more. Holding
      // files_mutex_ keeps new instances out until the journals are empty.
      std::lock_guard destinations_lock(destinations_mutex_);
      for (auto& [name, slot] : destinations_) {
        DeliveryJournal& journal = slot.destination->journal();
        if (const std::error_code error = journal.Clear()) {
          log::Warning("cannot truncate ", journal.path().string(), ": ", error.message());
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
  // Destinations live as long as the service; their configuration as long as `owner`.
  Destination* destination = nullptr;
  const config::DestinationConfig* config = nullptr;
  std::shared_ptr<const config::Config> owner;
  {
    std::lock_guard lock(destinations_mutex_);
    auto found = destinations_.find(words[2]);
    if (found != destinations_.end()) {
      destination = found->second.destination.get();
      config = destination->config();
      owner = found->second.config;
    }
  }
  if (!destination) {
    std::string known;
    std::lock_guard lock(destinations_mutex_);
    for (const auto& [name, unused] : destinations_) known += (known.empty() ? "" : ", ") + name;
    return Error("no destination named '" + words[2] + "' (known: " + known + ")");
  }
  if (verb == "show") return ShowQueue(*destination, config);
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
  for (const auto& [name, slot] : destinations_) {
    const QueueStatus status = slot.destination->Status();
    const std::string oldest =
        status.oldest_received ? FormatAge(now - *status.oldest_received) : "-";
    std::snprintf(line, sizeof line, "%-20s %-14s %7zu %7zu %6zu %6zu %7zu %6zu %7s  %s\n",
                  name.c_str(), StateName(*slot.destination, status).c_str(), status.owed(),
                  status.ready, status.retry_wait, status.held, status.in_flight,
                  status.dead_letter, oldest.c_str(),
                  status.last_error.empty() ? "-" : status.last_error.c_str());
    out << line;
  }
  return {true, out.str()};
}

admin::AdminReply ForwardingService::ShowQueue(Destination& destination,
                                               const config::DestinationConfig* config) {
  std::ostringstream out;
  const QueueStatus status = destination.Status();
  const Clock::time_point now = Clock::now();
  out << "destination: " << destination.name() << "\n";
  if (config) {
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
