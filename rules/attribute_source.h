// How the rules engine reads an instance's attributes without knowing where they come from
// (DCMTK in the router, a map in tests). Paths name an attribute by tag, through sequences,
// with the private creator where the tag is private.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace conduit::rules {

struct Tag {
  std::uint16_t group = 0;
  std::uint16_t element = 0;
  friend bool operator==(const Tag&, const Tag&) = default;
  friend auto operator<=>(const Tag&, const Tag&) = default;
};

// One step of a path. For a private tag (odd group), `element` holds only the low byte
// (0x00xx) and `private_creator` names the block: the source resolves the block number.
struct PathStep {
  Tag tag;
  std::string private_creator;        // empty for standard tags
  std::optional<std::uint32_t> item;  // for a sequence step: one item (0-based); nullopt: any
  friend bool operator==(const PathStep&, const PathStep&) = default;
};

// Sequence steps first, the attribute last: ReferencedStudySequence[0] / ReferencedSOPClassUID.
struct AttributePath {
  std::vector<PathStep> steps;
  friend bool operator==(const AttributePath&, const AttributePath&) = default;
};

struct AttributeValues {
  std::string vr;                   // two letters, e.g. "CS", "PN", "DA"; "UN" when unknown
  std::vector<std::string> values;  // the value multiplicity split on backslash, as stored
                                    // (padding included); empty when the attribute is empty
};

class AttributeSource {
 public:
  virtual ~AttributeSource() = default;
  // nullopt when the attribute is absent. Through a sequence step without an item index the
  // values of every item are concatenated (a condition matches if any of them matches).
  virtual std::optional<AttributeValues> Find(const AttributePath& path) const = 0;
};

}  // namespace conduit::rules
