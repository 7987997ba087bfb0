#include "router/app/server.h"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "router/admin/admin_server.h"
#include "router/forward/forwarding_service.h"
#include "router/log/log.h"
#include "router/metrics/forward_metrics.h"
#include "router/metrics/ingest_metrics.h"
#include "router/metrics/routing_metrics.h"
#include "router/metrics/spool_usage_collector.h"
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

}  // namespace

int RunServer(const config::Config& config) {
  log::SetLevel(config.log_level);
  spool::ConfigureDcmtkLogging();

  auto registry = std::make_shared<prometheus::Registry>();
  metrics::IngestMetrics metrics(*registry, config);
  // Declared before the io_context: sessions use them until the io_context is destroyed.
  std::unique_ptr<spool::Spool> spool;
  try {
    spool = std::make_unique<spool::Spool>(config.spool);
    const spool::RecoverySummary recovered = spool->Recover();
    log::Info("spool ", config.spool.directory.string(), ": ", recovered.committed_instances,
              " committed instances (", recovered.committed_bytes, " bytes), removed ",
              recovered.removed_partial_files, " unacknowledged partial files");
  } catch (const std::exception& error) {
    log::Error("cannot open spool ", config.spool.directory.string(), ": ", error.what());
    return 1;
  }
  // The exposer keeps only weak references to what it collects: these must live as long.
  auto spool_collector = std::make_shared<metrics::SpoolUsageCollector>(spool->usage());
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    if (config.metrics.enabled) {
      exposer = std::make_unique<prometheus::Exposer>(config.metrics.listen);
      exposer->RegisterCollectable(registry);
      exposer->RegisterCollectable(spool_collector);
    }
  } catch (const std::exception& error) {
    log::Error("cannot serve metrics on ", config.metrics.listen, ": ", error.what());
    return 1;
  }
  metrics::RoutingMetrics routing_metrics(*registry);
  routing::RulesRuntime rules(config, routing_metrics);
  if (const auto errors = rules.LoadInitial(); !errors.empty()) {
    log::Error("rules ", config.rules.file.string(), " refused (", errors.size(), " errors):");
    for (const rules::Diagnostic& error : errors) log::Error("  ", error.ToString());
    return 2;
  }
  spool::SpoolStats spool_stats{metrics.commit_seconds(), routing_metrics};
  net::AssociationPolicy policy(config.listener);
  net::AdmissionCounter admission;

  auto io_context = std::make_unique<asio::io_context>();
  metrics::ForwardMetrics forward_metrics(*registry);
  metrics::TranscodeMetrics transcode_metrics(*registry);
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
  auto committer = std::make_unique<spool::SpoolCommitter>(
      config.spool.sync_threads, spool->committed_directory(), spool->usage(), spool_stats,
      io_context->get_executor(),
      [&forwarding = *forwarding](const spool::SpoolRecord& record, std::uint64_t file_bytes) {
        forwarding.Enqueue(record, file_bytes);
      });
  auto admin = std::make_unique<admin::AdminServer>(
      *io_context, config.admin.socket,
      [&forwarding = *forwarding](const std::vector<std::string>& words) {
        return forwarding.HandleAdminCommand(words);
      });
  try {
    admin->Open();
  } catch (const std::exception& error) {
    log::Error("cannot open the admin socket ", config.admin.socket.string(), ": ", error.what());
    return 1;
  }
  net::SessionDependencies dependencies{config.listener, policy,  *spool,
                                        *committer,      metrics, rules};
  auto listener = std::make_unique<net::Listener>(*io_context, dependencies, admission);
  try {
    listener->Open();
  } catch (const std::exception& error) {
    log::Error("cannot listen on ", config.listener.bind_address, ":", config.listener.port, ": ",
               error.what());
    return 1;
  }
  asio::co_spawn(listener->executor(), listener->AcceptLoop(), asio::detached);
  asio::co_spawn(admin->executor(), admin->AcceptLoop(), asio::detached);
  forwarding->Start();

  // Signals and timers share one strand: their handlers run on any network thread, and the
  // timers and the listener must never be touched from two threads at once.
  auto control = asio::make_strand(*io_context);
  asio::steady_timer usage_timer(control);
  ScheduleUsageRefresh(usage_timer, spool->usage());
  asio::steady_timer rules_timer(control);
  if (config.rules.reload_check_interval.count() > 0) {
    ScheduleRulesCheck(rules_timer, rules, config.rules.reload_check_interval);
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
          // Rules only; the rest of the configuration needs a restart.
          rules.Reload("SIGHUP");
          signals.async_wait(on_signal);
          return;
        }
        log::Info("signal ", signal_number, ": no longer accepting associations; waiting up to ",
                  kShutdownGrace.count(), " s for ", admission.active(), " open ones");
        ::sd_notify(0, "STOPPING=1");
        listener->Close();
        admin->Close();
        forwarding->Stop();
        usage_timer.cancel();
        rules_timer.cancel();
        drain_deadline = std::chrono::steady_clock::now() + kShutdownGrace;
        wait_for_sessions();
      };
  signals.async_wait(on_signal);

  const auto endpoint = listener->local_endpoint();
  log::Info("conduit listening on ", endpoint.address().to_string(), ":", endpoint.port(), " as ",
            config.listener.ae_title, "; ", NetworkThreadCount(config),
            " network threads; metrics ",
            config.metrics.enabled ? config.metrics.listen : std::string("disabled"));
  ::sd_notify(0, "READY=1");

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < NetworkThreadCount(config); ++i) {
    threads.emplace_back([&] { io_context->run(); });
  }
  io_context->run();
  for (std::thread& thread : threads) thread.join();

  // Teardown order matters: the acceptors go while their io_context lives; the committer
  // finishes queued commits (their answers are dropped with the sessions, and the files stay
  // committed and queued); the forwarding service then syncs its journals and removes the
  // delivered files (what was still being sent is owed and goes again after a restart);
  // destroying the io_context then destroys the remaining sessions, which remove their partial
  // files through the spool, which is still alive.
  listener.reset();
  admin.reset();
  committer.reset();
  forwarding.reset();
  io_context.reset();
  log::Info("conduit stopped");
  return 0;
}

}  // namespace conduit::app
