#include "router/spool/header_reader.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcmetinf.h>
#include <dcmtk/oflog/oflog.h>

#include "router/spool/dataset_attributes.h"

namespace conduit::spool {
namespace {

std::string GetString(DcmItem& item, const DcmTagKey& tag) {
  OFString value;
  if (item.findAndGetOFStringArray(tag, value).bad()) return {};
  return std::string(value.c_str());
}

}  // namespace

InstanceHeader::InstanceHeader() : file_(std::make_unique<DcmFileFormat>()) {}
InstanceHeader::~InstanceHeader() = default;

Result<std::unique_ptr<InstanceHeader>, std::string> InstanceHeader::Read(
    const std::filesystem::path& path) {
  std::unique_ptr<InstanceHeader> header(new InstanceHeader());
  const OFCondition status = header->file_->loadFileUntilTag(
      path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect, DCM_PixelData);
  if (status.bad()) return std::string("cannot parse dataset: ") + status.text();
  header->attributes_ = std::make_unique<DatasetAttributes>(*header->file_->getDataset());
  return header;
}

std::string InstanceHeader::sop_class_uid() const {
  return GetString(*file_->getDataset(), DCM_SOPClassUID);
}
std::string InstanceHeader::sop_instance_uid() const {
  return GetString(*file_->getDataset(), DCM_SOPInstanceUID);
}
std::string InstanceHeader::study_instance_uid() const {
  return GetString(*file_->getDataset(), DCM_StudyInstanceUID);
}
std::string InstanceHeader::series_instance_uid() const {
  return GetString(*file_->getDataset(), DCM_SeriesInstanceUID);
}
std::string InstanceHeader::modality() const {
  return GetString(*file_->getDataset(), DCM_Modality);
}
std::string InstanceHeader::meta_string(unsigned short element) const {
  return GetString(*file_->getMetaInfo(), DcmTagKey(0x0002, element));
}
std::string InstanceHeader::private_information() const {
  const Uint8* bytes = nullptr;
  unsigned long length = 0;
  if (file_->getMetaInfo()->findAndGetUint8Array(DCM_PrivateInformation, bytes, &length).bad() ||
      bytes == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(bytes), length);
}

const rules::AttributeSource& InstanceHeader::attributes() const { return *attributes_; }

void ConfigureDcmtkLogging() {
  OFLog::configure(OFLogger::ERROR_LOG_LEVEL);
  // Parse errors become C-STORE statuses with a comment; DCMTK repeating them is noise.
  OFLog::getLogger("dcmtk.dcmdata").setLogLevel(OFLogger::OFF_LOG_LEVEL);
}

}  // namespace conduit::spool
