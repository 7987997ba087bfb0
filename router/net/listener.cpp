#include "router/net/listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "router/log/log.h"
#include "router/metrics/ingest_metrics.h"

namespace conduit::net {
namespace asio = boost::asio;

namespace {

// Beyond this many open connections a new one is closed at once, before reading anything:
// rejecting politely needs a PDU read, and a flood must not exhaust descriptors.
constexpr std::uint32_t kHardConnectionFactor = 2;

std::string PeerAddress(const asio::ip::tcp::endpoint& endpoint) {
  asio::ip::address address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address.to_string();
}

}  // namespace

Listener::Listener(asio::io_context& io_context, SessionDependencies& dependencies,
                   AdmissionCounter& admission)
    : io_context_(io_context),
      dependencies_(dependencies),
      strand_(asio::make_strand(io_context)),
      acceptor_(strand_),
      admission_(admission) {}

void Listener::Open() {
  const auto& config = dependencies_.config;
  const asio::ip::tcp::endpoint endpoint(asio::ip::make_address(config.bind_address), config.port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
}

asio::ip::tcp::endpoint Listener::local_endpoint() const { return acceptor_.local_endpoint(); }

void Listener::Close() {
  // The acceptor is not thread-safe: close it on its own strand, between accept operations.
  asio::post(strand_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
}

asio::awaitable<void> Listener::AcceptLoop() {
  const std::uint32_t hard_limit = dependencies_.config.max_associations * kHardConnectionFactor;
  for (;;) {
    // Each association gets a strand: its handlers never run concurrently, on any thread.
    asio::ip::tcp::socket socket(asio::make_strand(io_context_));
    auto [error] = co_await acceptor_.async_accept(socket, asio::as_tuple(asio::use_awaitable));
    if (error) {
      if (!acceptor_.is_open()) co_return;  // Close() was called
      log::Warning("accept failed: ", error.message());
      continue;
    }
    if (admission_.active() >= hard_limit) {
      dependencies_.metrics.AssociationRejected("connection_flood");
      continue;  // the socket closes as it goes out of scope
    }
    boost::system::error_code option_error;
    // DIMSE is request/response: Nagle would hold back every small response.
    socket.set_option(asio::ip::tcp::no_delay(true), option_error);
    socket.set_option(asio::socket_base::keep_alive(true), option_error);
    const auto remote = socket.remote_endpoint(option_error);
    if (option_error) continue;  // the peer is already gone
    const std::uint64_t id = next_association_id_++;
    auto executor = socket.get_executor();
    asio::co_spawn(
        executor,
        [&dependencies = dependencies_, &admission = admission_, socket = std::move(socket),
         peer = PeerAddress(remote), id]() mutable -> asio::awaitable<void> {
          AdmissionCounter::Slot slot(admission, std::move(peer));
          AssociationSession session(std::move(socket), dependencies, slot.facts(), id);
          co_await session.Run();
        },
        asio::detached);
  }
}

}  // namespace conduit::net
