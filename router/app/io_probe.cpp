#include "router/app/io_probe.h"

#include <boost/asio/post.hpp>

namespace conduit::app {

IoProbe::IoProbe(boost::asio::io_context& io) : io_(io), state_(std::make_shared<State>()) {}

void IoProbe::Post() {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t idle = 0;
  if (!state_->posted_ns.compare_exchange_strong(idle, now)) return;  // one is still waiting
  boost::asio::post(io_, [state = state_] { state->posted_ns = 0; });
}

std::optional<std::chrono::steady_clock::time_point> IoProbe::PendingSince() const {
  const std::int64_t posted = state_->posted_ns.load();
  if (posted == 0) return std::nullopt;
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(posted)));
}

}  // namespace conduit::app
