// AnthropicProtocol against Anthropic's documented wire format. Strategy:
// feed recorded-shape SSE events to a decoder and check deltas, usage, stop
// reason and error mapping; check the request it builds field by field.

#include "server/llm/anthropic_provider.h"

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::llm {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::Status Feed(StreamDecoder& decoder, const std::string& event,
                  const std::string& data, std::vector<std::string>* deltas) {
  return decoder.OnEvent(SseEvent{event, data, ""}, deltas);
}

TEST(AnthropicDecoderTest, DecodesAFullStream) {
  AnthropicProtocol protocol(AnthropicConfig{});
  std::unique_ptr<StreamDecoder> d = protocol.NewDecoder();
  std::vector<std::string> deltas;
  ASSERT_THAT(
      Feed(
          *d, "message_start",
          R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-6","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}})",
          &deltas),
      IsOk());
  ASSERT_THAT(
      Feed(
          *d, "content_block_start",
          R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})",
          &deltas),
      IsOk());
  ASSERT_THAT(Feed(*d, "ping", R"({"type": "ping"})", &deltas), IsOk());
  ASSERT_THAT(
      Feed(
          *d, "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})",
          &deltas),
      IsOk());
  ASSERT_THAT(
      Feed(
          *d, "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}})",
          &deltas),
      IsOk());
  ASSERT_THAT(Feed(*d, "content_block_stop",
                   R"({"type":"content_block_stop","index":0})", &deltas),
              IsOk());
  ASSERT_THAT(
      Feed(
          *d, "message_delta",
          R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}})",
          &deltas),
      IsOk());
  EXPECT_FALSE(d->done());
  ASSERT_THAT(Feed(*d, "message_stop", R"({"type":"message_stop"})", &deltas),
              IsOk());
  EXPECT_TRUE(d->done());
  EXPECT_THAT(deltas, ElementsAre("", "Hello", "!"));
  absl::StatusOr<CompletionResult> result = d->Finish();
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->model, "claude-sonnet-4-6");
  EXPECT_EQ(result->stop_reason, "end_turn");
  EXPECT_EQ(result->input_tokens, 25);
  EXPECT_EQ(result->output_tokens, 15);
}

TEST(AnthropicDecoderTest, ErrorEventAfterTheOkMapsToItsStatus) {
  AnthropicProtocol protocol(AnthropicConfig{});
  std::unique_ptr<StreamDecoder> d = protocol.NewDecoder();
  std::vector<std::string> deltas;
  EXPECT_THAT(
      Feed(
          *d, "error",
          R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
          &deltas),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr("overloaded_error")));
  std::unique_ptr<StreamDecoder> d2 = protocol.NewDecoder();
  EXPECT_THAT(
      Feed(
          *d2, "error",
          R"({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})",
          &deltas),
      StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(AnthropicDecoderTest, StreamWithoutMessageStopIsUnavailable) {
  AnthropicProtocol protocol(AnthropicConfig{});
  std::unique_ptr<StreamDecoder> d = protocol.NewDecoder();
  std::vector<std::string> deltas;
  ASSERT_THAT(
      Feed(
          *d, "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}})",
          &deltas),
      IsOk());
  EXPECT_THAT(d->Finish(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST(AnthropicDecoderTest, IgnoresUnknownEventsAndNonTextDeltas) {
  AnthropicProtocol protocol(AnthropicConfig{});
  std::unique_ptr<StreamDecoder> d = protocol.NewDecoder();
  std::vector<std::string> deltas;
  EXPECT_THAT(Feed(*d, "brand_new", R"({"type":"brand_new"})", &deltas),
              IsOk());
  EXPECT_THAT(
      Feed(
          *d, "content_block_delta",
          R"({"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}})",
          &deltas),
      IsOk());
  EXPECT_TRUE(deltas.empty());
  EXPECT_THAT(Feed(*d, "content_block_delta", "not json", &deltas),
              StatusIs(absl::StatusCode::kInternal));
}

TEST(AnthropicDecoderTest, DecodesANonStreamedMessage) {
  AnthropicProtocol protocol(AnthropicConfig{});
  std::unique_ptr<StreamDecoder> d = protocol.NewDecoder();
  std::vector<std::string> deltas;
  ASSERT_THAT(
      d->OnWholeBody(
          R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Hi there"}],"stop_reason":"max_tokens","usage":{"input_tokens":10,"output_tokens":3}})",
          &deltas),
      IsOk());
  EXPECT_THAT(deltas, ElementsAre("Hi there"));
  absl::StatusOr<CompletionResult> result = d->Finish();
  ASSERT_THAT(result, IsOk());
  EXPECT_EQ(result->stop_reason, "max_tokens");
  EXPECT_EQ(result->input_tokens, 10);
  EXPECT_EQ(result->output_tokens, 3);
}

TEST(AnthropicProtocolTest, BuildsTheMessagesRequest) {
  AnthropicConfig config;
  config.api_key = "sk-ant-test";
  config.base_url = "http://127.0.0.1:9/";
  AnthropicProtocol protocol(config);
  CompletionRequest request;
  request.system_prompt = "Be brief.";
  request.messages = {
      {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Again"}};
  request.temperature = 0.5;
  HttpRequest http = protocol.BuildRequest(request);
  EXPECT_EQ(http.url, "http://127.0.0.1:9/v1/messages");
  EXPECT_THAT(http.headers,
              ::testing::IsSupersetOf({"x-api-key: sk-ant-test",
                                       "anthropic-version: 2023-06-01",
                                       "content-type: application/json"}));
  nlohmann::json body = nlohmann::json::parse(http.body);
  EXPECT_EQ(body["model"], "claude-sonnet-4-6");
  EXPECT_EQ(body["max_tokens"], 1024);
  EXPECT_EQ(body["system"], "Be brief.");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["temperature"], 0.5);
  ASSERT_EQ(body["messages"].size(), 3u);
  EXPECT_EQ(body["messages"][2]["role"], "user");
  EXPECT_EQ(body["messages"][2]["content"], "Again");

  request.model = "claude-haiku";
  request.max_tokens = 7;
  request.temperature.reset();
  body = nlohmann::json::parse(protocol.BuildRequest(request).body);
  EXPECT_EQ(body["model"], "claude-haiku");
  EXPECT_EQ(body["max_tokens"], 7);
  EXPECT_FALSE(body.contains("temperature"));
}

TEST(AnthropicProtocolTest, AsksForOneMessageWhenNotStreaming) {
  AnthropicProtocol protocol{AnthropicConfig{}};
  CompletionRequest request;
  request.messages = {{"user", "Hi"}};
  EXPECT_THAT(protocol.BuildRequest(request).headers,
              ::testing::Contains("accept: text/event-stream"));
  request.stream = false;
  HttpRequest http = protocol.BuildRequest(request);
  EXPECT_THAT(http.headers, ::testing::Contains("accept: application/json"));
  EXPECT_THAT(http.headers,
              ::testing::Not(::testing::Contains("accept: text/event-stream")));
  EXPECT_EQ(nlohmann::json::parse(http.body)["stream"], false);
}

// The body as the provider built it before it wrote JSON itself: an
// nlohmann document, dumped. The writer must give the same bytes.
std::string NlohmannBody(const AnthropicConfig& config,
                         const CompletionRequest& request) {
  nlohmann::json body;
  body["model"] = request.model.empty() ? config.default_model : request.model;
  body["max_tokens"] = request.max_tokens.value_or(config.default_max_tokens);
  if (!request.system_prompt.empty()) body["system"] = request.system_prompt;
  nlohmann::json messages = nlohmann::json::array();
  for (const PromptMessage& m : request.messages) {
    messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  body["messages"] = std::move(messages);
  if (request.temperature.has_value()) {
    body["temperature"] = *request.temperature;
  }
  body["stream"] = request.stream;
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

TEST(AnthropicProtocolTest, BodyHasTheBytesNlohmannGave) {
  AnthropicConfig config;
  AnthropicProtocol protocol(config);
  CompletionRequest request;
  request.messages = {{"user", "Hi"}};
  EXPECT_EQ(protocol.BuildRequest(request).body, NlohmannBody(config, request));
  request.system_prompt = "Say \"hi\"\n\t\x01 caf\xc3\xa9 \xff\xfe end";
  request.messages = {{"user", "a\\b / \x7f \xf0\x9f\x98\x80"},
                      {"assistant", ""},
                      {"user", "\xed\xa0\x80 \xc3"}};
  request.model = "m\"odel";
  request.max_tokens = 65536;
  request.temperature = 0.7;
  EXPECT_EQ(protocol.BuildRequest(request).body, NlohmannBody(config, request));
  request.temperature = 1.0;
  request.messages.clear();
  EXPECT_EQ(protocol.BuildRequest(request).body, NlohmannBody(config, request));
  request.stream = false;
  EXPECT_EQ(protocol.BuildRequest(request).body, NlohmannBody(config, request));
}

}  // namespace
}  // namespace chat::llm
