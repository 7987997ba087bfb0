// `conduit queue ...`: the operator's view of the running daemon's destination queues, over the
// admin socket (config admin.socket). The syntax is checked here; the daemon does the work.
#pragma once

#include <span>
#include <string_view>

namespace conduit::app {

// `args` are the words after "queue". Returns the exit code: 0 done, 1 the daemon refused or
// failed the command, 2 usage or configuration error, 3 the daemon could not be reached or did
// not answer.
int RunQueueCommand(std::span<const std::string_view> args);

}  // namespace conduit::app
