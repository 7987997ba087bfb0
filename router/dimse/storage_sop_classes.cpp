#include "router/dimse/storage_sop_classes.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcuid.h>

namespace conduit::dimse {

bool IsStandardStorageSopClass(const std::string& uid) {
  return dcmIsaStorageSOPClassUID(uid.c_str(), ESSC_All);
}

}  // namespace conduit::dimse
