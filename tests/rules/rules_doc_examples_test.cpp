// Every complete rules file in the README loads: the documentation cannot drift from the
// grammar.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rules/rule_set.h"
#include "tests/rules/fake_attributes.h"

#ifndef CONDUIT_SOURCE_DIR
#error "CONDUIT_SOURCE_DIR must name the source tree, to find README.md"
#endif

namespace conduit::rules {
namespace {

// The ```yaml blocks that are whole files (they start with "version:").
std::vector<std::string> RulesFilesIn(const std::string& markdown) {
  std::vector<std::string> files;
  std::istringstream lines(markdown);
  std::string line;
  std::string block;
  bool in_yaml = false;
  while (std::getline(lines, line)) {
    if (!in_yaml && line == "```yaml") {
      in_yaml = true;
      block.clear();
    } else if (in_yaml && line == "```") {
      in_yaml = false;
      if (block.starts_with("version:")) {
        files.push_back(block);
      }
    } else if (in_yaml) {
      block += line;
      block += '\n';
    }
  }
  return files;
}

TEST(RulesDocExamplesTest, EveryExampleFileLoads) {
  std::ifstream file(std::string(CONDUIT_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(file) << "README.md";
  std::ostringstream markdown;
  markdown << file.rdbuf();
  const std::vector<std::string> examples = RulesFilesIn(markdown.str());
  EXPECT_GE(examples.size(), 6U);  // the complete example and the five by topic

  RuleContext context;
  context.destinations = {"AI",           "ARCHIVE", "BREAST_ARCHIVE", "NEURO_PACS",
                          "ON_CALL_PACS", "PACS",    "READING_PACS",   "RESEARCH"};
  context.transcode_profiles = {"htj2k-lossless"};
  for (const std::string& example : examples) {
    EXPECT_TRUE(testing::LoadOrFail(example, context)) << example;
  }
}

}  // namespace
}  // namespace conduit::rules
