// Counts open associations in total and per peer address, for the limits in the listener
// config. A slot is held for as long as an association lives, whatever ends it.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "router/net/association_policy.h"

namespace conduit::net {

class AdmissionCounter {
 public:
  class Slot {
   public:
    Slot(AdmissionCounter& counter, std::string peer_address);
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    // The counts including this association, as the policy wants them.
    const AdmissionFacts& facts() const { return facts_; }

   private:
    AdmissionCounter& counter_;
    AdmissionFacts facts_;
  };

  std::uint32_t active() const;

 private:
  mutable std::mutex mutex_;
  std::uint32_t active_ = 0;
  std::map<std::string, std::uint32_t> active_by_peer_;
};

}  // namespace conduit::net
