// `conduit status [--config CONFIG]`: the running daemon's listener, configuration and rules,
// spool, destinations and transcoding, in one screen, over the admin socket (admin.socket in
// CONFIG).
#pragma once

#include <span>
#include <string_view>

namespace conduit::app {

// `args` are the words after "status". Returns the exit code, as `conduit queue` does: 0 the
// status was printed, 1 the daemon refused the request, 2 usage or configuration error, 3 the
// daemon could not be reached or did not answer.
int RunStatusCommand(std::span<const std::string_view> args);

}  // namespace conduit::app
