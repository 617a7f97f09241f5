// ParseCliOptions as a table of command lines: what each asks for, and the
// message of each refusal (which must name the flag, never the key).

#include "clients/cli/cli_options.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::cli {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<CliOptions> Parse(std::vector<std::string> args,
                                 Environment env = {}, bool terminal = false) {
  return ParseCliOptions(args, env, terminal);
}

TEST(CliOptionsTest, Defaults) {
  absl::StatusOr<CliOptions> options = Parse({"hi"});
  ASSERT_THAT(options.status(), IsOk());
  EXPECT_EQ(options->mode, Mode::kChat);
  EXPECT_EQ(options->message, "hi");
  EXPECT_EQ(options->server, "localhost:50051");
  EXPECT_EQ(options->api_key, "");
  EXPECT_FALSE(options->tls);
  EXPECT_EQ(options->timeout, absl::Minutes(5));
  EXPECT_FALSE(options->model.has_value());
  EXPECT_FALSE(options->system.has_value());
  EXPECT_EQ(options->session, "");
  EXPECT_FALSE(options->json);
}

TEST(CliOptionsTest, FlagForms) {
  absl::StatusOr<CliOptions> options =
      Parse({"--server", "h:1", "--api_key=k_1", "-s", "S", "--json",
             "--timeout=30s", "--model", "m", "--system=Be brief.", "msg"});
  ASSERT_THAT(options.status(), IsOk());
  EXPECT_EQ(options->server, "h:1");
  EXPECT_EQ(options->api_key, "k_1");
  EXPECT_EQ(options->session, "S");
  EXPECT_TRUE(options->json);
  EXPECT_EQ(options->timeout, absl::Seconds(30));
  EXPECT_EQ(options->model, "m");
  EXPECT_EQ(options->system, "Be brief.");
  EXPECT_EQ(options->message, "msg");

  options = Parse({"-s=T", "--json=false", "-session", "U", "--nojson", "x"});
  ASSERT_THAT(options.status(), IsOk());
  EXPECT_EQ(options->session, "U");
  EXPECT_FALSE(options->json);
}

TEST(CliOptionsTest, EnvironmentIsOverriddenByFlags) {
  Environment env = {{"CHAT_SERVER", "env:1"}, {"CHAT_API_KEY", " envkey\n"}};
  absl::StatusOr<CliOptions> options = Parse({"status"}, env);
  ASSERT_THAT(options.status(), IsOk());
  EXPECT_EQ(options->server, "env:1");
  EXPECT_EQ(options->api_key, "envkey");  // A trailing newline is dropped.
  options = Parse({"--server=flag:2", "--api_key=flagkey", "status"}, env);
  ASSERT_THAT(options.status(), IsOk());
  EXPECT_EQ(options->server, "flag:2");
  EXPECT_EQ(options->api_key, "flagkey");
}

TEST(CliOptionsTest, ModeFromArguments) {
  EXPECT_EQ(Parse({}, {}, /*terminal=*/true)->mode, Mode::kRepl);
  absl::StatusOr<CliOptions> piped = Parse({}, {}, /*terminal=*/false);
  EXPECT_EQ(piped->mode, Mode::kChat);
  EXPECT_FALSE(piped->message.has_value());
  EXPECT_FALSE(Parse({"-"}, {}, true)->message.has_value());
  EXPECT_EQ(Parse({"--help"})->mode, Mode::kHelp);
  EXPECT_EQ(Parse({"-h", "--bogus_after_help_is_not_checked"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // After --, a message may begin with a dash.
  EXPECT_EQ(Parse({"--", "-5 degrees?"})->message, "-5 degrees?");
  EXPECT_EQ(Parse({"--", "status"})->mode, Mode::kCommand);
}

TEST(CliOptionsTest, Subcommands) {
  absl::StatusOr<CliOptions> history = Parse({"history", "abc"});
  ASSERT_THAT(history.status(), IsOk());
  EXPECT_EQ(history->mode, Mode::kCommand);
  EXPECT_EQ(history->command, "history");
  EXPECT_EQ(history->command_session, "abc");
  // -s names the session too.
  EXPECT_EQ(Parse({"reset", "-s", "x"})->command_session, "x");
  for (const char* command : {"sessions", "stats", "status"}) {
    absl::StatusOr<CliOptions> options = Parse({command, "--json"});
    ASSERT_THAT(options.status(), IsOk()) << command;
    EXPECT_EQ(options->command, command);
    EXPECT_TRUE(options->json);
  }
  EXPECT_EQ(Parse({"delete", "d"})->command, "delete");
}

TEST(CliOptionsTest, NewTakesAnOptionalSessionAndATitle) {
  absl::StatusOr<CliOptions> bare = Parse({"new"});
  ASSERT_THAT(bare.status(), IsOk());
  EXPECT_EQ(bare->mode, Mode::kCommand);
  EXPECT_EQ(bare->command, "new");
  EXPECT_EQ(bare->command_session, "");
  EXPECT_FALSE(bare->title.has_value());
  absl::StatusOr<CliOptions> named =
      Parse({"new", "abc", "--system", "be terse", "--title=Plans"});
  ASSERT_THAT(named.status(), IsOk());
  EXPECT_EQ(named->command_session, "abc");
  EXPECT_EQ(named->system, "be terse");
  EXPECT_EQ(named->title, "Plans");
  EXPECT_EQ(Parse({"new", "-s", "x"})->command_session, "x");
  EXPECT_THAT(Parse({"new", "a", "b"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CliOptionsTest, TlsFlags) {
  absl::StatusOr<CliOptions> options =
      Parse({"--tls", "--ca_file=ca.pem", "--client_cert=c.pem",
             "--client_key=k.pem", "--server_name=chat.example", "status"});
  ASSERT_THAT(options.status(), IsOk());
  EXPECT_TRUE(options->tls);
  EXPECT_EQ(options->ca_file, "ca.pem");
  EXPECT_EQ(options->client_cert, "c.pem");
  EXPECT_EQ(options->client_key, "k.pem");
  EXPECT_EQ(options->server_name, "chat.example");
}

struct RefusalCase {
  std::string name;
  std::vector<std::string> args;
  bool terminal;
  std::string message;
};

class CliOptionsRefusalTest : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(CliOptionsRefusalTest, NamesTheFlag) {
  const RefusalCase& c = GetParam();
  absl::StatusOr<CliOptions> options = Parse(c.args, {}, c.terminal);
  EXPECT_THAT(options.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(options.status().message()), HasSubstr(c.message));
}

INSTANTIATE_TEST_SUITE_P(
    Refusals, CliOptionsRefusalTest,
    ::testing::Values(
        RefusalCase{"Unknown", {"--nope", "x"}, false, "unknown flag --nope"},
        RefusalCase{
            "UnknownWithValue", {"--nope=1"}, false, "unknown flag --nope"},
        RefusalCase{
            "MissingValue", {"--model"}, false, "--model needs a value"},
        RefusalCase{"BadBool",
                    {"--json=maybe", "x"},
                    false,
                    "--json takes true or false"},
        RefusalCase{"BadTimeout",
                    {"--timeout=5", "x"},
                    false,
                    "--timeout takes a duration"},
        RefusalCase{"NegativeTimeout",
                    {"--timeout=-1s", "x"},
                    false,
                    "--timeout takes a duration"},
        RefusalCase{"EmptyServer",
                    {"--server=", "x"},
                    false,
                    "--server needs HOST:PORT"},
        RefusalCase{"EmptySession",
                    {"-s", "", "x"},
                    false,
                    "--session needs a session id"},
        RefusalCase{"CaWithoutTls",
                    {"--ca_file=a", "x"},
                    false,
                    "--ca_file needs --tls"},
        RefusalCase{"NameWithoutTls",
                    {"--server_name=a", "x"},
                    false,
                    "--server_name needs --tls"},
        RefusalCase{"CertWithoutKey",
                    {"--tls", "--client_cert=c", "x"},
                    false,
                    "--client_cert needs --client_key"},
        RefusalCase{"KeyWithoutCert",
                    {"--tls", "--client_key=k", "x"},
                    false,
                    "--client_key needs --client_cert"},
        RefusalCase{"JsonRepl", {"--json"}, true, "--json needs a message"},
        RefusalCase{
            "TwoMessages", {"a", "b"}, false, "unexpected argument 'b'"},
        RefusalCase{
            "HistoryNoSession", {"history"}, false, "history needs a SESSION"},
        RefusalCase{"HistoryTwoSessions",
                    {"history", "a", "b"},
                    false,
                    "history takes one SESSION"},
        RefusalCase{
            "StatsArgument", {"stats", "a"}, false, "stats takes no argument"}),
    [](const ::testing::TestParamInfo<RefusalCase>& info) {
      return info.param.name;
    });

TEST(CliOptionsTest, ABadKeyIsRefusedWithoutQuotingIt) {
  absl::StatusOr<CliOptions> options = Parse({"--api_key=sec ret", "x"});
  EXPECT_THAT(options.status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(options.status().message()), HasSubstr("--api_key"));
  EXPECT_THAT(std::string(options.status().message()),
              Not(HasSubstr("sec ret")));
  options = Parse({"x"}, {{"CHAT_API_KEY", "sec\tret"}});
  EXPECT_THAT(std::string(options.status().message()),
              HasSubstr("CHAT_API_KEY"));
  EXPECT_THAT(std::string(options.status().message()), Not(HasSubstr("sec")));
}

TEST(CliOptionsTest, UsageNamesEveryFlagAndTheExitCodes) {
  const std::string usage = UsageText();
  for (const char* flag :
       {"--server",      "--api_key",    "--tls",         "--ca_file",
        "--client_cert", "--client_key", "--server_name", "--timeout",
        "--model",       "--system",     "--json",        "--session",
        "--title",       "CHAT_SERVER",  "CHAT_API_KEY",  "/reset",
        "/history",      "/sessions",    "/model",        "/system",
        "/quit",         "Exit codes"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
}

}  // namespace
}  // namespace chat::cli
