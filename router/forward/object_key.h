// Where an S3 or folder destination puts an instance: a key template such as
// "{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm", whose placeholders are
// attribute paths as the rules write them (keywords or tags), filled in from the instance's
// header. Values are made safe for object keys and file names: only letters, digits, '.', '-'
// and '_' are kept (anything else becomes '_'), so a patient name with '^' or '/' cannot add
// a level or escape the folder, and an absent or empty value becomes "unknown".
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "codecs/result.h"
#include "router/forward/queued_instance.h"
#include "rules/attribute_source.h"

namespace conduit::forward {

class KeyTemplate {
 public:
  // A plain message on failure: an unknown keyword, an unclosed brace, an absolute or ".."
  // path, an empty template.
  static Result<KeyTemplate, std::string> Parse(std::string_view text);

  // The key for an instance. `sop_instance_uid` overrides the header's (a lossy transcode gives
  // the instance a new one).
  std::string Expand(const rules::AttributeSource& attributes,
                     const std::string& sop_instance_uid) const;

 private:
  struct Placeholder {
    rules::AttributePath path;
    bool is_sop_instance_uid = false;
  };
  std::vector<std::variant<std::string, Placeholder>> pieces_;
};

// The key of `item` sent as `sop_instance_uid`. The UIDs come from the queue; any other
// attribute from the spooled file's header, read only when the template needs one.
std::string ObjectKeyFor(const KeyTemplate& key_template, const QueuedInstance& item,
                         const std::string& sop_instance_uid);

// `value` cut to 128 characters, with every character other than [A-Za-z0-9._-] replaced by
// '_', trailing spaces (DICOM padding) dropped, "." and ".." made "_" and "__"; empty: "unknown".
std::string SafeKeyValue(std::string_view value);

}  // namespace conduit::forward
