// Reads what routing needs from a spooled instance's header, stopping at Pixel Data so the
// cost does not grow with the image. DCMTK stays behind this interface.
#pragma once

#include <filesystem>
#include <string>

#include "router/net/result.h"

namespace conduit::spool {

struct InstanceHeader {
  std::string sop_class_uid;
  std::string sop_instance_uid;
  std::string study_instance_uid;
  std::string series_instance_uid;
  std::string modality;
};

// An error (a plain message) when the file's dataset cannot be parsed at all.
Result<InstanceHeader, std::string> ReadInstanceHeader(const std::filesystem::path& path);

// Quiets DCMTK's own logger (Conduit reports parse failures itself). Call once at startup.
void ConfigureDcmtkLogging();

}  // namespace conduit::spool
