// What chat-cli prints: JSON with proto field names that parses, the text
// shapes, and error lines scrubbed of the API key.

#include "clients/cli/output.h"

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

}  // namespace
}  // namespace chat::cli
