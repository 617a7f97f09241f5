// OpenAiProtocol against the Chat Completions streaming format and the ways
// compatible servers differ from it (vLLM's missing or null choices,
// OpenRouter's comments, errors inside a 200 stream).

#include "server/llm/openai_provider.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/llm/sse_parser.h"
#include "tests/testing/status_matchers.h"

namespace chat::llm {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Runs raw SSE text through a parser and a fresh decoder.
absl::Status Decode(const std::string& sse, std::vector<std::string>* deltas,
                    absl::StatusOr<CompletionResult>* result) {
  OpenAiProtocol protocol(OpenAiConfig{});
  std::unique_ptr<StreamDecoder> d = protocol.NewDecoder();
  SseParser parser;
  for (const SseEvent& e : parser.Feed(sse)) {
    if (d->done()) return absl::InternalError("an event after [DONE]");
    absl::Status s = d->OnEvent(e, deltas);
    if (!s.ok()) return s;
  }
  *result = d->Finish();
  return absl::OkStatus();
}

TEST(OpenAiDecoderTest, DecodesAStreamWithUsageChunk) {
  std::vector<std::string> deltas;
  absl::StatusOr<CompletionResult> result;
  ASSERT_THAT(
      Decode(
          R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}

data: [DONE]

)",
          &deltas, &result),
      IsOk());
  EXPECT_THAT(deltas, ElementsAre("", "Hello", ""));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->model, "gpt-4o-mini");
  EXPECT_EQ(result->stop_reason, "end_turn");
  EXPECT_EQ(result->input_tokens, 9);
  EXPECT_EQ(result->output_tokens, 2);
}

TEST(OpenAiDecoderTest, ToleratesNullOrMissingChoicesAndComments) {
  std::vector<std::string> deltas;
  absl::StatusOr<CompletionResult> result;
  ASSERT_THAT(Decode(": OPENROUTER PROCESSING\n\n"
                     "data: {\"choices\":null,\"model\":\"m\"}\n\n"
                     "data: {\"model\":\"m\"}\n\n"
                     "data: "
                     "{\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_"
                     "reason\":\"length\"}]}\n\n"
                     ": keep-alive\n\n"
                     "data: [DONE]\n\n",
                     &deltas, &result),
              IsOk());
  EXPECT_THAT(deltas, ElementsAre("ok"));
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->stop_reason, "max_tokens");
}

TEST(OpenAiDecoderTest, ErrorInsideTheStream) {
  std::vector<std::string> deltas;
  absl::StatusOr<CompletionResult> result;
  EXPECT_THAT(
      Decode("data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n"
             "data: {\"error\":{\"message\":\"upstream "
             "overloaded\",\"type\":\"server_error\",\"code\":502}}\n\n",
             &deltas, &result),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("502")));
  EXPECT_THAT(deltas, ElementsAre("par"));
  EXPECT_THAT(Decode("data: "
                     "{\"error\":{\"message\":\"slow\",\"code\":\"rate_limit_"
                     "exceeded\"}}\n\n",
                     &deltas, &result),
              StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(OpenAiDecoderTest, EndWithoutDoneOrFinishReasonIsUnavailable) {
  std::vector<std::string> deltas;
  absl::StatusOr<CompletionResult> result;
  ASSERT_THAT(
      Decode("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n",
             &deltas, &result),
      IsOk());
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnavailable));
}

TEST(OpenAiDecoderTest, DecodesANonStreamedCompletion) {
  OpenAiProtocol protocol(OpenAiConfig{});
  std::unique_ptr<StreamDecoder> d = protocol.NewDecoder();
  std::vector<std::string> deltas;
  ASSERT_THAT(
      d->OnWholeBody(
          R"({"model":"llama3","choices":[{"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":4,"completion_tokens":1}})",
          &deltas),
      IsOk());
  EXPECT_THAT(deltas, ElementsAre("Hi"));
  ASSERT_THAT(d->Finish(), IsOk());
}

TEST(OpenAiProtocolTest, BuildsTheChatCompletionsRequest) {
  OpenAiConfig config;
  config.api_key = "gsk-test";
  config.base_url = "https://api.groq.com/openai/v1";
  config.default_model = "llama-3.1-8b-instant";
  OpenAiProtocol protocol(config);
  CompletionRequest request;
  request.system_prompt = "Be brief.";
  request.messages = {{"user", "Hi"}};
  request.max_tokens = 50;
  HttpRequest http = protocol.BuildRequest(request);
  EXPECT_EQ(http.url, "https://api.groq.com/openai/v1/chat/completions");
  EXPECT_THAT(http.headers,
              ::testing::Contains("authorization: Bearer gsk-test"));
  nlohmann::json body = nlohmann::json::parse(http.body);
  EXPECT_EQ(body["model"], "llama-3.1-8b-instant");
  EXPECT_EQ(body["max_tokens"], 50);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][0]["content"], "Be brief.");
  EXPECT_EQ(body["messages"][1]["content"], "Hi");
}

TEST(OpenAiProtocolTest, AsksForOneCompletionWhenNotStreaming) {
  OpenAiProtocol protocol{OpenAiConfig{}};
  CompletionRequest request;
  request.messages = {{"user", "Hi"}};
  EXPECT_THAT(protocol.BuildRequest(request).headers,
              ::testing::Contains("accept: text/event-stream"));
  request.stream = false;
  HttpRequest http = protocol.BuildRequest(request);
  EXPECT_THAT(http.headers, ::testing::Contains("accept: application/json"));
  nlohmann::json body = nlohmann::json::parse(http.body);
  EXPECT_EQ(body["stream"], false);
  // A whole completion carries its usage without being asked.
  EXPECT_FALSE(body.contains("stream_options"));
}

TEST(OpenAiProtocolTest, OpenAiItselfGetsMaxCompletionTokens) {
  OpenAiConfig config;  // The default base URL: api.openai.com.
  CompletionRequest request;
  request.max_tokens = 9;
  nlohmann::json body =
      nlohmann::json::parse(OpenAiProtocol(config).BuildRequest(request).body);
  EXPECT_EQ(body["max_completion_tokens"], 9);
  EXPECT_FALSE(body.contains("max_tokens"));
  EXPECT_EQ(body["model"], "gpt-4o-mini");
}

TEST(OpenAiProtocolTest, NoKeyNoAuthorizationHeader) {
  OpenAiConfig config;
  config.base_url = "http://127.0.0.1:11434/v1";
  HttpRequest http = OpenAiProtocol(config).BuildRequest(CompletionRequest{});
  for (const std::string& h : http.headers) {
    EXPECT_THAT(h, ::testing::Not(HasSubstr("authorization")));
  }
}

// The body as the provider built it before it wrote JSON itself: an
// nlohmann document, dumped. The writer must give the same bytes.
std::string NlohmannBody(const OpenAiConfig& config,
                         const CompletionRequest& request) {
  nlohmann::json messages = nlohmann::json::array();
  if (!request.system_prompt.empty()) {
    messages.push_back(
        {{"role", "system"}, {"content", request.system_prompt}});
  }
  for (const PromptMessage& m : request.messages) {
    messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  nlohmann::json body;
  body["model"] = request.model.empty() ? config.default_model : request.model;
  body["messages"] = std::move(messages);
  const char* limit_field = absl::StrContains(config.base_url, "api.openai.com")
                                ? "max_completion_tokens"
                                : "max_tokens";
  body[limit_field] = request.max_tokens.value_or(config.default_max_tokens);
  if (request.temperature.has_value()) {
    body["temperature"] = *request.temperature;
  }
  body["stream"] = request.stream;
  if (request.stream) body["stream_options"] = {{"include_usage", true}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TEST(OpenAiProtocolTest, BodyHasTheBytesNlohmannGave) {
  for (const char* base_url :
       {"https://api.openai.com/v1", "http://127.0.0.1:11434/v1"}) {
    OpenAiConfig config;
    config.base_url = base_url;
    OpenAiProtocol protocol(config);
    CompletionRequest request;
    EXPECT_EQ(protocol.BuildRequest(request).body,
              NlohmannBody(config, request));
    request.messages = {{"user", "Hi"}};
    EXPECT_EQ(protocol.BuildRequest(request).body,
              NlohmannBody(config, request));
    request.system_prompt = "Say \"hi\"\n\t\x01 caf\xc3\xa9 \xff\xfe end";
    request.messages = {{"user", "a\\b / \x7f \xf0\x9f\x98\x80"},
                        {"assistant", ""},
                        {"user", "\xed\xa0\x80 \xc3"}};
    request.model = "m\"odel";
    request.max_tokens = 7;
    request.temperature = 0.25;
    EXPECT_EQ(protocol.BuildRequest(request).body,
              NlohmannBody(config, request));
    request.stream = false;
    EXPECT_EQ(protocol.BuildRequest(request).body,
              NlohmannBody(config, request));
  }
}

}  // namespace
}  // namespace chat::llm
