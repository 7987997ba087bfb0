#include "router/spool/dataset_attributes.h"

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdatset.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcitem.h>
#include <dcmtk/dcmdata/dcsequen.h>
#include <gtest/gtest.h>

namespace conduit::spool {
namespace {

rules::AttributePath Path(std::initializer_list<rules::PathStep> steps) { return {steps}; }
rules::PathStep Step(std::uint16_t group, std::uint16_t element, std::string creator = {},
                     std::optional<std::uint32_t> item = std::nullopt) {
  return {{group, element}, std::move(creator), item};
}

class DatasetAttributesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dataset_.putAndInsertString(DCM_Modality, "CT");
    dataset_.putAndInsertString(DCM_ImageType, "ORIGINAL\\PRIMARY\\AXIAL");
    dataset_.putAndInsertString(DCM_PatientName, "");
    dataset_.putAndInsertUint16(DCM_Rows, 512);
    dataset_.putAndInsertString(DCM_StudyDescription, "a\\b");  // LO: multi-valued
    dataset_.putAndInsertString(DCM_ImageComments, "x\\y");     // LT: single-valued
    // Private block 0x10 of group 0019 belongs to "ACME 1.0".
    dataset_.putAndInsertString(DcmTagKey(0x0019, 0x0010), "ACME 1.0");
    dataset_.putAndInsertString(DcmTag(0x0019, 0x1001, EVR_LO), "secret");
    for (const char* id : {"P1", "P2"}) {
      DcmItem* item = nullptr;
      dataset_.findOrCreateSequenceItem(DCM_RequestAttributesSequence, item, -2);
      item->putAndInsertString(DCM_RequestedProcedureID, id);
    }
  }
  DcmDataset dataset_;
};

TEST_F(DatasetAttributesTest, ReadsValuesWithTheirVr) {
  DatasetAttributes attributes(dataset_);
  auto modality = attributes.Find(Path({Step(0x0008, 0x0060)}));
  ASSERT_TRUE(modality.has_value());
  EXPECT_EQ(modality->vr, "CS");
  EXPECT_EQ(modality->values, std::vector<std::string>{"CT"});
  auto image_type = attributes.Find(Path({Step(0x0008, 0x0008)}));
  ASSERT_TRUE(image_type.has_value());
  EXPECT_EQ(image_type->values, (std::vector<std::string>{"ORIGINAL", "PRIMARY", "AXIAL"}))
      << "values are split on backslash";
  auto rows = attributes.Find(Path({Step(0x0028, 0x0010)}));
  ASSERT_TRUE(rows.has_value());
  EXPECT_EQ(rows->vr, "US");
  EXPECT_EQ(rows->values, std::vector<std::string>{"512"});
  auto comments = attributes.Find(Path({Step(0x0020, 0x4000)}));
  ASSERT_TRUE(comments.has_value());
  EXPECT_EQ(comments->values, std::vector<std::string>{"x\\y"}) << "LT is single-valued";
}

TEST_F(DatasetAttributesTest, AbsentAndEmptyAreDifferent) {
  DatasetAttributes attributes(dataset_);
  EXPECT_FALSE(attributes.Find(Path({Step(0x0008, 0x0080)})).has_value());
  auto empty = attributes.Find(Path({Step(0x0010, 0x0010)}));
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->values.empty());
}

TEST_F(DatasetAttributesTest, WalksSequencesByItemOrAll) {
  DatasetAttributes attributes(dataset_);
  auto all = attributes.Find(Path({Step(0x0040, 0x0275), Step(0x0040, 0x1001)}));
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->values, (std::vector<std::string>{"P1", "P2"}));
  auto second = attributes.Find(Path({Step(0x0040, 0x0275, {}, 1), Step(0x0040, 0x1001)}));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->values, std::vector<std::string>{"P2"});
  EXPECT_FALSE(
      attributes.Find(Path({Step(0x0040, 0x0275, {}, 7), Step(0x0040, 0x1001)})).has_value());
}

TEST_F(DatasetAttributesTest, ResolvesPrivateTagsThroughTheirCreator) {
  DatasetAttributes attributes(dataset_);
  auto found = attributes.Find(Path({Step(0x0019, 0x0001, "ACME 1.0")}));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->values, std::vector<std::string>{"secret"});
  EXPECT_FALSE(attributes.Find(Path({Step(0x0019, 0x0001, "OTHER")})).has_value());
}

}  // namespace
}  // namespace conduit::spool

namespace conduit::spool {
namespace {

TEST_F(DatasetAttributesTest, EditsSetAndDeleteThroughSequencesAndPrivateBlocks) {
  EditableDatasetAttributes editable(dataset_);
  editable.Set(Path({Step(0x0010, 0x0010)}), "ANON^PATIENT");
  editable.Set(Path({Step(0x0008, 0x0080)}), "Site A");                     // absent: created
  editable.Set(Path({Step(0x0040, 0x0275), Step(0x0040, 0x1001)}), "RP9");  // every item
  editable.Set(Path({Step(0x0019, 0x0001, "ACME 1.0")}), "replaced");
  editable.Set(Path({Step(0x0021, 0x0002, "NEW CREATOR")}), "fresh");  // reserves a block
  editable.Delete(Path({Step(0x0008, 0x0060)}));

  OFString value;
  EXPECT_TRUE(dataset_.findAndGetOFString(DCM_PatientName, value).good());
  EXPECT_EQ(std::string(value.c_str()), "ANON^PATIENT");
  EXPECT_TRUE(dataset_.findAndGetOFString(DCM_InstitutionName, value).good());
  EXPECT_EQ(std::string(value.c_str()), "Site A");
  EXPECT_FALSE(dataset_.tagExists(DCM_Modality));
  for (int index = 0; index < 2; ++index) {
    EXPECT_TRUE(dataset_.findAndGetOFString(DCM_RequestedProcedureID, value, 0, OFTrue).good());
    DcmItem* item = nullptr;
    ASSERT_TRUE(dataset_.findAndGetSequenceItem(DCM_RequestAttributesSequence, item, index).good());
    EXPECT_TRUE(item->findAndGetOFString(DCM_RequestedProcedureID, value).good());
    EXPECT_EQ(std::string(value.c_str()), "RP9");
  }
  EXPECT_TRUE(dataset_.findAndGetOFString(DcmTagKey(0x0019, 0x1001), value).good());
  EXPECT_EQ(std::string(value.c_str()), "replaced");
  EXPECT_TRUE(dataset_.findAndGetOFString(DcmTagKey(0x0021, 0x0010), value).good());
  EXPECT_EQ(std::string(value.c_str()), "NEW CREATOR");
  EXPECT_TRUE(dataset_.findAndGetOFString(DcmTagKey(0x0021, 0x1002), value).good());
  EXPECT_EQ(std::string(value.c_str()), "fresh");
  // Read back through the same interface the rules use.
  auto fresh = editable.Find(Path({Step(0x0021, 0x0002, "NEW CREATOR")}));
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(fresh->values, std::vector<std::string>{"fresh"});
}

}  // namespace
}  // namespace conduit::spool
