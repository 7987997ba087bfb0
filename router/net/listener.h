// Accepts TCP connections and runs one AssociationSession per connection on its own strand:
// many associations on the few network threads, none with a thread of its own.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <cstdint>

#include "router/net/admission_counter.h"
#include "router/net/association_session.h"

namespace conduit::net {

class Listener {
 public:
  // Sessions outlive the listener's acceptor (they run until they end), so what they use is
  // owned by the caller: `dependencies` and `admission` must outlive the io_context.
  Listener(boost::asio::io_context& io_context, SessionDependencies& dependencies,
           AdmissionCounter& admission);

  // Binds and listens; throws std::system_error (startup fails fast with the reason).
  void Open();
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // Stops accepting (from any thread); open associations run on until they end.
  void Close();
  // The strand the acceptor lives on: AcceptLoop must run there.
  boost::asio::strand<boost::asio::io_context::executor_type> executor() const { return strand_; }
  boost::asio::awaitable<void> AcceptLoop();

 private:
  boost::asio::io_context& io_context_;
  SessionDependencies& dependencies_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::ip::tcp::acceptor acceptor_;
  AdmissionCounter& admission_;
  std::atomic<std::uint64_t> next_association_id_{1};
};

}  // namespace conduit::net
