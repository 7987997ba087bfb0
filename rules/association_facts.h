// What the router knows about how an instance arrived, besides its attributes. Rules match on
// these (calling AE, called AE, source network, time of day); the spool keeps them durably with
// each instance so routing can be re-evaluated or explained later.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace conduit::rules {

struct AssociationFacts {
  std::string calling_ae;    // trailing spaces removed
  std::string called_ae;     // trailing spaces removed
  std::string peer_address;  // textual IP address of the sender
  std::uint16_t peer_port = 0;
  std::chrono::system_clock::time_point received_at;
};

}  // namespace conduit::rules
