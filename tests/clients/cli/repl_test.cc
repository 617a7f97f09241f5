// chat-cli's interactive prompt, on a pseudo-terminal, against a real
// chat-server.
//
// Strategy: run chat-cli under forkpty, so that it sees a terminal (and picks
// the prompt), type lines into the master side, and wait for what the
// terminal shows (the prompt, the reply's words, "[cancelled]"); never for
// time. Ctrl-C is the byte 0x03 typed into the terminal: the line discipline
// turns it into SIGINT for chat-cli, as it does for a person. That a
// cancelled turn was not stored is read from the server's turn log line and
// from /history.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/clients/cli/cli_process.h"
#include "tests/testing/eventually.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::Eventually;
using ::chat::testing::LoggedTurn;
using ::chat::testing::PtyProcess;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPrompt[] = "\r\n> ";

class ReplTest : public ::testing::Test {
 protected:
  void StartServer(const std::string& echo_delay) {
    server_ = std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY,
        std::vector<std::string>{"--provider=echo", "--store=memory",
                                 "--listen=127.0.0.1:0", "--shutdown_grace=1s",
                                 "--echo_delay=" + echo_delay});
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  void StartCli(const std::string& session) {
    ASSERT_TRUE(cli_.Start(CHAT_CLI_BINARY,
                           {"--server=" + server_->address(), "-s", session})
                    .ok());
    Expect(absl::StrCat("session ", session, " on "));
    Expect("> ");
  }

  // Waits for `text` on the terminal; what came before it.
  std::string Expect(const std::string& text) {
    absl::StatusOr<std::string> seen = cli_.WaitFor(text);
    EXPECT_TRUE(seen.ok()) << seen.status();
    return seen.ok() ? *seen : "";
  }

  std::unique_ptr<ServerProcess> server_;
  PtyProcess cli_;
};

TEST_F(ReplTest, MessagesHistoryResetAndQuit) {
  StartServer("0s");
  StartCli("r1");
  ASSERT_TRUE(cli_.Type("hello prompt\n").ok());
  Expect("You said: \"hello prompt\". This is the start of our conversation.");
  Expect(kPrompt);
  ASSERT_TRUE(cli_.Type("and again\n").ok());
  Expect("Before that you said: \"hello prompt\". This is message 2");
  Expect(kPrompt);

  ASSERT_TRUE(cli_.Type("/history\n").ok());
  std::string history = Expect(kPrompt);
  EXPECT_THAT(history, HasSubstr("session r1: 2 turns"));
  EXPECT_THAT(history, HasSubstr("user: hello prompt"));
  EXPECT_THAT(history, HasSubstr("user: and again"));

  ASSERT_TRUE(cli_.Type("/sessions\n").ok());
  std::string sessions = Expect(kPrompt);
  EXPECT_THAT(sessions, HasSubstr("r1 "));

  ASSERT_TRUE(cli_.Type("/reset\n").ok());
  EXPECT_THAT(Expect(kPrompt), HasSubstr("reset r1 (had 2 turns)"));
  ASSERT_TRUE(cli_.Type("/history\n").ok());
  EXPECT_THAT(Expect(kPrompt), HasSubstr("session r1: 0 turns"));

  // The model is the echo's name for it; the reply says which one answered
  // only in --json, so the turn log line is the witness.
  ASSERT_TRUE(cli_.Type("/model echo-7\n").ok());
  EXPECT_THAT(Expect(kPrompt), HasSubstr("model: echo-7"));
  ASSERT_TRUE(cli_.Type("/system Answer in French.\n").ok());
  EXPECT_THAT(Expect(kPrompt), HasSubstr("system prompt set"));
  ASSERT_TRUE(cli_.Type("/nonsense\n").ok());
  EXPECT_THAT(Expect(kPrompt), HasSubstr("unknown command /nonsense"));
  ASSERT_TRUE(cli_.Type("/help\n").ok());
  EXPECT_THAT(Expect(kPrompt), HasSubstr("/system TEXT"));

  ASSERT_TRUE(cli_.Type("/quit\n").ok());
  absl::StatusOr<int> code = cli_.WaitForExit();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

TEST_F(ReplTest, SystemPromptOfASessionWithTurnsMovesToANewSession) {
  StartServer("0s");
  StartCli("sys1");
  ASSERT_TRUE(cli_.Type("first\n").ok());
  Expect("start of our conversation.");
  Expect(kPrompt);
  ASSERT_TRUE(cli_.Type("/system Be terse.\n").ok());
  EXPECT_THAT(Expect(kPrompt),
              HasSubstr("system prompt set; new session cli-"));
  ASSERT_TRUE(cli_.Type("second\n").ok());
  // A new session: the echo does not remember "first".
  Expect("You said: \"second\". This is the start of our conversation.");
  Expect(kPrompt);
  ASSERT_TRUE(cli_.Type("/history\n").ok());
  EXPECT_THAT(Expect(kPrompt), HasSubstr("system: Be terse."));
  // Ctrl-D leaves.
  ASSERT_TRUE(cli_.Type("\x04").ok());
  absl::StatusOr<int> code = cli_.WaitForExit();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

TEST_F(ReplTest, CtrlCCancelsTheReplyThenCtrlCAtThePromptExits) {
  // Slow deltas, so the reply is still streaming when Ctrl-C comes.
  StartServer("300ms");
  StartCli("c1");
  ASSERT_TRUE(cli_.Type("stop me please\n").ok());
  Expect("You said: ");
  ASSERT_TRUE(cli_.Type("\x03").ok());
  std::string cancelled = Expect("[cancelled]");
  EXPECT_THAT(cancelled, Not(HasSubstr("conversation.")));
  Expect(kPrompt);
  // The server cancelled the turn upstream and stored nothing.
  EXPECT_TRUE(Eventually([&] {
    return LoggedTurn(*server_, "c1", "CANCELLED");
  })) << server_->Log();
  EXPECT_FALSE(LoggedTurn(*server_, "c1", "OK"));
  ASSERT_TRUE(cli_.Type("/history\n").ok());
  EXPECT_THAT(Expect(kPrompt), HasSubstr("session c1 has no turns yet"));

  // The prompt still works after a cancel.
  ASSERT_TRUE(cli_.Type("short\n").ok());
  Expect("This is the start of our conversation.");
  Expect(kPrompt);

  ASSERT_TRUE(cli_.Type("\x03").ok());
  absl::StatusOr<int> code = cli_.WaitForExit();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 130);
}

}  // namespace
}  // namespace chat
