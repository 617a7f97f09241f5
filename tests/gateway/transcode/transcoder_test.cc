// JSON <-> protobuf quirks the REST contract depends on: both field
// spellings in, proto names out, defaults printed, 64-bit integers as
// numbers, errors that say where the input is wrong.

#include "gateway/transcode/transcoder.h"

#include "chat/v1/chat.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<google::protobuf::Message> Build(
    const google::protobuf::Descriptor* type, absl::string_view body_field,
    absl::string_view body, std::vector<Binding> path = {},
    std::vector<Binding> query = {}) {
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> m =
      BuildRequest(type, body_field, body, path, query);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *std::move(m) : nullptr;
}

TEST(TranscoderTest, AcceptsBothSpellingsAndIgnoresUnknownFields) {
  auto m = Build(
      chat::v1::ChatRequest::descriptor(), "*",
      R"({"message":"hi","sessionId":"s1","unknown":{"a":[1]},"max_tokens":5})");
  auto* req = dynamic_cast<chat::v1::ChatRequest*>(m.get());
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(req->message(), "hi");
  EXPECT_EQ(req->session_id(), "s1");
  EXPECT_EQ(req->max_tokens(), 5);
}

TEST(TranscoderTest, NullSystemPromptIsAbsent) {
  auto m = Build(chat::v1::ChatRequest::descriptor(), "*",
                 R"({"message":"hi","session_id":"s1","system_prompt":null})");
  auto* req = dynamic_cast<chat::v1::ChatRequest*>(m.get());
  ASSERT_NE(req, nullptr);
  EXPECT_FALSE(req->has_system_prompt());
}

TEST(TranscoderTest, EmptyBodyIsEmptyMessage) {
  auto m = Build(chat::v1::ChatRequest::descriptor(), "*", "  ");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->ByteSizeLong(), 0u);
}

TEST(TranscoderTest, MalformedJsonSaysWhere) {
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> m =
      BuildRequest(chat::v1::ChatRequest::descriptor(), "*",
                   R"({"message": "hi",})", {}, {});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr("malformed JSON body"));
  EXPECT_THAT(m.status().message(), HasSubstr("line 1, column 18"));
}

TEST(TranscoderTest, WrongTypeNamesTheField) {
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> m =
      BuildRequest(chat::v1::ChatRequest::descriptor(), "*",
                   R"({"max_tokens": "many"})", {}, {});
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("max_tokens"));
}

TEST(TranscoderTest, NonObjectBodyIsRejected) {
  EXPECT_FALSE(CheckJsonObject("[1,2]").ok());
  EXPECT_FALSE(CheckJsonObject("\"x\"").ok());
  EXPECT_TRUE(CheckJsonObject(R"({"a":[{}]})").ok());
}

TEST(TranscoderTest, PathAndQueryBind) {
  auto m = Build(chat::v1::ListSessionsRequest::descriptor(), "", "", {},
                 {{"page_size", "7"}, {"pageToken", "abc"}, {"ignored", "1"}});
  auto* req = dynamic_cast<chat::v1::ListSessionsRequest*>(m.get());
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(req->page_size(), 7);
  EXPECT_EQ(req->page_token(), "abc");

  auto h = Build(chat::v1::GetHistoryRequest::descriptor(), "", "",
                 {{"session_id", "s 1"}});
  EXPECT_EQ(dynamic_cast<chat::v1::GetHistoryRequest*>(h.get())->session_id(),
            "s 1");
}

TEST(TranscoderTest, BadQueryValueNamesTheField) {
  absl::StatusOr<std::unique_ptr<google::protobuf::Message>> m =
      BuildRequest(chat::v1::ListSessionsRequest::descriptor(), "", "", {},
                   {{"page_size", "ten"}});
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.status().message(), HasSubstr("page_size"));
}

TEST(TranscoderTest, PrintsInt64AsNumbersAndDefaults) {
  chat::v1::GetStatsResponse stats;
  stats.set_total_sessions(2);
  stats.set_total_messages(9007199254740993LL);  // Beyond double precision.
  stats.set_avg_messages_per_session(2.5);
  EXPECT_EQ(MessageToJson(stats),
            R"({"total_sessions":2,"total_messages":9007199254740993,)"
            R"("avg_messages_per_session":2.5,"total_input_tokens":0,)"
            R"("total_output_tokens":0})");
}

TEST(TranscoderTest, EmptyStatsPrintZeroes) {
  EXPECT_EQ(MessageToJson(chat::v1::GetStatsResponse()),
            R"({"total_sessions":0,"total_messages":0,)"
            R"("avg_messages_per_session":0,"total_input_tokens":0,)"
            R"("total_output_tokens":0})");
}

TEST(TranscoderTest, HistoryAlwaysHasMessagesAndTurnCount) {
  chat::v1::GetHistoryResponse history;
  history.set_session_id("s1");
  EXPECT_EQ(MessageToJson(history),
            R"({"session_id":"s1","messages":[],"turn_count":0,)"
            R"("system_prompt":"","created_at":"","title":""})");
}

TEST(TranscoderTest, ResetNotFoundKeepsPreviousTurns) {
  chat::v1::ResetSessionResponse reset;
  reset.set_status("not_found");
  reset.set_session_id("x");
  EXPECT_EQ(MessageToJson(reset),
            R"({"status":"not_found","session_id":"x","previous_turns":0})");
}

TEST(TranscoderTest, SplitsStreamEvents) {
  chat::v1::ChatStreamResponse delta;
  delta.mutable_delta()->set_text("Hel");
  StreamEventParts parts = SplitStreamEvent(delta);
  EXPECT_EQ(parts.name, "delta");
  EXPECT_EQ(parts.json, R"({"text":"Hel"})");
  EXPECT_TRUE(parts.has_text);
  EXPECT_EQ(parts.text, "Hel");

  chat::v1::ChatStreamResponse done;
  done.mutable_done()->set_response("Hello");
  done.mutable_done()->set_turn_count(1);
  parts = SplitStreamEvent(done);
  EXPECT_EQ(parts.name, "done");
  EXPECT_THAT(parts.json, HasSubstr(R"("response":"Hello")"));
  EXPECT_THAT(parts.json, HasSubstr(R"("turn_count":1)"));
  EXPECT_FALSE(parts.has_text);
}

}  // namespace
}  // namespace chat::gateway
