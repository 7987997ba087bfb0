// Reads a spooled instance's header, stopping at Pixel Data so the cost does not grow with the
// image: what the spool record keeps, and the attributes the rules are evaluated against.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "codecs/result.h"
#include "rules/attribute_source.h"

class DcmFileFormat;

namespace conduit::spool {

class DatasetAttributes;

class InstanceHeader {
 public:
  // An error (a plain message) when the file's dataset cannot be parsed at all.
  static Result<std::unique_ptr<InstanceHeader>, std::string> Read(
      const std::filesystem::path& path);
  ~InstanceHeader();

  std::string sop_class_uid() const;
  std::string sop_instance_uid() const;
  std::string study_instance_uid() const;
  std::string series_instance_uid() const;
  std::string modality() const;
  // From the file meta header: (0002,xxxx) element as text, empty when absent.
  std::string meta_string(unsigned short element) const;
  // (0002,0102) PrivateInformation, where the spool record lives.
  std::string private_information() const;

  const rules::AttributeSource& attributes() const;

 private:
  InstanceHeader();
  std::unique_ptr<DcmFileFormat> file_;
  std::unique_ptr<DatasetAttributes> attributes_;
};

// Quiets DCMTK's own logger (Conduit reports parse failures itself). Call once at startup.
void ConfigureDcmtkLogging();

}  // namespace conduit::spool
