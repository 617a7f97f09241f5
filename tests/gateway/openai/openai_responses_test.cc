// The Responses and Conversations mappings: ids (which session and turn a
// response id names, which key made a conversation id), request bodies and
// their refusals, and the JSON objects and events. The SDK end of the same
// routes is tests/gateway/openai.test.mjs.
#include "gateway/openai/openai_responses.h"

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::gateway {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Optional;

TEST(ConversationIdTest, RandomAndAValidSessionId) {
  const std::string id = NewConversationId();
  EXPECT_TRUE(absl::StartsWith(id, "conv_")) << id;
  EXPECT_EQ(id.size(), 45u) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 5), std::string::npos)
      << id;
  EXPECT_NE(NewConversationId(), id);
}

TEST(StoredResponseIdTest, NamesSessionAndTurn) {
  const std::string id = StoredResponseId("conv_ab_c:d@e", 3);
  EXPECT_EQ(id, "resp_3_conv_ab_c:d@e");
  std::optional<StoredResponseRef> ref = ParseStoredResponseId(id);
  ASSERT_TRUE(ref.has_value());
  EXPECT_EQ(ref->session_id, "conv_ab_c:d@e");
  EXPECT_EQ(ref->turn, 3);
  for (const char* other :
       {"resp_x0123456789abcdef", "resp_0_s", "resp_3_", "resp__s", "msg_1_s",
        "resp_1a_s", "resp_99999999999999999999_s"}) {
    EXPECT_EQ(ParseStoredResponseId(other), std::nullopt) << other;
  }
}

TEST(ItemIdTest, RoundTripsWithinItsSession) {
  EXPECT_EQ(ItemId("s1", 4), "msg_4_s1");
  EXPECT_THAT(ItemIndex("msg_4_s1", "s1"), Optional(4));
  EXPECT_EQ(ItemIndex("msg_4_s1", "s2"), std::nullopt);
}

// Turns 1 -> 2 -> 3 and 1 -> 4: turn 4 forked the session after turn 1.
chat::v1::SessionExport ForkedSession() {
  chat::v1::SessionExport session;
  auto add = [&session](int turn, int parent) {
    for (const char* role : {"user", "assistant"}) {
      chat::v1::ExportedMessage* m = session.add_messages();
      m->set_turn_id(turn);
      m->set_parent_turn_id(parent);
      m->set_role(role);
      m->set_content(absl::StrCat(role, " ", turn));
    }
  };
  add(1, 0);
  add(2, 1);
  add(3, 2);
  add(4, 1);
  session.set_active_turn_id(4);
  return session;
}

std::vector<std::string> Contents(
    const std::vector<chat::v1::CompletionMessage>& messages) {
  std::vector<std::string> contents;
  for (const chat::v1::CompletionMessage& m : messages) {
    contents.push_back(m.content());
  }
  return contents;
}

TEST(ExportedTurnTest, FindsATurnOnAnyBranchWithItsDepth) {
  const chat::v1::SessionExport session = ForkedSession();
  std::optional<ExportedTurn> three = FindExportedTurn(session, 3);
  ASSERT_TRUE(three.has_value());
  EXPECT_EQ(three->depth, 3);
  EXPECT_EQ(three->user->content(), "user 3");
  EXPECT_EQ(three->answer->content(), "assistant 3");
  std::optional<ExportedTurn> four = FindExportedTurn(session, 4);
  ASSERT_TRUE(four.has_value());
  EXPECT_EQ(four->depth, 2);
  EXPECT_FALSE(FindExportedTurn(session, 5).has_value());
  EXPECT_FALSE(FindExportedTurn(session, 0).has_value());
  EXPECT_EQ(LastTurnId(session), 4);
  EXPECT_EQ(LastTurnId(chat::v1::SessionExport()), 0);
}

TEST(ExportedTurnTest, BranchMessagesFollowTheParentsNotTheOrder) {
  const chat::v1::SessionExport session = ForkedSession();
  EXPECT_THAT(
      Contents(BranchMessages(session, 4)),
      ::testing::ElementsAre("user 1", "assistant 1", "user 4", "assistant 4"));
  EXPECT_THAT(Contents(BranchMessages(session, 3)),
              ::testing::ElementsAre("user 1", "assistant 1", "user 2",
                                     "assistant 2", "user 3", "assistant 3"));
  EXPECT_EQ(BranchMessages(session, 4)[1].role(), "assistant");
}

TEST(ParseResponsesCallTest, TextInputAndOptions) {
  absl::StatusOr<ResponsesCall> call = ParseResponsesCall(R"({
    "model": "m", "input": "Hi", "instructions": "Be brief.",
    "previous_response_id": "resp_1_s", "store": false, "stream": true,
    "max_output_tokens": 30, "temperature": 0.2, "user": "u1"})");
  ASSERT_THAT(call, IsOk());
  EXPECT_EQ(call->model, "m");
  ASSERT_EQ(call->messages.size(), 1u);
  EXPECT_EQ(call->messages[0].role(), "user");
  EXPECT_EQ(call->messages[0].content(), "Hi");
  EXPECT_EQ(call->system_prompt, "Be brief.");
  EXPECT_EQ(call->previous_response_id, "resp_1_s");
  EXPECT_FALSE(call->store);
  EXPECT_TRUE(call->stream);
  EXPECT_EQ(call->max_output_tokens, 30);
  EXPECT_EQ(call->temperature, 0.2);
  EXPECT_EQ(call->user, "u1");
}

TEST(ParseResponsesCallTest, MessageInputAndConversationObject) {
  absl::StatusOr<ResponsesCall> call = ParseResponsesCall(R"({
    "input": [
      {"role": "developer", "content": "Use English."},
      {"type": "message", "role": "user",
       "content": [{"type": "input_text", "text": "A"},
                   {"type": "input_text", "text": "B"}]},
      {"role": "assistant", "content": "C"}],
    "conversation": {"id": "conv_1"}})");
  ASSERT_THAT(call, IsOk());
  EXPECT_EQ(call->model, std::nullopt);
  EXPECT_TRUE(call->store);
  EXPECT_EQ(call->conversation, "conv_1");
  EXPECT_EQ(call->system_prompt, "Use English.");
  ASSERT_EQ(call->messages.size(), 2u);
  EXPECT_EQ(call->messages[0].content(), "AB");
  EXPECT_EQ(call->messages[1].role(), "assistant");
}

TEST(ParseResponsesCallTest, Refusals) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {"{", "JSON object"},
      {R"({"model":"m"})", "input is required"},
      {R"({"input":[]})", "user or assistant"},
      {R"({"input":"x","conversation":"c","previous_response_id":"r"})",
       "cannot be used together"},
      {R"({"input":"x","tools":[{"type":"web_search"}]})", "tools"},
      {R"({"input":[{"type":"function_call_output"}]})", "not supported"},
      {R"({"input":[{"role":"user","content":[{"type":"input_image"}]}]})",
       "only text parts"},
      {R"({"input":"x","store":"no"})", "store"},
      {R"({"input":"x","max_output_tokens":0})", "max_output_tokens"},
  };
  for (const auto& [body, message] : cases) {
    EXPECT_THAT(
        ParseResponsesCall(body),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << body;
  }
}

ResponseView SampleView() {
  ResponseView view;
  view.id = "resp_2_s";
  view.created_at = 100;
  view.model = "m";
  view.item_id = "msg_3_s";
  view.text = "Hello";
  view.stop_reason = "end_turn";
  chat::v1::Usage usage;
  usage.set_input_tokens(7);
  usage.set_output_tokens(2);
  view.usage = usage;
  view.previous_response_id = "resp_1_s";
  view.conversation = "s";
  return view;
}

TEST(ResponseJsonTest, CompletedResponse) {
  json r = json::parse(ResponseJson(SampleView()));
  EXPECT_EQ(r["object"], "response");
  EXPECT_EQ(r["id"], "resp_2_s");
  EXPECT_EQ(r["status"], "completed");
  EXPECT_EQ(r["previous_response_id"], "resp_1_s");
  EXPECT_EQ(r["conversation"]["id"], "s");
  EXPECT_EQ(r["output"][0]["type"], "message");
  EXPECT_EQ(r["output"][0]["id"], "msg_3_s");
  EXPECT_EQ(r["output"][0]["role"], "assistant");
  EXPECT_EQ(r["output"][0]["content"][0]["type"], "output_text");
  EXPECT_EQ(r["output"][0]["content"][0]["text"], "Hello");
  EXPECT_EQ(r["usage"]["total_tokens"], 9);
  EXPECT_TRUE(r["instructions"].is_null());
}

// The events of a stream, as (type, data) pairs.
std::vector<std::pair<std::string, json>> Events(const std::string& sse) {
  std::vector<std::pair<std::string, json>> out;
  for (absl::string_view block :
       absl::StrSplit(sse, "\n\n", absl::SkipEmpty())) {
    std::vector<absl::string_view> lines = absl::StrSplit(block, '\n');
    EXPECT_EQ(lines.size(), 2u) << block;
    if (lines.size() != 2) continue;
    std::string type(lines[0].substr(lines[0].find(' ') + 1));
    json data = json::parse(lines[1].substr(lines[1].find(' ') + 1));
    EXPECT_EQ(data["type"], type);
    out.emplace_back(std::move(type), std::move(data));
  }
  return out;
}

TEST(ResponseEventsTest, OpenAiEventOrderAndShapes) {
  int sequence = 0;
  ResponseView start = SampleView();
  start.status = "in_progress";
  std::string sse = ResponseStartEvents(start, &sequence);
  sse += OutputTextDeltaEvent("msg_3_s", "Hel", &sequence);
  sse += OutputTextDeltaEvent("msg_3_s", "lo", &sequence);
  sse += ResponseEndEvents(SampleView(), &sequence);
  std::vector<std::pair<std::string, json>> events = Events(sse);
  std::vector<std::string> types;
  for (const auto& [type, data] : events) types.push_back(type);
  EXPECT_THAT(types,
              ::testing::ElementsAre(
                  "response.created", "response.in_progress",
                  "response.output_item.added", "response.content_part.added",
                  "response.output_text.delta", "response.output_text.delta",
                  "response.output_text.done", "response.content_part.done",
                  "response.output_item.done", "response.completed"));
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].second["sequence_number"], i);
  }
  EXPECT_EQ(events[0].second["response"]["status"], "in_progress");
  EXPECT_TRUE(events[0].second["response"]["output"].empty());
  EXPECT_EQ(events[4].second["delta"], "Hel");
  EXPECT_EQ(events[4].second["item_id"], "msg_3_s");
  EXPECT_EQ(events[6].second["text"], "Hello");
  EXPECT_EQ(events[9].second["response"]["status"], "completed");
  EXPECT_EQ(events[9].second["response"]["output"][0]["content"][0]["text"],
            "Hello");
}

TEST(ResponseEventsTest, CutShortIsIncomplete) {
  int sequence = 0;
  ResponseView view = SampleView();
  view.status = "incomplete";
  std::vector<std::pair<std::string, json>> events =
      Events(ResponseEndEvents(view, &sequence));
  EXPECT_EQ(events.back().first, "response.incomplete");
  EXPECT_EQ(events.back().second["response"]["incomplete_details"]["reason"],
            "max_output_tokens");
}

TEST(ConversationTest, CreateBodyAndObjects) {
  EXPECT_THAT(ParseConversationMetadata(""), IsOk());
  EXPECT_EQ(*ParseConversationMetadata(R"({"metadata":{"topic":"x"}})"),
            R"({"topic":"x"})");
  EXPECT_THAT(ParseConversationMetadata(R"({"items":[{"role":"user"}]})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("items")));
  json c = json::parse(ConversationJson("conv_1", 5, R"({"a":"b"})"));
  EXPECT_EQ(c["object"], "conversation");
  EXPECT_EQ(c["created_at"], 5);
  EXPECT_EQ(c["metadata"]["a"], "b");
  json d = json::parse(ConversationDeletedJson("conv_1"));
  EXPECT_EQ(d["object"], "conversation.deleted");
  EXPECT_EQ(d["deleted"], true);
}

chat::v1::GetHistoryResponse History(int messages) {
  chat::v1::GetHistoryResponse history;
  for (int i = 0; i < messages; ++i) {
    chat::v1::Message* m = history.add_messages();
    m->set_role(i % 2 == 0 ? "user" : "assistant");
    m->set_content(absl::StrCat("m", i));
  }
  return history;
}

TEST(ItemsListTest, NewestFirstByDefaultWithPages) {
  absl::StatusOr<ItemsQuery> query = ParseItemsQuery("limit=3");
  ASSERT_THAT(query, IsOk());
  json page = json::parse(ItemsListJson("s", History(4), *query));
  EXPECT_EQ(page["object"], "list");
  ASSERT_EQ(page["data"].size(), 3u);
  EXPECT_EQ(page["data"][0]["id"], "msg_3_s");
  EXPECT_EQ(page["data"][0]["role"], "assistant");
  EXPECT_EQ(page["data"][0]["content"][0]["type"], "output_text");
  EXPECT_EQ(page["data"][1]["content"][0]["type"], "input_text");
  EXPECT_EQ(page["data"][1]["content"][0]["text"], "m2");
  EXPECT_EQ(page["has_more"], true);
  EXPECT_EQ(page["last_id"], "msg_1_s");

  query = ParseItemsQuery("limit=3&after=msg_1_s");
  ASSERT_THAT(query, IsOk());
  page = json::parse(ItemsListJson("s", History(4), *query));
  ASSERT_EQ(page["data"].size(), 1u);
  EXPECT_EQ(page["data"][0]["id"], "msg_0_s");
  EXPECT_EQ(page["has_more"], false);
}

TEST(ItemsListTest, OldestFirstAndRefusals) {
  absl::StatusOr<ItemsQuery> query = ParseItemsQuery("order=asc");
  ASSERT_THAT(query, IsOk());
  json page = json::parse(ItemsListJson("s", History(2), *query));
  EXPECT_EQ(page["data"][0]["id"], "msg_0_s");
  EXPECT_EQ(page["first_id"], "msg_0_s");
  json empty = json::parse(ItemsListJson("s", History(0), *query));
  EXPECT_TRUE(empty["data"].empty());
  EXPECT_TRUE(empty["first_id"].is_null());
  EXPECT_EQ(empty["has_more"], false);
  EXPECT_THAT(ParseItemsQuery("limit=0"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseItemsQuery("order=up"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(UnixSecondsOfTest, ParsesRfc3339) {
  EXPECT_EQ(UnixSecondsOf("1970-01-01T00:01:40Z"), 100);
  EXPECT_EQ(UnixSecondsOf("garbage"), 0);
}

}  // namespace
}  // namespace chat::gateway
