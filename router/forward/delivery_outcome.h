// How one delivery attempt ended, and how a DIMSE C-STORE status maps onto that.
#pragma once

#include <cstdint>

namespace conduit::forward {

enum class DeliveryOutcome {
  kDelivered,  // the destination has the instance
  kTransient,  // try again later (with backoff), until the item's maximum age
  kPermanent,  // retrying cannot help: straight to the dead-letter queue
};

// PS3.4 B.2.3 and PS3.7 C: 0x0000 is success; warnings (0xB0xx, and the general 0x0001, 0x0107,
// 0x0116) count as delivered unless the destination is configured otherwise; 0xA7xx (out of
// resources) and 0xFE00 (cancel) are transient; 0xA9xx (data set does not match), 0xCxxx
// (cannot understand) and 0x0122 (SOP class not supported) are permanent. Other failure codes
// are retried until the maximum age: a PACS's "processing failure" is usually a passing fault.
DeliveryOutcome ClassifyStoreStatus(std::uint16_t status, bool warning_is_success);

}  // namespace conduit::forward
