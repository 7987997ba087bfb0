#include "router/net/admission_counter.h"

namespace conduit::net {

AdmissionCounter::Slot::Slot(AdmissionCounter& counter, std::string peer_address)
    : counter_(counter) {
  std::lock_guard lock(counter_.mutex_);
  facts_.peer_address = std::move(peer_address);
  facts_.associations_active = ++counter_.active_;
  facts_.associations_from_peer = ++counter_.active_by_peer_[facts_.peer_address];
}

AdmissionCounter::Slot::~Slot() {
  std::lock_guard lock(counter_.mutex_);
  --counter_.active_;
  auto found = counter_.active_by_peer_.find(facts_.peer_address);
  if (--found->second == 0) counter_.active_by_peer_.erase(found);
}

std::uint32_t AdmissionCounter::active() const {
  std::lock_guard lock(mutex_);
  return active_;
}

}  // namespace conduit::net
