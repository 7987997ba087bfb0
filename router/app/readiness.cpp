#include "router/app/readiness.h"

namespace conduit::app {

std::optional<std::string> Readiness::NotReadyReason() const {
  if (stopping_) return "stopping: no new associations are accepted";
  if (!spool_recovered_) return "starting: recovering the spool";
  if (!queues_recovered_) return "starting: rebuilding the destination queues from the spool";
  if (!rules_loaded_()) return "starting: no rules in force yet";
  if (!listener_open_) return "starting: the DICOM listener is not open yet";
  return std::nullopt;
}

}  // namespace conduit::app
