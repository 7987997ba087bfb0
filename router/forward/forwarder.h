// A way of delivering one destination's queue: the DIMSE forwarder now, DICOMweb and S3 later.
// The forwarding service owns one per configured destination.
#pragma once

namespace conduit::forward {

class Forwarder {
 public:
  virtual ~Forwarder() = default;
  virtual void Start() = 0;
  // There may be work (new items, a retry came due, a pause ended); thread-safe and cheap.
  virtual void Wake() = 0;
  // Stops taking items; what is being sent is cut off (and sent again later, as it was not
  // confirmed). Returns at once; Stopped() tells when the last association has gone.
  virtual void Stop() = 0;
  virtual bool Stopped() const = 0;
};

}  // namespace conduit::forward
