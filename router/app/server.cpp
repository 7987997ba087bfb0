#include "router/app/server.h"

#include <malloc.h>
#include <prometheus/registry.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "router/admin/admin_server.h"
#include "router/app/config_reloader.h"
#include "router/app/io_probe.h"
#include "router/app/liveness_monitor.h"
#include "router/app/readiness.h"
#include "router/app/service_watchdog.h"
#include "router/app/status_report.h"
#include "router/app/systemd_notify.h"
#include "router/forward/forwarding_service.h"
#include "router/log/log.h"
#include "router/metrics/config_reload_metrics.h"
#include "router/metrics/forward_metrics.h"
#include "router/metrics/http_endpoint.h"
#include "router/metrics/ingest_metrics.h"
#include "router/metrics/routing_metrics.h"
#include "router/metrics/spool_usage_collector.h"
#include "router/metrics/text_exposition.h"
#include "router/metrics/transcode_metrics.h"
#include "router/net/admission_counter.h"
#include "router/net/association_policy.h"
#include "router/net/listener.h"
#include "router/routing/rules_runtime.h"
#include "router/spool/header_reader.h"
#include "router/spool/spool.h"
#include "router/spool/spool_committer.h"

namespace conduit::app {
namespace asio = boost::asio;

namespace {

// Open associations get this long to finish after SIGTERM; what is cut off was never
// acknowledged, so the senders will resend it.
constexpr std::chrono::seconds kShutdownGrace{10};
constexpr std::chrono::seconds kUsageRefreshInterval{1};
// A loop that owes progress for longer than this is stuck: /healthz answers 503 and the systemd
// watchdog is no longer pinged. Far above a slow fsync or a busy network thread's backlog.
constexpr std::chrono::seconds kStallLimit{30};

unsigned NetworkThreadCount(const config::Config& config) {
  if (config.network_threads != 0) return config.network_threads;
  return std::max(1U, std::thread::hardware_concurrency());
}

// Keeps the free-disk figure that admission decisions use fresh until the io_context stops.
void ScheduleUsageRefresh(asio::steady_timer& timer, spool::SpoolUsage& usage) {
  usage.RefreshFreeSpace();
  timer.expires_after(kUsageRefreshInterval);
  timer.async_wait([&timer, &usage](const boost::system::error_code& error) {
    if (!error) ScheduleUsageRefresh(timer, usage);
  });
}

// Reloads the rules when their file changes (editors replace files, so the check is by
// identity, not by inotify on one inode), until the io_context stops.
void ScheduleRulesCheck(asio::steady_timer& timer, routing::RulesRuntime& rules,
                        std::chrono::seconds interval) {
  timer.expires_after(interval);
  timer.async_wait([&timer, &rules, interval](const boost::system::error_code& error) {
    if (error) return;
    rules.ReloadIfChanged();
    ScheduleRulesCheck(timer, rules, interval);
  });
}

std::string EndpointText(const asio::ip::tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  return (endpoint.address().is_v6() ? "[" + address + "]" : address) + ":" +
         std::to_string(endpoint.port());
}

// The value of a gauge family, summed over its series; 0 when the registry has none.
double GaugeValue(const prometheus::Registry& registry, std::string_view name) {
  double value = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) value += metric.gauge.value;
  }
  return value;
}

// Where `conduit status` gets its figures.
struct StatusSources {
  std::chrono::steady_clock::time_point started;
  const config::Config& config;  // the startup configuration: listener and spool limits
  std::string listener_address;
  const Readiness& readiness;
  const ServiceWatchdog& watchdog;
  const net::AdmissionCounter& admission;
  const ConfigReloader& reloader;
  const routing::RulesRuntime& rules;
  spool::SpoolUsage& usage;
  forward::ForwardingService& forwarding;
  const prometheus::Registry& registry;
};

DaemonStatus GatherStatus(const StatusSources& sources) {
  DaemonStatus status;
  status.now = std::chrono::system_clock::now();
  status.uptime = std::chrono::duration_cast<std::chrono::seconds>(
      std::chrono::steady_clock::now() - sources.started);
  status.not_ready = sources.readiness.NotReadyReason();
  status.stuck = sources.watchdog.Problem();
  status.listener_address = sources.listener_address;
  status.ae_title = sources.config.listener.ae_title;
  status.associations_active = sources.admission.active();
  status.max_associations = sources.config.listener.max_associations;
  status.config_file = sources.reloader.file();
  status.last_config_reload = sources.reloader.LastReload();
  status.rules_file = sources.rules.file();
  status.rules_generation = sources.rules.Current().generation;
  status.last_rules_load = sources.rules.LastLoad();
  status.spool_instances = sources.usage.instances();
  status.spool_max_instances = sources.usage.max_instances();
  status.spool_bytes = sources.usage.bytes();
  status.spool_max_bytes = sources.usage.max_bytes();
  status.disk_free_bytes = sources.usage.free_bytes();
  status.disk_min_free_bytes = sources.usage.min_free_bytes();
  status.spool_accepting = sources.usage.HasRoom();
  status.destinations = sources.forwarding.Summaries();
  status.transcode_workers = sources.forwarding.transcode_workers();
  status.transcode_busy =
      static_cast<unsigned>(GaugeValue(sources.registry, "conduit_transcode_workers_busy"));
  status.transcode_waiting =
      static_cast<unsigned>(GaugeValue(sources.registry, "conduit_transcode_queue_depth"));
  return status;
}

metrics::HttpResponse PlainText(int status, std::string body) {
  metrics::HttpResponse response;
  response.status = status;
  response.body = std::move(body) + "\n";
  return response;
}

// Transcoding allocates and frees buffers of a frame or a dataset (megabytes) many times per
// instance. With glibc's defaults each goes back to the kernel (munmap, heap trim) and the next
// one page-faults its pages in again, which on this kind of VM cost more than the codec: HTJ2K
// took 13.7 ms per 512x512 CT instance that way and 5.1 ms with freed memory kept for reuse.
// Memory is still bounded: by the peak working set (one dataset per transcoding worker and
// lane), plus at most kTrimThreshold of free memory kept per arena.
void KeepFreedMemoryForReuse() {
  constexpr int kMmapThreshold = 32 << 20;  // glibc's maximum on 64-bit
  constexpr int kTrimThreshold = 128 << 20;
  if (::mallopt(M_MMAP_THRESHOLD, kMmapThreshold) != 1 ||
      ::mallopt(M_TRIM_THRESHOLD, kTrimThreshold) != 1) {
    log::Warning("malloc tuning refused; transcoding will be slower");
  }
}

}  // namespace

int RunServer(config::Config config_value, std::filesystem::path config_file) {
  const auto started = std::chrono::steady_clock::now();
  KeepFreedMemoryForReuse();
  const auto config = std::make_shared<const config::Config>(std::move(config_value));
  log::SetLevel(config->log_level);
  spool::ConfigureDcmtkLogging();

  auto registry = std::make_shared<prometheus::Registry>();
  metrics::IngestMetrics metrics(*registry, *config);
  metrics::RoutingMetrics routing_metrics(*registry);
  metrics::ConfigReloadMetrics reload_metrics(*registry);
  routing::RulesRuntime rules(*config, routing_metrics);
  Readiness readiness([&rules] { return rules.Loaded(); });
  // Created before what uses it and run only once everything is set up.
  auto io_context = std::make_unique<asio::io_context>();
  // The watchdog's loops are added below, before it starts; /healthz asks it from the start.
  LivenessMonitor liveness(kStallLimit);
  IoProbe io_probe(*io_context);
  const std::optional<std::chrono::microseconds> watchdog_interval = ServiceWatchdogInterval();
  ServiceWatchdog watchdog(
      liveness, ServiceWatchdogOptions{std::chrono::seconds(1), watchdog_interval,
                                       NotifyServiceManager, [&io_probe] { io_probe.Post(); }});

  NotifyServiceManager("STATUS=recovering the spool");
  // Sessions use the spool until the io_context is destroyed: the teardown below destroys the
  // io_context first.
  std::unique_ptr<spool::Spool> spool;
  try {
    spool = std::make_unique<spool::Spool>(config->spool);
    const spool::RecoverySummary recovered = spool->Recover();
    log::Info("spool ", config->spool.directory.string(), ": ", recovered.committed_instances,
              " committed instances (", recovered.committed_bytes, " bytes), removed ",
              recovered.removed_partial_files, " unacknowledged partial files");
  } catch (const std::exception& error) {
    log::Error("cannot open spool ", config->spool.directory.string(), ": ", error.what());
    return 1;
  }
  readiness.SpoolRecovered();

  // Open now, so that /readyz answers (503, with the reason) while the queues are rebuilt.
  auto spool_collector = std::make_shared<metrics::SpoolUsageCollector>(spool->usage());
  std::unique_ptr<metrics::HttpEndpoint> http;
  if (config->metrics.enabled) {
    std::map<std::string, metrics::HttpHandler> routes;
    routes["/metrics"] = [registry, spool_collector] {
      metrics::HttpResponse response;
      response.content_type = metrics::kPrometheusTextContentType;
      response.body = metrics::PrometheusText({registry, spool_collector});
      return response;
    };
    routes["/healthz"] = [&watchdog] {
      const std::optional<std::string> problem = watchdog.Problem();
      return problem ? PlainText(503, "stuck: " + *problem) : PlainText(200, "ok");
    };
    routes["/readyz"] = [&readiness] {
      const std::optional<std::string> reason = readiness.NotReadyReason();
      return reason ? PlainText(503, *reason) : PlainText(200, "ready");
    };
    http = std::make_unique<metrics::HttpEndpoint>(config->metrics.listen, std::move(routes));
    try {
      http->Open();
    } catch (const std::exception& error) {
      log::Error("cannot serve metrics: ", error.what());
      return 1;
    }
    http->Start();
  }

  if (const auto errors = rules.LoadInitial(); !errors.empty()) {
    log::Error("rules ", config->rules.file.string(), " refused (", errors.size(), " errors):");
    for (const rules::Diagnostic& error : errors) log::Error("  ", error.ToString());
    return 2;
  }
  spool::SpoolStats spool_stats{metrics.commit_seconds(), routing_metrics};
  net::AssociationPolicy policy(config->listener);
  net::AdmissionCounter admission;

  metrics::ForwardMetrics forward_metrics(*registry);
  metrics::TranscodeMetrics transcode_metrics(*registry);
  NotifyServiceManager("STATUS=rebuilding the destination queues from the spool");
  std::unique_ptr<forward::ForwardingService> forwarding;
  try {
    forwarding = std::make_unique<forward::ForwardingService>(config, spool->committed_directory(),
                                                              spool->usage(), *io_context,
                                                              forward_metrics, transcode_metrics);
    const forward::ForwardRecoverySummary queues = forwarding->Recover();
    log::Info("queues: ", queues.queued, " deliveries owed (", queues.maybe_delivered,
              " possibly delivered before the restart, to be sent again), ", queues.dead_lettered,
              " dead-lettered; ", queues.released, " fully delivered files removed; ",
              queues.unrouted, " unrouted and ", queues.unreadable, " unreadable files kept");
  } catch (const std::exception& error) {
    log::Error("cannot recover the forwarding queues: ", error.what());
    return 1;
  }
  readiness.QueuesRecovered();
  ConfigReloader reloader(config_file, config, rules, *forwarding, reload_metrics);
  auto committer = std::make_unique<spool::SpoolCommitter>(
      config->spool.sync_threads, spool->committed_directory(), spool->usage(), spool_stats,
      io_context->get_executor(),
      [&forwarding = *forwarding](const spool::SpoolRecord& record, std::uint64_t file_bytes) {
        forwarding.Enqueue(record, file_bytes);
      });

  net::SessionDependencies dependencies{config->listener, policy,  *spool,
                                        *committer,       metrics, rules};
  auto listener = std::make_unique<net::Listener>(*io_context, dependencies, admission);
  try {
    listener->Open();
  } catch (const std::exception& error) {
    log::Error("cannot listen on ", config->listener.bind_address, ":", config->listener.port, ": ",
               error.what());
    return 1;
  }
  const std::string listener_address = EndpointText(listener->local_endpoint());

  const StatusSources status_sources{started,        *config,     listener_address, readiness,
                                     watchdog,       admission,   reloader,         rules,
                                     spool->usage(), *forwarding, *registry};
  auto admin = std::make_unique<admin::AdminServer>(
      *io_context, config->admin.socket,
      [&forwarding = *forwarding, &status_sources](const std::vector<std::string>& words) {
        if (words.empty() || words[0] != "status") return forwarding.HandleAdminCommand(words);
        if (words.size() > 1) return admin::AdminReply{false, "'status' takes no arguments"};
        return admin::AdminReply{true, FormatDaemonStatus(GatherStatus(status_sources))};
      });
  try {
    admin->Open();
  } catch (const std::exception& error) {
    log::Error("cannot open the admin socket ", config->admin.socket.string(), ": ", error.what());
    return 1;
  }
  asio::co_spawn(listener->executor(), listener->AcceptLoop(), asio::detached);
  asio::co_spawn(admin->executor(), admin->AcceptLoop(), asio::detached);
  forwarding->Start();
  readiness.ListenerOpen();

  // Signals and timers share one strand: their handlers run on any network thread, and the
  // timers and the listener must never be touched from two threads at once.
  auto control = asio::make_strand(*io_context);
  asio::steady_timer usage_timer(control);
  ScheduleUsageRefresh(usage_timer, spool->usage());
  asio::steady_timer rules_timer(control);
  if (config->rules.reload_check_interval.count() > 0) {
    ScheduleRulesCheck(rules_timer, rules, config->rules.reload_check_interval);
  }

  asio::steady_timer drain_timer(control);
  std::chrono::steady_clock::time_point drain_deadline;
  std::function<void()> wait_for_sessions = [&] {
    const bool drained = admission.active() == 0 && forwarding->Stopped();
    if (drained || std::chrono::steady_clock::now() >= drain_deadline) {
      io_context->stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(100));
    drain_timer.async_wait([&](const boost::system::error_code&) { wait_for_sessions(); });
  };
  asio::signal_set signals(control, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& error, int signal_number) {
        if (error) return;
        if (signal_number == SIGHUP) {
          // Open associations go on untouched; the next C-STOREs take the new rules.
          NotifyReloading();
          const ConfigReloadReport report = reloader.Reload("SIGHUP");
          NotifyServiceManager(std::string("READY=1\nSTATUS=") +
                               (report.ok ? "reloaded: " : "reload refused, running on: ") +
                               report.summary);
          signals.async_wait(on_signal);
          return;
        }
        log::Info("signal ", signal_number, ": no longer accepting associations; waiting up to ",
                  kShutdownGrace.count(), " s for ", admission.active(), " open ones");
        readiness.Stopping();
        NotifyServiceManager("STOPPING=1\nSTATUS=stopping: waiting for " +
                             std::to_string(admission.active()) + " open associations");
        listener->Close();
        admin->Close();
        forwarding->Stop();
        usage_timer.cancel();
        rules_timer.cancel();
        drain_deadline = std::chrono::steady_clock::now() + kShutdownGrace;
        wait_for_sessions();
      };
  signals.async_wait(on_signal);

  // The loops the watchdog vouches for. Network threads prove themselves by running a probe;
  // the forwarders' tick (every 200 ms, on the network threads too) and housekeeping thread
  // (every second) by their last round; the spool's commit workers by not being stuck in one
  // commit (idle ones owe nothing).
  liveness.Watch("network threads", [&io_probe] { return io_probe.PendingSince(); });
  liveness.Watch("forwarding tick", [&forwarding] { return forwarding->LastTick(); });
  liveness.Watch("forwarding housekeeping", [&forwarding] {
    return std::optional<LivenessMonitor::Clock::time_point>(forwarding->LastHousekeeping());
  });
  liveness.Watch("spool commits", [&committer] { return committer->OldestCommitStartedAt(); });
  watchdog.Start();

  log::Info("conduit listening on ", listener_address, " as ", config->listener.ae_title, "; ",
            NetworkThreadCount(*config), " network threads; metrics, /healthz and /readyz ",
            config->metrics.enabled ? "on " + config->metrics.listen : std::string("disabled"),
            watchdog_interval ? "; systemd watchdog every " +
                                    std::to_string(watchdog_interval->count() / 2000) + " ms"
                              : std::string());
  NotifyServiceManager("READY=1\nSTATUS=listening on " + listener_address + " as " +
                       config->listener.ae_title + "; rules generation " +
                       std::to_string(rules.Current().generation));

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < NetworkThreadCount(*config); ++i) {
    threads.emplace_back([&] { io_context->run(); });
  }
  io_context->run();
  for (std::thread& thread : threads) thread.join();

  // Teardown order matters: the watchdog and the HTTP endpoint go first (they look at
  // everything below); the acceptors go while their io_context lives; the committer finishes
  // queued commits (their answers are dropped with the sessions, and the files stay committed
  // and queued); the forwarding service then syncs its journals and removes the delivered
  // files (what was still being sent is owed and goes again after a restart); destroying the
  // io_context then destroys the remaining sessions, which remove their partial files through
  // the spool, which is still alive.
  watchdog.Stop();
  http.reset();
  listener.reset();
  admin.reset();
  committer.reset();
  forwarding.reset();
  io_context.reset();
  log::Info("conduit stopped");
  return 0;
}

}  // namespace conduit::app
