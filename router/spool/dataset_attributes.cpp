#include "router/spool/dataset_attributes.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcelem.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <dcmtk/dcmdata/dcvr.h>

#include <vector>

namespace conduit::spool {
namespace {

// PS3.5 7.8.1: a private block (gggg,00xx) holds the creator; its elements are (gggg,xxyy).
std::optional<DcmTagKey> ResolveTag(DcmItem& item, const rules::PathStep& step) {
  if (step.private_creator.empty()) return DcmTagKey(step.tag.group, step.tag.element);
  for (Uint16 block = 0x10; block <= 0xFF; ++block) {
    OFString creator;
    if (item.findAndGetOFString(DcmTagKey(step.tag.group, block), creator).bad()) continue;
    if (std::string(creator.c_str()) == step.private_creator) {
      return DcmTagKey(step.tag.group,
                       static_cast<Uint16>((block << 8) | (step.tag.element & 0xFF)));
    }
  }
  return std::nullopt;
}

// String VRs keep their backslash-separated values in one string; binary VRs are read value
// by value.
bool IsStringVr(DcmEVR vr) {
  switch (vr) {
    case EVR_AE:
    case EVR_AS:
    case EVR_CS:
    case EVR_DA:
    case EVR_DS:
    case EVR_DT:
    case EVR_IS:
    case EVR_LO:
    case EVR_LT:
    case EVR_PN:
    case EVR_SH:
    case EVR_ST:
    case EVR_TM:
    case EVR_UC:
    case EVR_UI:
    case EVR_UR:
    case EVR_UT:
      return true;
    default:
      return false;
  }
}

void AppendValues(DcmElement& element, std::vector<std::string>& values) {
  if (element.getLength() == 0) return;
  const DcmEVR vr = element.getVR();
  if (IsStringVr(vr)) {
    OFString raw;
    if (element.getOFStringArray(raw, OFFalse).bad()) return;
    // LT, ST, UT and UR are single-valued: a backslash is just a character there.
    if (vr == EVR_LT || vr == EVR_ST || vr == EVR_UT || vr == EVR_UR) {
      values.emplace_back(raw.c_str(), raw.length());
      return;
    }
    std::string text(raw.c_str(), raw.length());
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = text.find('\\', start);
      values.push_back(text.substr(start, end == std::string::npos ? end : end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return;
  }
  for (unsigned long index = 0; index < element.getVM(); ++index) {
    OFString value;
    if (element.getOFString(value, index, OFFalse).good()) values.emplace_back(value.c_str());
  }
}

// The items holding the path's last step: every item of each sequence step, or the one indexed.
std::vector<DcmItem*> ItemsAlong(DcmItem& dataset, const rules::AttributePath& path) {
  std::vector<DcmItem*> items{&dataset};
  for (std::size_t i = 0; i + 1 < path.steps.size(); ++i) {
    const rules::PathStep& step = path.steps[i];
    std::vector<DcmItem*> next;
    for (DcmItem* item : items) {
      const auto tag = ResolveTag(*item, step);
      DcmSequenceOfItems* sequence = nullptr;
      if (!tag || item->findAndGetSequence(*tag, sequence).bad() || sequence == nullptr) continue;
      if (step.item) {
        if (*step.item < sequence->card()) next.push_back(sequence->getItem(*step.item));
      } else {
        for (unsigned long index = 0; index < sequence->card(); ++index) {
          next.push_back(sequence->getItem(index));
        }
      }
    }
    items = std::move(next);
  }
  return items;
}

// Reserves the first free private block of the step's group for its creator (PS3.5 7.8.1).
std::optional<DcmTagKey> ReservePrivateTag(DcmItem& item, const rules::PathStep& step) {
  for (Uint16 block = 0x10; block <= 0xFF; ++block) {
    const DcmTagKey creator_tag(step.tag.group, block);
    if (item.tagExists(creator_tag)) continue;
    if (item.putAndInsertString(DcmTag(creator_tag, EVR_LO), step.private_creator.c_str()).bad()) {
      return std::nullopt;
    }
    return DcmTagKey(step.tag.group, static_cast<Uint16>((block << 8) | (step.tag.element & 0xFF)));
  }
  return std::nullopt;
}

}  // namespace

std::optional<rules::AttributeValues> DatasetAttributes::Find(
    const rules::AttributePath& path) const {
  if (path.steps.empty()) return std::nullopt;
  std::optional<rules::AttributeValues> found;
  for (DcmItem* item : ItemsAlong(dataset_, path)) {
    const auto tag = ResolveTag(*item, path.steps.back());
    DcmElement* element = nullptr;
    if (!tag || item->findAndGetElement(*tag, element).bad() || element == nullptr) continue;
    if (!found) {
      found.emplace();
      found->vr = DcmVR(element->getVR()).getVRName();
    }
    AppendValues(*element, found->values);
  }
  return found;
}

void EditableDatasetAttributes::Set(const rules::AttributePath& path, const std::string& value) {
  if (path.steps.empty()) return;
  const rules::PathStep& last = path.steps.back();
  for (DcmItem* item : ItemsAlong(dataset_, path)) {
    std::optional<DcmTagKey> tag = ResolveTag(*item, last);
    if (!tag && !last.private_creator.empty()) tag = ReservePrivateTag(*item, last);
    if (!tag) continue;
    DcmTag full_tag(*tag);
    // A private attribute the dictionary does not know is written as LO, a text VR the rules'
    // string values fit.
    if (full_tag.getEVR() == EVR_UNKNOWN || full_tag.getEVR() == EVR_UN) full_tag.setVR(EVR_LO);
    item->putAndInsertString(full_tag, value.c_str(), OFTrue);
  }
}

void EditableDatasetAttributes::Delete(const rules::AttributePath& path) {
  if (path.steps.empty()) return;
  for (DcmItem* item : ItemsAlong(dataset_, path)) {
    if (const auto tag = ResolveTag(*item, path.steps.back())) item->findAndDeleteElement(*tag);
  }
}

}  // namespace conduit::spool
