#include "router/spool/header_reader.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/oflog/oflog.h>

namespace conduit::spool {
namespace {

std::string GetString(DcmDataset& dataset, const DcmTagKey& tag) {
  OFString value;
  if (dataset.findAndGetOFStringArray(tag, value).bad()) return {};
  return std::string(value.c_str());
}

}  // namespace

Result<InstanceHeader, std::string> ReadInstanceHeader(const std::filesystem::path& path) {
  DcmFileFormat file;
  const OFCondition status = file.loadFileUntilTag(path.c_str(), EXS_Unknown, EGL_noChange,
                                                   DCM_MaxReadLength, ERM_autoDetect,
                                                   DCM_PixelData);
  if (status.bad()) return std::string("cannot parse dataset: ") + status.text();
  DcmDataset& dataset = *file.getDataset();
  InstanceHeader header;
  header.sop_class_uid = GetString(dataset, DCM_SOPClassUID);
  header.sop_instance_uid = GetString(dataset, DCM_SOPInstanceUID);
  header.study_instance_uid = GetString(dataset, DCM_StudyInstanceUID);
  header.series_instance_uid = GetString(dataset, DCM_SeriesInstanceUID);
  header.modality = GetString(dataset, DCM_Modality);
  return header;
}

void ConfigureDcmtkLogging() {
  OFLog::configure(OFLogger::ERROR_LOG_LEVEL);
  // Parse errors become C-STORE statuses with a comment; DCMTK repeating them is noise.
  OFLog::getLogger("dcmtk.dcmdata").setLogLevel(OFLogger::OFF_LOG_LEVEL);
}

}  // namespace conduit::spool
