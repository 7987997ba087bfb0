// rules::AttributeSource over a DCMTK dataset: how the rules engine reads a spooled instance's
// header, in the daemon and in `conduit rules explain` alike.
#pragma once

#include <optional>

#include "rules/attribute_source.h"
#include "rules/rule_set.h"

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

namespace conduit::spool {

// The rules' edits applied to a DCMTK dataset. Set writes the value (backslash-separated values
// stay one string) into every item the path reaches, creating the attribute, and the private
// creator block when needed; Delete removes the attribute from every item the path reaches.
class EditableDatasetAttributes : public rules::EditableAttributes {
 public:
  explicit EditableDatasetAttributes(DcmItem& dataset) : dataset_(dataset), reader_(dataset) {}
  std::optional<rules::AttributeValues> Find(const rules::AttributePath& path) const override {
    return reader_.Find(path);
  }
  void Set(const rules::AttributePath& path, const std::string& value) override;
  void Delete(const rules::AttributePath& path) override;

 private:
  DcmItem& dataset_;
  DatasetAttributes reader_;
};

}  // namespace conduit::spool
