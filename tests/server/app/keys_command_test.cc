// `chat-server keys` in process. Strategy: run the command with its output
// captured; usage errors must exit 2 naming the flag before any store is
// opened, and a memory store (empty on every run) shows the create, list and
// revoke paths end to end within one call each. The same command on a SQLite
// file, across processes, is in tests/integration/auth_test.cc.

#include "server/app/keys_command.h"

#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/service/api_key.h"
#include "server/store/conversation_store.h"

namespace chat {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;

class KeysCommandTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"chat-server", "keys"});
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    out_.str("");
    err_.str("");
    return RunKeysCommand(static_cast<int>(args.size()), argv.data(), out_,
                          err_);
  }

  absl::FlagSaver saver_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(KeysCommandTest, CreatePrintsOnlyTheKeyOnStdout) {
  ASSERT_EQ(Run({"create", "--tenant=acme", "--name=web", "--rpm=5",
                 "--expires=720h", "--store=memory"}),
            0)
      << err_.str();
  EXPECT_THAT(out_.str(), MatchesRegex("chatd_[0-9a-f]{12}_[0-9a-f]{64}\n"));
  EXPECT_THAT(err_.str(), HasSubstr("created API key "));
  EXPECT_THAT(err_.str(), HasSubstr("for tenant acme"));
  EXPECT_THAT(err_.str(), HasSubstr("rpm=5"));
}

TEST_F(KeysCommandTest, ListPrintsAHeaderEvenWhenEmpty) {
  ASSERT_EQ(Run({"list", "--store=memory"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("ID"));
  EXPECT_THAT(out_.str(), HasSubstr("TENANT"));
  EXPECT_THAT(out_.str(), HasSubstr("LIMITS"));
}

TEST_F(KeysCommandTest, RevokingAnUnknownKeyExitsOne) {
  EXPECT_EQ(Run({"revoke", "0123456789ab", "--store=memory"}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("no API key with id '0123456789ab'"));
  EXPECT_THAT(out_.str(), IsEmpty());
}

TEST_F(KeysCommandTest, UsageErrorsExitTwoNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "needs a command"},
           {{"create", "--tenant", "--name=w"}, "--tenant needs a value"},
           {{"create", "--tenant=acme", "--name=w", "--max_streams=1.5"},
            "--max_streams must be a whole number"},
           {{"create", "--tenant=acme", "--name=w", "--models=a,,b"},
            "--models"},
           {{"create", "--tenant=acme", "--name=w", "--budget_period=day"},
            "--budget_period needs --budget_tokens"},
           {{"create", "--tenant=acme", "--name=w", "--expires=forever"},
            "--expires"},
           {{"create", "--tenant=acme", "--name=w", "--expires=9999999999h"},
            "--expires must be"},
           {{"create", "--tenant=acme", "--name=a\x1b[2Jb"},
            "--name must be printable UTF-8"},
           {{"list", "--tenant=bad tenant"}, "--tenant"},
           {{"list", "extra"}, "unexpected argument 'extra'"},
           {{"revoke", "a", "b"}, "exactly one key id"},
           {{"create", "--tenant=acme", "--name=w", "--no_such_flag=1"},
            "unknown flag --no_such_flag"},
       }) {
    std::vector<std::string> args = c.args;
    args.push_back("--store=memory");
    EXPECT_EQ(Run(args), 2) << err_.str();
    EXPECT_THAT(err_.str(), HasSubstr(c.message));
    EXPECT_THAT(out_.str(), IsEmpty());
  }
}

// A name stored before names had to be printable (or by another writer) is
// listed escaped, never raw to the terminal.
TEST_F(KeysCommandTest, ListEscapesAStoredNameWithControlCharacters) {
  const std::string path = ::testing::TempDir() + "/keys_list_escape.db";
  std::remove(path.c_str());
  {
    absl::StatusOr<std::unique_ptr<store::ConversationStore>> store =
        store::OpenConversationStore("sqlite:" + path);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE(CreateStoredApiKey((*store)->keys(), "acme",
                                   "evil\x1b]0;owned\x07", absl::Now(),
                                   absl::InfiniteFuture(), {})
                    .ok());
  }
  ASSERT_EQ(Run({"list", "--store=sqlite:" + path}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("evil\\x1b]0;owned\\x07"));
  EXPECT_THAT(out_.str(), Not(HasSubstr("\x1b")));
}

TEST_F(KeysCommandTest, HelpPrintsUsage) {
  EXPECT_EQ(Run({"--help"}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("chat-server keys create"));
}

}  // namespace
}  // namespace chat
