// ParseDotEnv follows python-dotenv on the shapes .env files take.

#include "common/dotenv.h"

#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ParseDotEnvTest, CommonShapes) {
  EXPECT_EQ(ParseDotEnv("# comment\n"
                        "\n"
                        "ANTHROPIC_API_KEY=sk-ant-123\n"
                        "  SPACED = value with spaces  \n"
                        "export EXPORTED=yes\n"
                        "SINGLE='a # not comment \\n'\n"
                        "DOUBLE=\"line1\\nline2 \\\"q\\\"\" # trailing\n"
                        "INLINE=abc # comment\n"
                        "HASH=abc#def\n"
                        "EMPTY=\n"
                        "CRLF=1\r\n"
                        "not an assignment\n"
                        "BAD NAME=1\n"),
            (Pairs{{"ANTHROPIC_API_KEY", "sk-ant-123"},
                   {"SPACED", "value with spaces"},
                   {"EXPORTED", "yes"},
                   {"SINGLE", "a # not comment \\n"},
                   {"DOUBLE", "line1\nline2 \"q\""},
                   {"INLINE", "abc"},
                   {"HASH", "abc#def"},
                   {"EMPTY", ""},
                   {"CRLF", "1"}}));
}

TEST(LoadDotEnvFileTest, RealEnvironmentWins) {
  std::string path = chat::testing::MakeTempDir() + "/.env";
  std::ofstream(path)
      << "CHAT_DOTENV_TEST_A=from-file\nCHAT_DOTENV_TEST_B=from-file\n";
  setenv("CHAT_DOTENV_TEST_A", "from-env", 1);
  unsetenv("CHAT_DOTENV_TEST_B");
  absl::StatusOr<std::vector<std::string>> set = LoadDotEnvFile(path);
  ASSERT_TRUE(set.ok());
  EXPECT_THAT(*set, ::testing::ElementsAre("CHAT_DOTENV_TEST_B"));
  EXPECT_STREQ(std::getenv("CHAT_DOTENV_TEST_A"), "from-env");
  EXPECT_STREQ(std::getenv("CHAT_DOTENV_TEST_B"), "from-file");
  EXPECT_FALSE(LoadDotEnvFile(path + ".missing").ok());
}

}  // namespace
}  // namespace chat
