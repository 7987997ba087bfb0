// `conduit serve`: wires the spool, the listener, the forwarders, the admin socket and the
// operator's HTTP endpoint together, runs them until SIGTERM/SIGINT, reloads on SIGHUP, talks to
// systemd (readiness, reloads, watchdog), and shuts down without acknowledging anything that is
// not durable.
#pragma once

#include <filesystem>

#include "router/config/config.h"

namespace conduit::app {

// `config_file` is where `config` came from (read again on SIGHUP); empty for the embedded
// default. Returns the process exit code. Startup failures (port in use, spool not writable)
// are reported on stderr and give a non-zero code.
int RunServer(config::Config config, std::filesystem::path config_file);

}  // namespace conduit::app
