// The CLI's side of the admin socket (see router/admin/admin_server.h for the protocol): one
// blocking request and its reply, with a deadline.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "codecs/result.h"
#include "router/admin/admin_server.h"

namespace conduit::app {

// Sends `words` to the daemon at `socket` and waits at most `timeout` in all for its reply.
// The error is one line for the operator that names the socket: the daemon could not be reached
// (not running, or listening on another path), or gave no complete reply in time.
Result<admin::AdminReply, std::string> SendAdminRequest(const std::filesystem::path& socket,
                                                        const std::vector<std::string>& words,
                                                        std::chrono::seconds timeout);

}  // namespace conduit::app
