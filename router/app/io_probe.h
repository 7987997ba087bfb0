// Proves that an io_context's threads still run handlers: a probe is a handler posted to it
// that records that it ran. A probe still waiting long after it was posted means every network
// thread is stuck (or the queue is hopelessly behind), which no handler could report itself.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

namespace conduit::app {

class IoProbe {
 public:
  explicit IoProbe(boost::asio::io_context& io);

  // Posts a probe unless one is still waiting; thread-safe.
  void Post();
  // When the waiting probe was posted; nullopt when none is waiting.
  std::optional<std::chrono::steady_clock::time_point> PendingSince() const;

 private:
  // Shared with the posted handler, which the io_context may run after the probe is gone.
  struct State {
    std::atomic<std::int64_t> posted_ns{0};  // 0: no probe waiting
  };
  boost::asio::io_context& io_;
  std::shared_ptr<State> state_;
};

}  // namespace conduit::app
