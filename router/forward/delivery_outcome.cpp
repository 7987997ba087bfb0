#include "router/forward/delivery_outcome.h"

namespace conduit::forward {

DeliveryOutcome ClassifyStoreStatus(std::uint16_t status, bool warning_is_success) {
  if (status == 0x0000) return DeliveryOutcome::kDelivered;
  const bool warning =
      (status & 0xFF00) == 0xB000 || status == 0x0001 || status == 0x0107 || status == 0x0116;
  if (warning) {
    // Resending would earn the same warning, so a destination that wants warnings treated as
    // failures gets them dead-lettered for a person to look at.
    return warning_is_success ? DeliveryOutcome::kDelivered : DeliveryOutcome::kPermanent;
  }
  if ((status & 0xFF00) == 0xA700 || status == 0xFE00) return DeliveryOutcome::kTransient;
  if ((status & 0xFF00) == 0xA900 || (status & 0xF000) == 0xC000 || status == 0x0122) {
    return DeliveryOutcome::kPermanent;
  }
  return DeliveryOutcome::kTransient;
}

}  // namespace conduit::forward
