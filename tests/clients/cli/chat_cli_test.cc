// chat-cli through the real binary against a real chat-server on loopback.
//
// Strategy: start chat-server as a child process (memory store, the echo
// provider, whose reply is deterministic) and run chat-cli as a person or a
// script would: one streamed message, every subcommand in text and --json
// (parsed as JSON), and the exit codes of the status classes that do not need
// a misbehaving server: NOT_FOUND, UNAUTHENTICATED (a server with API keys),
// UNAVAILABLE (nothing listening), a bad flag. Streaming and Ctrl-C of a
// one-shot message run on a pseudo-terminal and synchronise on what it
// shows, never on time. No test may find the API key in chat-cli's output.

#include <signal.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "chat/admin/v1/admin.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/clients/cli/cli_process.h"
#include "tests/testing/eventually.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::CliResult;
using ::chat::testing::Eventually;
using ::chat::testing::LoggedTurn;
using ::chat::testing::PtyProcess;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kAdminKey[] = "cli-test-admin-key-0123456789abcdef";

nlohmann::json ParseJson(const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  EXPECT_FALSE(json.is_discarded()) << "not JSON: " << text;
  return json;
}

class ChatCliTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra = {},
                   std::map<std::string, std::string> env = {}) {
    std::vector<std::string> args = {"--provider=echo", "--store=memory",
                                     "--listen=127.0.0.1:0",
                                     "--shutdown_grace=1s"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args,
                                              std::move(env));
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  // chat-cli with --server pointing at the test's server.
  CliResult Cli(std::vector<std::string> args,
                std::map<std::string, std::string> env = {},
                const std::string& stdin_text = "") {
    args.insert(args.begin(), "--server=" + server_->address());
    absl::StatusOr<CliResult> result =
        chat::testing::RunCli(CHAT_CLI_BINARY, args, env, stdin_text);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CliResult();
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_F(ChatCliTest, HelpListsTheExitCodes) {
  absl::StatusOr<CliResult> help =
      chat::testing::RunCli(CHAT_CLI_BINARY, {"--help"});
  ASSERT_TRUE(help.ok()) << help.status();
  EXPECT_EQ(help->exit_code, 0);
  EXPECT_THAT(help->out, HasSubstr("Exit codes:"));
  EXPECT_THAT(help->out, HasSubstr("4    UNAUTHENTICATED"));
  EXPECT_THAT(help->out, HasSubstr("CHAT_API_KEY"));
}

TEST_F(ChatCliTest, OneMessagePrintsTheReply) {
  StartServer({"--echo_delay=0s"});
  CliResult first = Cli({"Hello there", "-s", "one"});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out,
            "You said: \"Hello there\". This is the start of our "
            "conversation.\n");
  // The session was given, so nothing is said about it.
  EXPECT_EQ(first.err, "");

  CliResult second = Cli({"--session=one", "And now?"});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("Before that you said: \"Hello there\""));
}

// CHAT_SERVER names the server when --server does not, and --server wins
// over it.
TEST_F(ChatCliTest, ChatServerFromTheEnvironmentAndTheFlagWins) {
  StartServer({"--echo_delay=0s"});
  absl::StatusOr<CliResult> by_env =
      chat::testing::RunCli(CHAT_CLI_BINARY, {"-s", "env", "Hello"},
                            {{"CHAT_SERVER", server_->address()}});
  ASSERT_TRUE(by_env.ok()) << by_env.status();
  EXPECT_EQ(by_env->exit_code, 0) << by_env->err;
  EXPECT_THAT(by_env->out, HasSubstr("You said: \"Hello\""));
  // Port 1 refuses connections: the flag's server is the one asked.
  absl::StatusOr<CliResult> flag_wins = chat::testing::RunCli(
      CHAT_CLI_BINARY, {"--server=127.0.0.1:1", "--timeout=5s", "status"},
      {{"CHAT_SERVER", server_->address()}});
  ASSERT_TRUE(flag_wins.ok()) << flag_wins.status();
  EXPECT_EQ(flag_wins->exit_code, 8) << flag_wins->err;
}

TEST_F(ChatCliTest, AMessageWithoutASessionStartsOneAndNamesIt) {
  StartServer({"--echo_delay=0s"});
  // Off a terminal with no argument, the message is stdin.
  CliResult result = Cli({}, {}, "from a pipe\n");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, StartsWith("You said: \"from a pipe\"."));
  ASSERT_THAT(result.err, StartsWith("session: cli-"));
  const std::string session(
      absl::StripSuffix(result.err.substr(strlen("session: ")), "\n"));
  CliResult history = Cli({"history", session});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_THAT(history.out, HasSubstr("user: from a pipe"));
}

TEST_F(ChatCliTest, JsonOfAMessageIsTheFinalResponse) {
  StartServer({"--echo_delay=0s"});
  CliResult result = Cli({"--json", "-s", "j1", "--model=echo-2", "hi"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  nlohmann::json json = ParseJson(result.out);
  EXPECT_EQ(json["session_id"], "j1");
  EXPECT_EQ(json["turn_count"], 1);
  EXPECT_EQ(json["model"], "echo-2");
  EXPECT_EQ(json["response"],
            "You said: \"hi\". This is the start of our conversation.");
  EXPECT_TRUE(json["usage"].contains("input_tokens"));
}

TEST_F(ChatCliTest, EverySubcommandInTextAndJson) {
  StartServer({"--echo_delay=0s"});
  ASSERT_EQ(Cli({"-s", "s1", "--system", "Be brief.", "first"}).exit_code, 0);
  ASSERT_EQ(Cli({"-s", "s1", "second"}).exit_code, 0);
  ASSERT_EQ(Cli({"-s", "s2", "other"}).exit_code, 0);

  CliResult history = Cli({"history", "s1"});
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_THAT(history.out, StartsWith("session s1: 2 turns"));
  EXPECT_THAT(history.out, HasSubstr("system: Be brief.\n"));
  EXPECT_THAT(history.out, HasSubstr("] user: second\n"));
  nlohmann::json history_json = ParseJson(Cli({"history", "s1", "--json"}).out);
  EXPECT_EQ(history_json["turn_count"], 2);
  ASSERT_EQ(history_json["messages"].size(), 4u);
  EXPECT_EQ(history_json["messages"][0]["content"], "first");
  EXPECT_EQ(history_json["system_prompt"], "Be brief.");

  CliResult sessions = Cli({"sessions"});
  EXPECT_EQ(sessions.exit_code, 0) << sessions.err;
  EXPECT_THAT(sessions.out, StartsWith("SESSION"));
  EXPECT_THAT(sessions.out, HasSubstr("s1 "));
  nlohmann::json sessions_json = ParseJson(Cli({"--json", "sessions"}).out);
  ASSERT_EQ(sessions_json["sessions"].size(), 2u);
  EXPECT_EQ(sessions_json["sessions"][0]["session_id"], "s2");
  EXPECT_EQ(sessions_json["sessions"][1]["turns"], 2);

  CliResult stats = Cli({"stats"});
  EXPECT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_THAT(stats.out, HasSubstr("sessions:      2\n"));
  nlohmann::json stats_json = ParseJson(Cli({"stats", "--json"}).out);
  EXPECT_EQ(stats_json["total_sessions"], "2");  // int64: a JSON string.
  EXPECT_EQ(stats_json["total_messages"], "6");

  CliResult status = Cli({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(status.out, "ok (chat-api)\n");
  nlohmann::json status_json = ParseJson(Cli({"status", "--json"}).out);
  EXPECT_EQ(status_json["service"], "chat-api");

  CliResult reset = Cli({"reset", "s1"});
  EXPECT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_EQ(reset.out, "reset s1 (had 2 turns)\n");
  nlohmann::json reset_json = ParseJson(Cli({"--json", "reset", "s1"}).out);
  EXPECT_EQ(reset_json["status"], "reset");
  EXPECT_EQ(reset_json["previous_turns"], 0);

  CliResult deleted = Cli({"delete", "s2"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted s2\n");
  nlohmann::json delete_json = ParseJson(Cli({"delete", "s2", "--json"}).out);
  EXPECT_EQ(delete_json["status"], "not_found");
  EXPECT_EQ(Cli({"delete", "s2"}).out, "no session s2\n");
}

TEST_F(ChatCliTest, RenameAndSearch) {
  StartServer({"--echo_delay=0s"});
  ASSERT_EQ(Cli({"-s", "s1", "where do penguins live"}).exit_code, 0);
  ASSERT_EQ(Cli({"-s", "s2", "nothing here"}).exit_code, 0);

  CliResult renamed = Cli({"rename", "s1", "Penguin facts"});
  EXPECT_EQ(renamed.exit_code, 0) << renamed.err;
  EXPECT_EQ(renamed.out, "s1  Penguin facts\n");
  nlohmann::json renamed_json =
      ParseJson(Cli({"--json", "rename", "s1", "Birds"}).out);
  EXPECT_EQ(renamed_json["session"]["title"], "Birds");
  EXPECT_EQ(Cli({"rename", "missing", "x"}).exit_code, 6);

  CliResult found = Cli({"search", "penguins"});
  EXPECT_EQ(found.exit_code, 0) << found.err;
  EXPECT_THAT(found.out, HasSubstr("s1 #0 user: where do [penguins] live"));
  EXPECT_THAT(found.out, Not(HasSubstr("s2")));
  nlohmann::json found_json =
      ParseJson(Cli({"search", "penguins", "--json"}).out);
  ASSERT_FALSE(found_json["hits"].empty());
  EXPECT_EQ(found_json["hits"][0]["session_title"], "Birds");
  EXPECT_EQ(Cli({"search", "zebra"}).out, "no matches\n");
  EXPECT_EQ(Cli({"search", " "}).exit_code, 3);
  EXPECT_EQ(Cli({"search"}).exit_code, 2);
  EXPECT_EQ(Cli({"rename", "s1"}).exit_code, 2);
}

TEST_F(ChatCliTest, NewCreatesAnEmptySessionAndPrintsItsId) {
  StartServer({"--echo_delay=0s"});
  CliResult named =
      Cli({"new", "plans", "--system", "be terse", "--title", "Trip plans"});
  EXPECT_EQ(named.exit_code, 0) << named.err;
  EXPECT_EQ(named.out, "plans\n");
  // A session from now on: listed, its history empty, and taken.
  EXPECT_THAT(Cli({"sessions"}).out, HasSubstr("plans"));
  nlohmann::json history = ParseJson(Cli({"--json", "history", "plans"}).out);
  EXPECT_EQ(history["system_prompt"], "be terse");
  EXPECT_EQ(history["title"], "Trip plans");
  EXPECT_TRUE(history["messages"].is_null() || history["messages"].empty());
  CliResult again = Cli({"new", "plans"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_THAT(again.err, HasSubstr("already exists"));

  // No SESSION: the server names it; --json gives the whole answer.
  CliResult made = Cli({"new"});
  EXPECT_EQ(made.exit_code, 0) << made.err;
  EXPECT_THAT(made.out, ::testing::StartsWith("s-"));
  nlohmann::json created = ParseJson(Cli({"--json", "new", "-s", "j1"}).out);
  EXPECT_EQ(created["session"]["session_id"], "j1");
  EXPECT_FALSE(created["system_prompt"].get<std::string>().empty());

  // Its first turn lands in it.
  ASSERT_EQ(Cli({"-s", "plans", "hello"}).exit_code, 0);
  EXPECT_THAT(Cli({"history", "plans"}).out, HasSubstr("user: hello"));
  EXPECT_EQ(Cli({"new", "bad id"}).exit_code, 3);
  EXPECT_EQ(Cli({"new", "a", "b"}).exit_code, 2);
}

TEST_F(ChatCliTest, EditRegenerateAndSwitchBranches) {
  StartServer({"--echo_delay=0s"});
  ASSERT_EQ(Cli({"-s", "b", "one"}).exit_code, 0);
  ASSERT_EQ(Cli({"-s", "b", "two"}).exit_code, 0);
  // A linear history prints as before: no turn names.
  EXPECT_THAT(Cli({"history", "b"}).out, HasSubstr("] user: two\n"));

  CliResult edited = Cli({"edit", "b", "2", "deux"});
  EXPECT_EQ(edited.exit_code, 0) << edited.err;
  EXPECT_THAT(edited.out, HasSubstr("You said: \"deux\". Before that you "
                                    "said: \"one\""));
  nlohmann::json again = ParseJson(Cli({"--json", "regenerate", "b"}).out);
  EXPECT_EQ(again["turn_id"], 4);
  CliResult history = Cli({"history", "b"});
  EXPECT_THAT(history.out,
              HasSubstr("(turn 4, version 3/3: turns 2,3,4) user: deux\n"));

  CliResult switched = Cli({"switch", "b", "2"});
  EXPECT_EQ(switched.exit_code, 0) << switched.err;
  EXPECT_THAT(switched.out,
              HasSubstr("(turn 2, version 1/3: turns 2,3,4) user: two\n"));
  EXPECT_THAT(Cli({"history", "b"}).out, HasSubstr("user: two\n"));

  EXPECT_EQ(Cli({"switch", "b", "9"}).exit_code, 6);
  EXPECT_EQ(Cli({"switch", "b", "x"}).exit_code, 2);
  EXPECT_EQ(Cli({"edit", "b", "2"}).exit_code, 2);
}

TEST_F(ChatCliTest, NotFoundExits6) {
  StartServer();
  CliResult result = Cli({"history", "never-was"});
  EXPECT_EQ(result.exit_code, 6);
  EXPECT_EQ(result.out, "");
  EXPECT_THAT(result.err, StartsWith("chat-cli: NOT_FOUND: "));
}

TEST_F(ChatCliTest, CancelWithNoAnswerRunningExits6) {
  StartServer();
  CliResult result = Cli({"cancel", "idle"});
  EXPECT_EQ(result.exit_code, 6);
  EXPECT_THAT(result.err, HasSubstr("has no answer in progress"));
}

TEST_F(ChatCliTest, ResumeFollowsAnAnswerStartedElsewhere) {
  StartServer({"--echo_delay=200ms"});
  PtyProcess asker;
  ASSERT_TRUE(asker
                  .Start(CHAT_CLI_BINARY, {"--server=" + server_->address(),
                                           "-s", "r1", "resume me please"})
                  .ok());
  // The answer is under way: another chat-cli picks it up from its start
  // and follows it to the end.
  ASSERT_TRUE(asker.WaitFor("You said: ").ok()) << asker.output();
  const std::string reply =
      "You said: \"resume me please\". This is the start of our "
      "conversation.\n";
  CliResult resumed = Cli({"resume", "r1"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(resumed.out, reply);
  absl::StatusOr<int> code = asker.WaitForExit();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << asker.output();
  // One turn was stored: the resume asked the model nothing.
  CliResult history = Cli({"--json", "history", "r1"});
  ASSERT_EQ(history.exit_code, 0) << history.err;
  EXPECT_EQ(ParseJson(history.out)["messages"].size(), 2u) << history.out;

  CliResult none = Cli({"resume", "never-streamed"});
  EXPECT_EQ(none.exit_code, 6);
  EXPECT_THAT(none.err, HasSubstr("no stream to resume"));
}

TEST_F(ChatCliTest, InvalidArgumentExits3) {
  StartServer();
  CliResult result = Cli({"-s", "bad session id!", "hi"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_THAT(result.err, HasSubstr("INVALID_ARGUMENT"));
}

TEST_F(ChatCliTest, UnreachableServerExits8) {
  // A port that was just free: bound, read, released.
  StartServer();
  const std::string address = server_->address();
  ASSERT_TRUE(server_->Stop(SIGTERM).ok());
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"status"}, {"-s", "x", "hi"}}) {
    std::vector<std::string> all = {"--server=" + address, "--timeout=10s"};
    all.insert(all.end(), args.begin(), args.end());
    absl::StatusOr<CliResult> result =
        chat::testing::RunCli(CHAT_CLI_BINARY, all);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 8) << args[0];
    EXPECT_THAT(result->err, StartsWith("chat-cli: UNAVAILABLE: "));
  }
}

TEST_F(ChatCliTest, BadFlagsExit2NamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"--bogus", "status"}, "unknown flag --bogus"},
           {{"--timeout=soon", "status"}, "--timeout takes a duration"},
           {{"--ca_file=/x.pem", "status"}, "--ca_file needs --tls"},
           {{"--tls", "--ca_file=/no/such.pem", "status"},
            "--ca_file cannot read '/no/such.pem'"},
           {{"--server"}, "--server needs a value"},
           {{"history"}, "history needs a SESSION"},
           {{"one", "two"}, "unexpected argument 'two'"},
       }) {
    absl::StatusOr<CliResult> result =
        chat::testing::RunCli(CHAT_CLI_BINARY, c.args);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2) << c.args[0];
    EXPECT_THAT(result->err, HasSubstr(c.message));
  }
}

TEST_F(ChatCliTest, ApiKeysBadKeyExits4AndNoKeyIsEverPrinted) {
  StartServer({}, {{"CHAT_ADMIN_KEY", kAdminKey}});
  // A key for tenant acme, made with the admin service; from now on every
  // call needs a key.
  auto channel = grpc::CreateChannel(server_->address(),
                                     grpc::InsecureChannelCredentials());
  auto admin = chat::admin::v1::AdminService::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminKey));
  chat::admin::v1::CreateKeyRequest request;
  request.set_tenant("acme");
  request.set_name("cli");
  chat::admin::v1::CreateKeyResponse created;
  grpc::Status status = admin->CreateKey(&context, request, &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string key = created.key();
  ASSERT_FALSE(key.empty());
  const std::string wrong = key.substr(0, key.size() - 4) + "zzzz";

  // The good key, from the flag and from CHAT_API_KEY.
  CliResult by_flag = Cli({"--api_key=" + key, "-s", "k1", "hello"});
  EXPECT_EQ(by_flag.exit_code, 0) << by_flag.err;
  CliResult by_env = Cli({"history", "k1"}, {{"CHAT_API_KEY", key}});
  EXPECT_EQ(by_env.exit_code, 0) << by_env.err;
  EXPECT_THAT(by_env.out, HasSubstr("user: hello"));

  // No key, a wrong key (flag and environment), the admin key.
  std::vector<CliResult> refused = {
      Cli({"history", "k1"}),
      Cli({"--api_key", wrong, "-s", "k1", "hi"}),
      Cli({"sessions", "--json"}, {{"CHAT_API_KEY", wrong}}),
      Cli({"stats"}, {{"CHAT_API_KEY", kAdminKey}}),
  };
  for (const CliResult& result : refused) {
    EXPECT_EQ(result.exit_code, 4) << result.err;
    EXPECT_THAT(result.err, StartsWith("chat-cli: UNAUTHENTICATED: "));
  }
  for (const CliResult& result : refused) {
    for (const std::string& secret : {key, wrong, std::string(kAdminKey)}) {
      EXPECT_THAT(result.out + result.err, Not(HasSubstr(secret)));
      // Nor the key's secret part alone.
      EXPECT_THAT(result.out + result.err,
                  Not(HasSubstr(secret.substr(secret.size() - 16))));
    }
  }
  for (const CliResult& result : {by_flag, by_env}) {
    EXPECT_THAT(result.out + result.err, Not(HasSubstr(key)));
  }
}

TEST_F(ChatCliTest, ARejectedKeyIsNotEchoedBack) {
  StartServer();
  // A key with a character a header may not carry is refused before any
  // call, without quoting it.
  absl::StatusOr<CliResult> result = chat::testing::RunCli(
      CHAT_CLI_BINARY, {"--server=" + server_->address(), "status"},
      {{"CHAT_API_KEY", "secret\x01value"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->err, HasSubstr("CHAT_API_KEY"));
  EXPECT_THAT(result->err, Not(HasSubstr("secret")));
}

TEST_F(ChatCliTest, OneMessageStreamsAndCtrlCCancelsIt) {
  // Slow enough that the reply is still streaming when Ctrl-C comes; the
  // test waits for words, not for time.
  StartServer({"--echo_delay=300ms"});
  PtyProcess cli;
  ASSERT_TRUE(cli.Start(CHAT_CLI_BINARY,
                        {"--server=" + server_->address(), "-s", "slow1",
                         "stream this "
                         "slowly please"})
                  .ok());
  // The first words arrive before the reply is complete: it streams.
  absl::StatusOr<std::string> seen = cli.WaitFor("You said: ");
  ASSERT_TRUE(seen.ok()) << seen.status();
  ASSERT_TRUE(cli.Type("\x03").ok());
  absl::StatusOr<int> code = cli.WaitForExit();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 130) << cli.output();
  EXPECT_THAT(cli.output(), HasSubstr("chat-cli: cancelled"));
  EXPECT_THAT(cli.output(), Not(HasSubstr("conversation.")));
  // The server cancelled the turn and stored nothing.
  EXPECT_TRUE(Eventually([&] {
    return LoggedTurn(*server_, "slow1", "CANCELLED");
  })) << server_->Log();
  EXPECT_EQ(Cli({"history", "slow1"}).exit_code, 6);
}

}  // namespace
}  // namespace chat
