// The OpenAI JSON mappings, as tables: request bodies to CompleteRequest
// (and the refusals), answers to OpenAI's objects, gateway errors to
// OpenAI's error shape. The SDK end of the same routes is
// tests/gateway/openai.test.mjs.
#include "gateway/openai/openai_translate.h"

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::gateway {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::nlohmann::json;
using ::testing::HasSubstr;

TEST(ParseChatCompletionTest, MapsMessagesAndOptions) {
  absl::StatusOr<ChatCompletionCall> call = ParseChatCompletion(R"({
    "model": "gpt-4o",
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "developer", "content": "Use English."},
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello"},
      {"role": "user", "content": [{"type": "text", "text": "Again"},
                                   {"type": "text", "text": "!"}]}
    ],
    "max_tokens": 10, "max_completion_tokens": 20, "temperature": 0.2,
    "stop": "END", "user": "u1", "n": 1,
    "stream": true, "stream_options": {"include_usage": true}
  })");
  ASSERT_THAT(call.status(), IsOk());
  const chat::v1::CompleteRequest& r = call->request;
  EXPECT_EQ(r.system_prompt(), "Be brief.\n\nUse English.");
  ASSERT_EQ(r.messages_size(), 3);
  EXPECT_EQ(r.messages(0).role(), "user");
  EXPECT_EQ(r.messages(1).role(), "assistant");
  EXPECT_EQ(r.messages(2).content(), "Again!");
  EXPECT_EQ(r.model(), "gpt-4o");
  EXPECT_EQ(r.max_tokens(), 20);  // max_completion_tokens wins.
  EXPECT_DOUBLE_EQ(r.temperature(), 0.2);
  ASSERT_EQ(r.stop_size(), 1);
  EXPECT_EQ(r.stop(0), "END");
  EXPECT_EQ(r.user(), "u1");
  EXPECT_TRUE(call->stream);
  EXPECT_TRUE(call->include_usage);
}

TEST(ParseChatCompletionTest, LeavesUnsetOptionsUnset) {
  absl::StatusOr<ChatCompletionCall> call = ParseChatCompletion(
      R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
  ASSERT_THAT(call.status(), IsOk());
  EXPECT_FALSE(call->request.has_system_prompt());
  EXPECT_FALSE(call->request.has_max_tokens());
  EXPECT_FALSE(call->request.has_temperature());
  EXPECT_FALSE(call->stream);
}

struct RefusalCase {
  const char* name;
  const char* body;
  const char* message;
};

class ParseChatCompletionRefusalTest
    : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(ParseChatCompletionRefusalTest, IsInvalidArgumentNamingTheField) {
  EXPECT_THAT(ParseChatCompletion(GetParam().body).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Bodies, ParseChatCompletionRefusalTest,
    ::testing::Values(
        RefusalCase{"NotJson", "{", "JSON object"},
        RefusalCase{"NoModel",
                    R"({"messages":[{"role":"user","content":"x"}]})", "model"},
        RefusalCase{"NoMessages", R"({"model":"m","messages":[]})", "messages"},
        RefusalCase{
            "ToolRole",
            R"({"model":"m","messages":[{"role":"tool","content":"x"}]})",
            "role 'tool'"},
        RefusalCase{
            "ImagePart",
            R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
            "only text parts"},
        RefusalCase{
            "OnlySystem",
            R"({"model":"m","messages":[{"role":"system","content":"x"}]})",
            "user or assistant"},
        RefusalCase{
            "TwoChoices",
            R"({"model":"m","n":2,"messages":[{"role":"user","content":"x"}]})",
            "n must be 1"},
        RefusalCase{
            "Tools",
            R"({"model":"m","tools":[{}],"messages":[{"role":"user","content":"x"}]})",
            "tools"},
        RefusalCase{
            "BadStop",
            R"({"model":"m","stop":3,"messages":[{"role":"user","content":"x"}]})",
            "stop"},
        RefusalCase{
            "ZeroMaxTokens",
            R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})",
            "max_tokens"}),
    [](const ::testing::TestParamInfo<RefusalCase>& info) {
      return info.param.name;
    });

TEST(FinishReasonOfTest, MapsChatdStopReasons) {
  EXPECT_EQ(FinishReasonOf("end_turn"), "stop");
  EXPECT_EQ(FinishReasonOf("stop_sequence"), "stop");
  EXPECT_EQ(FinishReasonOf("max_tokens"), "length");
  EXPECT_EQ(FinishReasonOf("tool_use"), "tool_calls");
  EXPECT_EQ(FinishReasonOf(""), "stop");
}

TEST(ChatCompletionJsonTest, IsOpenAisObject) {
  chat::v1::CompleteResponse response;
  response.set_response("Hello");
  response.set_model("echo");
  response.set_stop_reason("max_tokens");
  response.mutable_usage()->set_input_tokens(3);
  response.mutable_usage()->set_output_tokens(4);
  json got = json::parse(ChatCompletionJson(response, "chatcmpl-1", 42));
  EXPECT_EQ(got, json::parse(R"({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 42,
    "model": "echo", "system_fingerprint": null,
    "choices": [{"index": 0, "logprobs": null, "finish_reason": "length",
                 "message": {"role": "assistant", "content": "Hello",
                             "refusal": null}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
  })"));
}

TEST(ChunksTest, AreSseDataEvents) {
  EXPECT_EQ(DoneEvent(), "data: [DONE]\n\n");
  std::string delta = DeltaChunk("id", 1, "m", "Hi", /*with_usage_null=*/true);
  ASSERT_EQ(delta.rfind("data: ", 0), 0u);
  ASSERT_EQ(delta.substr(delta.size() - 2), "\n\n");
  json chunk = json::parse(delta.substr(6));
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "Hi");
  EXPECT_TRUE(chunk["usage"].is_null());
  chat::v1::Usage usage;
  usage.set_input_tokens(1);
  usage.set_output_tokens(2);
  json last = json::parse(UsageChunk("id", 1, "m", usage).substr(6));
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["total_tokens"], 3);
}

struct ErrorCase {
  const char* name;
  int http_status;
  const char* message;
  const char* type;
  const char* code;
};

class ToOpenAiErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ToOpenAiErrorTest, KeepsTheStatusAndNamesOpenAisTypeAndCode) {
  const ErrorCase& c = GetParam();
  OpenAiError error = ToOpenAiError({c.http_status, 0, c.message});
  EXPECT_EQ(error.http_status, c.http_status);
  EXPECT_EQ(error.type, c.type);
  EXPECT_EQ(error.code, c.code);
  json body = json::parse(OpenAiErrorBody(error));
  EXPECT_EQ(body["error"]["message"], c.message);
  EXPECT_TRUE(body["error"]["param"].is_null());
  if (std::string(c.code).empty()) {
    EXPECT_TRUE(body["error"]["code"].is_null());
  } else {
    EXPECT_EQ(body["error"]["code"], c.code);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Statuses, ToOpenAiErrorTest,
    ::testing::Values(
        ErrorCase{"BadRequest", 400, "bad", "invalid_request_error", ""},
        ErrorCase{"Unauthenticated", 401, "no key", "invalid_request_error",
                  "invalid_api_key"},
        ErrorCase{"NotFound", 404, "gone", "invalid_request_error",
                  "not_found"},
        ErrorCase{"RateLimited", 429, "2 requests a minute", "requests",
                  "rate_limit_exceeded"},
        ErrorCase{"BudgetSpent", 429, "the key's monthly budget is spent",
                  "insufficient_quota", "insufficient_quota"},
        ErrorCase{"Unavailable", 503, "down", "server_error", ""}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) {
      return info.param.name;
    });

TEST(NewOpenAiIdTest, HasThePrefixAndDiffers) {
  std::string a = NewOpenAiId("chatcmpl-");
  EXPECT_EQ(a.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(a.size(), 9u + 24u);
  EXPECT_NE(a, NewOpenAiId("chatcmpl-"));
}

}  // namespace
}  // namespace chat::gateway
