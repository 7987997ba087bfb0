#include "codecs/transfer_syntax_registry.h"

#include <gtest/gtest.h>

#include <set>

namespace conduit::codecs {
namespace {

TEST(TransferSyntaxRegistryTest, KnowsTheCommonSyntaxesAndHtj2k) {
  const TransferSyntax* explicit_le = FindTransferSyntax(uid::kExplicitVrLittleEndian);
  ASSERT_NE(explicit_le, nullptr);
  EXPECT_TRUE(explicit_le->explicit_vr);
  EXPECT_FALSE(explicit_le->encapsulated);
  const TransferSyntax* implicit_le = FindTransferSyntax(uid::kImplicitVrLittleEndian);
  ASSERT_NE(implicit_le, nullptr);
  EXPECT_FALSE(implicit_le->explicit_vr);
  EXPECT_EQ(FindTransferSyntax(uid::kExplicitVrBigEndian)->byte_order, ByteOrder::kBigEndian);
  EXPECT_TRUE(FindTransferSyntax(uid::kDeflatedExplicitVrLittleEndian)->deflated);
  // DCMTK 3.6.7 does not know these; we do.
  const TransferSyntax* htj2k = FindTransferSyntax("1.2.840.10008.1.2.4.201");
  ASSERT_NE(htj2k, nullptr);
  EXPECT_TRUE(htj2k->encapsulated);
  EXPECT_FALSE(htj2k->lossy);
  EXPECT_TRUE(FindTransferSyntax("1.2.840.10008.1.2.4.50")->lossy);
  EXPECT_EQ(FindTransferSyntax("1.2.3"), nullptr);
}

TEST(TransferSyntaxRegistryTest, UidsAreUniqueAndWellFormed) {
  std::set<std::string_view> seen;
  for (const TransferSyntax& syntax : AllTransferSyntaxes()) {
    EXPECT_TRUE(seen.insert(syntax.uid).second) << syntax.uid;
    EXPECT_TRUE(syntax.uid.starts_with("1.2.840.10008.1.2")) << syntax.uid;
    EXPECT_FALSE(syntax.name.empty());
    // Only uncompressed, non-deflated syntaxes have native pixel data.
    if (syntax.encapsulated) {
      EXPECT_FALSE(syntax.deflated);
    }
  }
}

}  // namespace
}  // namespace conduit::codecs
