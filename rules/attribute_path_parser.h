// Attribute paths as the rules file writes them, checked against the DICOM data dictionary:
//   Modality                                   a keyword
//   (0008,0060)  or  0008,0060                 a tag, hexadecimal
//   RequestAttributesSequence/ScheduledProcedureStepID
//   ReferencedStudySequence[0].ReferencedSOPInstanceUID   `/` or `.` between steps; [n] picks
//                                              one item (0-based), no index means any item
//   (0019,xx10)  or  0019,xx10                 a private tag; its creator is given apart
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "rules/attribute_source.h"

namespace conduit::rules {

struct ParsedAttributePath {
  AttributePath path;
  std::string vr;  // the dictionary VR of the last step; empty when unknown (private tags)
};

// `private_creator` is the creator of every private step in the path (one creator per path);
// it must be empty when the path has no private step. On failure, a plain message saying what
// is wrong (for a misspelt keyword, with the closest one).
std::variant<ParsedAttributePath, std::string> ParseAttributePath(std::string_view text,
                                                                  std::string_view private_creator);

// "(0008,0060)", "(0040,0275)/(0040,0009)", "(0008,1110)[0]/(0008,1155)", "(0019,xx10)".
std::string FormatAttributePath(const AttributePath& path);

// The dictionary keyword of a standard tag ("Modality"); empty when there is none.
std::string KeywordOfTag(Tag tag);

}  // namespace conduit::rules
