// rules::AttributeSource over a DCMTK dataset: how the rules engine reads a spooled instance's
// header, in the daemon and in `conduit rules explain` alike.
#pragma once

#include <optional>

#include "rules/attribute_source.h"

class DcmItem;

namespace conduit::spool {

class DatasetAttributes : public rules::AttributeSource {
 public:
  explicit DatasetAttributes(DcmItem& dataset) : dataset_(dataset) {}
  std::optional<rules::AttributeValues> Find(const rules::AttributePath& path) const override;

 private:
  DcmItem& dataset_;
};

}  // namespace conduit::spool
