// chat-cli export and import through the real binary against two real
// chat-servers (memory stores, the echo provider): a session's JSON exported
// from one, imported into the other and exported again is the same bytes;
// `export --all` lines pipe into `import -`; the refusals exit with their
// status class's code.

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/clients/cli/cli_process.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::CliResult;
using ::chat::testing::MakeTempDir;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::unique_ptr<ServerProcess> StartServer() {
  auto server = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{"--provider=echo", "--store=memory",
                               "--listen=127.0.0.1:0", "--echo_delay=0s",
                               "--shutdown_grace=1s"});
  absl::Status started = server->Start();
  EXPECT_TRUE(started.ok()) << started;
  return server;
}

CliResult Cli(const ServerProcess& server, std::vector<std::string> args,
              const std::string& stdin_text = "") {
  args.insert(args.begin(), "--server=" + server.address());
  absl::StatusOr<CliResult> result =
      chat::testing::RunCli(CHAT_CLI_BINARY, args, {}, stdin_text);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : CliResult();
}

std::string WriteFile(const std::string& text) {
  const std::string path = absl::StrCat(MakeTempDir(), "/export.json");
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()),
            static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

class ExportCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = StartServer();
    target_ = StartServer();
    for (const char* message : {"one", "two"}) {
      ASSERT_EQ(Cli(*source_, {"-s", "s1", message}).exit_code, 0);
    }
    ASSERT_EQ(Cli(*source_, {"regenerate", "s1", "2"}).exit_code, 0);
    ASSERT_EQ(Cli(*source_, {"rename", "s1", "My chat"}).exit_code, 0);
    ASSERT_EQ(Cli(*source_, {"-s", "s2", "other"}).exit_code, 0);
  }

  std::unique_ptr<ServerProcess> source_;
  std::unique_ptr<ServerProcess> target_;
};

TEST_F(ExportCommandsTest, ExportImportExportIsTheSameBytes) {
  CliResult exported = Cli(*source_, {"export", "s1"});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_THAT(exported.out,
              StartsWith(R"({"format_version":1,"session_id":"s1")"));
  EXPECT_THAT(exported.out, HasSubstr(R"("title":"My chat")"));

  CliResult imported = Cli(*target_, {"import", WriteFile(exported.out)});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_EQ(imported.out, "imported s1 (2 turns)\n");
  EXPECT_EQ(Cli(*target_, {"export", "s1"}).out, exported.out);
}

TEST_F(ExportCommandsTest, MarkdownShowsTheActiveBranch) {
  CliResult markdown = Cli(*source_, {"export", "s1", "--markdown"});
  ASSERT_EQ(markdown.exit_code, 0) << markdown.err;
  EXPECT_THAT(markdown.out, StartsWith("# My chat\n"));
  EXPECT_THAT(markdown.out, HasSubstr("## User\n\ntwo\n"));
}

TEST_F(ExportCommandsTest, AllSessionsAsJsonLinesPipeIntoImport) {
  CliResult all = Cli(*source_, {"export", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  std::vector<std::string> lines =
      absl::StrSplit(all.out, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 2u);

  CliResult imported = Cli(*target_, {"import", "-"}, all.out);
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_THAT(imported.out, HasSubstr("imported s1 (2 turns)"));
  EXPECT_THAT(imported.out, HasSubstr("imported s2 (1 turns)"));
  EXPECT_EQ(Cli(*target_, {"export", "--all"}).out, all.out);
}

TEST_F(ExportCommandsTest, ATakenIdNeedsReplace) {
  const std::string file = WriteFile(Cli(*source_, {"export", "s1"}).out);
  CliResult taken = Cli(*source_, {"import", file});
  EXPECT_NE(taken.exit_code, 0);
  EXPECT_THAT(taken.err, HasSubstr("ALREADY_EXISTS"));
  EXPECT_EQ(Cli(*source_, {"import", "--replace", file}).exit_code, 0);
}

TEST_F(ExportCommandsTest, RefusalsExitWithTheirCodes) {
  CliResult unknown = Cli(*source_, {"export", "nope"});
  EXPECT_EQ(unknown.exit_code, 6) << unknown.err;  // NOT_FOUND
  CliResult garbage = Cli(*target_, {"import", WriteFile("not json\n")});
  EXPECT_EQ(garbage.exit_code, 2);
  EXPECT_THAT(garbage.err, HasSubstr("line 1 is not a session export"));
  std::string bad = Cli(*source_, {"export", "s1"}).out;
  bad.replace(bad.find(R"("role":"assistant")"), 18, R"("role":"robot")");
  CliResult invalid = Cli(*target_, {"import", WriteFile(bad)});
  EXPECT_EQ(invalid.exit_code, 3) << invalid.err;  // INVALID_ARGUMENT
  EXPECT_THAT(invalid.err, HasSubstr("session.messages[1].role"));
  CliResult usage = Cli(*source_, {"export", "--all", "s1"});
  EXPECT_EQ(usage.exit_code, 2);
}

}  // namespace
}  // namespace chat
