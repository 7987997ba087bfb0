#include "router/forward/secret_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace conduit::forward {
namespace {

class SecretFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("conduit-secret-file-test-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory_);
    std::filesystem::create_directories(directory_);
    path_ = directory_ / "token";
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }

  void Write(const std::string& content) const {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << content;
  }

  // Sets the file's modification time, so that a change never hides in the same clock tick.
  void SetModified(time_t seconds, long nanoseconds = 0) const {
    const timespec times[2] = {{seconds, nanoseconds}, {seconds, nanoseconds}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path_.c_str(), times, 0), 0);
  }

  std::string MustRead(SecretFile& secret) const {
    auto content = secret.Read();
    EXPECT_TRUE(content.ok()) << (content.ok() ? "" : content.error().message);
    return content.ok() ? content.value() : std::string();
  }

  std::filesystem::path directory_;
  std::filesystem::path path_;
};

TEST_F(SecretFileTest, ReadsTheContentWithoutSurroundingWhiteSpace) {
  Write("  s3cr3t token\t\r\n\n");
  SecretFile secret(path_);
  EXPECT_EQ(secret.path(), path_);
  EXPECT_EQ(MustRead(secret), "s3cr3t token");
  EXPECT_EQ(MustRead(secret), "s3cr3t token");
}

TEST_F(SecretFileTest, ReadsAgainWhenTheSizeChanges) {
  Write("first\n");
  SetModified(1'700'000'000);
  SecretFile secret(path_);
  EXPECT_EQ(MustRead(secret), "first");
  Write("the second token\n");
  SetModified(1'700'000'000);  // same time: only the size tells
  EXPECT_EQ(MustRead(secret), "the second token");
}

TEST_F(SecretFileTest, ReadsAgainWhenOnlyTheModificationTimeChanges) {
  Write("token-A\n");
  SetModified(1'700'000'000, 100);
  SecretFile secret(path_);
  EXPECT_EQ(MustRead(secret), "token-A");
  Write("token-B\n");  // same size
  SetModified(1'700'000'000, 200);
  EXPECT_EQ(MustRead(secret), "token-B");
}

TEST_F(SecretFileTest, UnchangedSizeAndTimeAreNotReadAgain) {
  Write("token-A\n");
  SetModified(1'700'000'000);
  SecretFile secret(path_);
  EXPECT_EQ(MustRead(secret), "token-A");
  Write("token-B\n");
  SetModified(1'700'000'000);
  EXPECT_EQ(MustRead(secret), "token-A") << "documented: only mtime and size are checked";
}

TEST_F(SecretFileTest, MissingFileIsAnErrorNamingThePath) {
  SecretFile secret(path_);
  auto content = secret.Read();
  ASSERT_FALSE(content.ok());
  EXPECT_NE(content.error().message.find(path_.string()), std::string::npos)
      << content.error().message;
  // It can appear later.
  Write("late\n");
  EXPECT_EQ(MustRead(secret), "late");
}

TEST_F(SecretFileTest, EmptyOrBlankFileIsAnErrorNamingThePath) {
  Write("");
  SecretFile empty(path_);
  auto content = empty.Read();
  ASSERT_FALSE(content.ok());
  EXPECT_NE(content.error().message.find(path_.string()), std::string::npos);
  EXPECT_NE(content.error().message.find("empty"), std::string::npos) << content.error().message;

  Write(" \n\t\n");
  SecretFile blank(path_);
  EXPECT_FALSE(blank.Read().ok());
}

TEST_F(SecretFileTest, FileEmptiedAfterUseIsAnErrorUntilRefilled) {
  Write("token\n");
  SetModified(1'700'000'000);
  SecretFile secret(path_);
  EXPECT_EQ(MustRead(secret), "token");
  Write("");
  SetModified(1'700'000'001);
  EXPECT_FALSE(secret.Read().ok()) << "a stale token is not kept once the file is emptied";
  Write("fresh\n");
  SetModified(1'700'000'002);
  EXPECT_EQ(MustRead(secret), "fresh");
}

TEST_F(SecretFileTest, RemovedFileIsAnError) {
  Write("token\n");
  SecretFile secret(path_);
  EXPECT_EQ(MustRead(secret), "token");
  std::filesystem::remove(path_);
  EXPECT_FALSE(secret.Read().ok());
}

TEST(ParseKeyValueLinesTest, ReadsAnAwsCredentialsFile) {
  const auto values = ParseKeyValueLines(
      "# written by the token refresher\n"
      "; also a comment\n"
      "[default]\n"
      "aws_access_key_id = AKIAEXAMPLE\n"
      "AWS_Secret_Access_Key=wJalr/K7MDENG+bPxRfi=\n"
      "   aws_session_token   =   token with spaces   \r\n"
      "\n"
      "line without an equals sign\n"
      "REGION = eu-west-1\n");
  EXPECT_EQ(values.size(), 4U);
  EXPECT_EQ(values.at("aws_access_key_id"), "AKIAEXAMPLE");
  EXPECT_EQ(values.at("aws_secret_access_key"), "wJalr/K7MDENG+bPxRfi=")
      << "only the first '=' separates";
  EXPECT_EQ(values.at("aws_session_token"), "token with spaces");
  EXPECT_EQ(values.at("region"), "eu-west-1");
  EXPECT_FALSE(values.contains("[default]"));
}

TEST(ParseKeyValueLinesTest, PlainNamesAndEmptyText) {
  EXPECT_TRUE(ParseKeyValueLines("").empty());
  EXPECT_TRUE(ParseKeyValueLines("# only a comment\n[section]\n").empty());
  const auto values = ParseKeyValueLines("access_key_id=a\nsecret_access_key=b");
  EXPECT_EQ(values.at("access_key_id"), "a");
  EXPECT_EQ(values.at("secret_access_key"), "b") << "the last line needs no newline";
  EXPECT_EQ(ParseKeyValueLines("empty =\n").at("empty"), "");
}

}  // namespace
}  // namespace conduit::forward
