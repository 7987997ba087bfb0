// `conduit serve`: wires the spool, the listener and the metrics together, runs them until
// SIGTERM/SIGINT, and shuts down without acknowledging anything that is not durable.
#pragma once

#include "router/config/config.h"

namespace conduit::app {

// Returns the process exit code. Startup failures (port in use, spool not writable) are
// reported on stderr and give a non-zero code.
int RunServer(const config::Config& config);

}  // namespace conduit::app
