// What chat-cli prints: JSON with proto field names that parses, the text
// shapes, error lines scrubbed of the API key, and the hint a failed
// connection gets (a table of gRPC's messages).

#include "clients/cli/output.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace chat::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(OutputTest, JsonUsesProtoNamesAndPrintsDefaults) {
  chat::v1::ChatResponse response;
  response.set_response("Hi \"there\"\n");
  response.set_session_id("s1");
  response.mutable_usage()->set_input_tokens(3);
  const std::string line = ToJsonLine(response);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << line;
  EXPECT_EQ(json["response"], "Hi \"there\"\n");
  EXPECT_EQ(json["session_id"], "s1");
  EXPECT_EQ(json["usage"]["input_tokens"], 3);
  // Defaults are printed, so scripts find every field.
  EXPECT_EQ(json["turn_count"], 0);
  EXPECT_EQ(json["usage"]["output_tokens"], 0);
  // An unset optional stays absent (unknown cost is not zero cost).
  EXPECT_FALSE(json.contains("cost_usd"));
}

TEST(OutputTest, History) {
  chat::v1::GetHistoryResponse history;
  history.set_session_id("s1");
  history.set_turn_count(1);
  history.set_system_prompt("Be brief.");
  history.set_created_at("2026-01-01T00:00:00Z");
  auto* user = history.add_messages();
  user->set_role("user");
  user->set_content("hi");
  user->set_timestamp("2026-01-01T00:00:01Z");
  EXPECT_EQ(FormatHistory(history),
            "session s1: 1 turn, created 2026-01-01T00:00:00Z\n"
            "system: Be brief.\n"
            "[2026-01-01T00:00:01Z] user: hi\n");
}

TEST(OutputTest, HistoryWithBranchesNamesTurnsAndVersions) {
  chat::v1::GetHistoryResponse history;
  history.set_session_id("s1");
  history.set_turn_count(1);
  auto* user = history.add_messages();
  user->set_role("user");
  user->set_content("hi");
  user->set_timestamp("t1");
  user->set_turn_id(3);
  user->add_sibling_turn_ids(1);
  user->add_sibling_turn_ids(3);
  user->set_sibling_index(1);
  auto* answer = history.add_messages();
  *answer = *user;
  answer->set_role("assistant");
  answer->set_content("hello");
  EXPECT_EQ(FormatHistory(history),
            "session s1: 1 turn\n"
            "[t1] (turn 3, version 2/2: turns 1,3) user: hi\n"
            "[t1] assistant: hello\n");
}

TEST(OutputTest, SessionsAlignTheirColumns) {
  chat::v1::ListSessionsResponse sessions;
  EXPECT_EQ(FormatSessions(sessions), "no sessions\n");
  auto* a = sessions.add_sessions();
  a->set_session_id("a-long-session");
  a->set_turns(12);
  a->set_updated_at("T2");
  auto* b = sessions.add_sessions();
  b->set_session_id("b");
  b->set_turns(1);
  b->set_updated_at("T1");
  EXPECT_EQ(FormatSessions(sessions),
            "SESSION         TURNS  UPDATED\n"
            "a-long-session     12  T2\n"
            "b                   1  T1\n");
}

TEST(OutputTest, StatsShowCostOnlyWhenKnown) {
  chat::v1::GetStatsResponse stats;
  stats.set_total_sessions(2);
  stats.set_total_messages(6);
  stats.set_avg_messages_per_session(3);
  EXPECT_THAT(FormatStats(stats), HasSubstr("sessions:      2\n"));
  EXPECT_THAT(FormatStats(stats), HasSubstr("per session:   3.00\n"));
  EXPECT_THAT(FormatStats(stats), Not(HasSubstr("cost")));
  stats.set_total_cost_usd(0.0125);
  EXPECT_THAT(FormatStats(stats), HasSubstr("cost:          $0.012500\n"));
}

TEST(OutputTest, ResetDeleteStatus) {
  chat::v1::ResetSessionResponse reset;
  reset.set_status("reset");
  reset.set_session_id("s");
  reset.set_previous_turns(1);
  EXPECT_EQ(FormatReset(reset), "reset s (had 1 turn)\n");
  reset.set_status("not_found");
  EXPECT_EQ(FormatReset(reset), "no session s\n");
  chat::v1::DeleteSessionResponse deleted;
  deleted.set_status("cleared");
  deleted.set_session_id("s");
  EXPECT_EQ(FormatDelete(deleted), "deleted s\n");
  deleted.set_status("not_found");
  EXPECT_EQ(FormatDelete(deleted), "no session s\n");
  chat::v1::GetStatusResponse status;
  status.set_status("ok");
  status.set_service("chat-api");
  EXPECT_EQ(FormatStatus(status), "ok (chat-api)\n");
}

TEST(OutputTest, ErrorsNameTheCodeAndNeverTheKey) {
  EXPECT_EQ(FormatError(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                     "invalid API key"),
                        "chatd_abc"),
            "UNAUTHENTICATED: invalid API key");
  EXPECT_EQ(FormatError(grpc::Status(grpc::StatusCode::INTERNAL,
                                     "bad header Bearer chatd_abc!"),
                        "chatd_abc"),
            "INTERNAL: bad header Bearer [api key]!");
  EXPECT_EQ(FormatError(grpc::Status(grpc::StatusCode::NOT_FOUND, "x"), ""),
            "NOT_FOUND: x");
}

struct HintCase {
  std::string label;
  grpc::StatusCode code;
  std::string message;  // gRPC 1.51's, as chat-cli received it.
  std::string hint;     // A part of the hint; "" for none.
};

class ConnectionHintTest : public ::testing::TestWithParam<HintCase> {};

TEST_P(ConnectionHintTest, NamesTheFlagToLookAt) {
  const HintCase& c = GetParam();
  const std::string hint = ConnectionHint(grpc::Status(c.code, c.message));
  if (c.hint.empty()) {
    EXPECT_EQ(hint, "");
  } else {
    EXPECT_THAT(hint, HasSubstr(c.hint));
    EXPECT_THAT(FormatError(grpc::Status(c.code, c.message), ""),
                HasSubstr(absl::StrCat(c.message, " (", hint, ")")));
  }
}

constexpr char kUnverified[] =
    "failed to connect to all addresses; last error: UNKNOWN: "
    "ipv4:127.0.0.1:35593: Ssl handshake failed: SSL_ERROR_SSL: "
    "error:0A000086:SSL routines::certificate verify failed";

INSTANTIATE_TEST_SUITE_P(
    Table, ConnectionHintTest,
    ::testing::Values(
        HintCase{"UntrustedCertificate", grpc::StatusCode::UNAVAILABLE,
                 kUnverified, "--ca_file"},
        HintCase{"WrongName", grpc::StatusCode::UNAVAILABLE,
                 "failed to connect to all addresses; last error: UNKNOWN: "
                 "ipv4:127.0.0.1:1: Peer name other.internal is not in peer "
                 "certificate",
                 "--server_name"},
        HintCase{"TlsToAPlaintextPort", grpc::StatusCode::UNAVAILABLE,
                 "failed to connect to all addresses; last error: UNKNOWN: "
                 "ipv4:127.0.0.1:1: Ssl handshake failed: SSL_ERROR_SSL: "
                 "error:0A00010B:SSL routines::wrong version number",
                 "leave out --tls"},
        HintCase{"ClosedByTheServer", grpc::StatusCode::UNAVAILABLE,
                 "failed to connect to all addresses; last error: "
                 "UNAVAILABLE: ipv4:127.0.0.1:1: Socket closed",
                 "--client_cert"},
        HintCase{"ResetByTheServer", grpc::StatusCode::UNAVAILABLE,
                 "failed to connect to all addresses; last error: "
                 "UNAVAILABLE: ipv4:127.0.0.1:1: recvmsg:Connection reset by "
                 "peer",
                 "--client_cert"},
        HintCase{"NothingListening", grpc::StatusCode::UNAVAILABLE,
                 "failed to connect to all addresses; last error: "
                 "UNKNOWN: ipv4:127.0.0.1:1: Failed to connect to remote "
                 "host: Connection refused",
                 ""},
        // Only a connection that failed: a server's own words are its own.
        HintCase{"NotUnavailable", grpc::StatusCode::INTERNAL, kUnverified,
                 ""}),
    [](const ::testing::TestParamInfo<HintCase>& info) {
      return info.param.label;
    });

}  // namespace
}  // namespace chat::cli
