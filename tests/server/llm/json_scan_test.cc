// The fast readers of streamed events against the full parse. Strategy: a
// table of events each reader must read (escapes, surrogate pairs, raw UTF-8,
// extra members, any key order) with their decoded text, a table of events
// it must leave to the full parse, and every single-byte mutation of a few
// real events: a decoder using the fast path and one parsing every event
// fully must give the same statuses, deltas and result.

#include "server/llm/json_scan.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/llm/anthropic_provider.h"
#include "server/llm/openai_provider.h"
#include "tests/server/llm/json_scan_reference.h"

namespace chat::llm {
namespace {

struct TextCase {
  std::string data;
  std::string text;
};

TEST(ScanAnthropicEventTest, ReadsTextDeltasExactlyAsTheFullParse) {
  const std::vector<TextCase> cases = {
      {R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}})",
       "Hello"},
      {R"({"delta":{"text":"swapped","type":"text_delta"},"index":0,"type":"content_block_delta"})",
       "swapped"},
      {" \r\n\t{ \"type\" : \"content_block_delta\" , \"delta\" : { \"type\" "
       ": \"text_delta\" , \"text\" : \"sp\" } } \n",
       "sp"},
      {R"({"type":"content_block_delta","delta":{"type":"text_delta","text":""}})",
       ""},
      {R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"a\"b\\c\/d\b\f\n\r\t"}})",
       "a\"b\\c/d\b\f\n\r\t"},
      {R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"\u00e9\u4e2D\u0000x"}})",
       std::string("\xC3\xA9\xE4\xB8\xAD\0x", 7)},
      {R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"\ud83d\ude00!"}})",
       "\xF0\x9F\x98\x80!"},
      {"{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
       "\"text\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \x7F\"}}",
       "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \x7F"},
      {R"({"type":"content_block_delta","index":-12.5,"extra":[1,true,false,null,{"a":[{}],"ke\u0079":0},"\u00e9"],"delta":{"type":"text_delta","text":"x","more":{"nested":[[]]}}})",
       "x"},
  };
  for (const TextCase& c : cases) {
    AnthropicEventFields fields;
    ASSERT_TRUE(ScanAnthropicEvent(c.data, &fields)) << c.data;
    EXPECT_EQ(fields.type, "content_block_delta");
    EXPECT_EQ(fields.delta_type, "text_delta");
    EXPECT_EQ(fields.delta_text, c.text) << c.data;
    EXPECT_EQ(CompareDecoders(&NewAnthropicDecoder, {SseEvent{"", c.data, ""}}),
              "")
        << c.data;
  }
}

TEST(ScanAnthropicEventTest, ReadsTheOtherEventsOfAReply) {
  AnthropicEventFields f;
  ASSERT_TRUE(ScanAnthropicEvent(
      R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":-0,"cache_creation_input_tokens":999999999999999999,"output_tokens":1,"service_tier":"standard"}}})",
      &f));
  EXPECT_EQ(f.type, "message_start");
  EXPECT_EQ(f.model, "claude-x");
  ASSERT_TRUE(f.message_usage.has_value());
  EXPECT_EQ(f.message_usage->input_tokens, 25);
  EXPECT_EQ(f.message_usage->cache_read_input_tokens, 0);
  EXPECT_EQ(f.message_usage->cache_creation_input_tokens, 999999999999999999);
  EXPECT_EQ(f.message_usage->output_tokens, 1);

  ASSERT_TRUE(ScanAnthropicEvent(
      R"({"usage":{"output_tokens":15},"delta":{"stop_sequence":null,"stop_reason":"end_turn"},"type":"message_delta"})",
      &f));
  EXPECT_EQ(f.stop_reason, "end_turn");
  ASSERT_TRUE(f.usage.has_value());
  EXPECT_EQ(f.usage->output_tokens, 15);
  EXPECT_FALSE(f.usage->input_tokens.has_value());

  ASSERT_TRUE(ScanAnthropicEvent(
      R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":"\u00e9"}})",
      &f));
  EXPECT_EQ(f.block_type, "text");
  EXPECT_EQ(f.block_text, "\xC3\xA9");
  for (
      const char* data :
      {R"({"type":"message_stop"})", R"({"type": "ping"})",
       R"({"type":"content_block_stop","index":0})",
       R"({"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"hm"}})",
       R"({"type":"content_block_start","content_block":{"type":"tool_use","input":{}}})"}) {
    EXPECT_TRUE(ScanAnthropicEvent(data, &f)) << data;
  }
}

TEST(ScanAnthropicEventTest, LeavesEverythingElseToTheFullParse) {
  const std::vector<std::string> cases = {
      "",
      "not json",
      R"({"type":"error","error":{"type":"overloaded_error","message":"x"}})",
      R"({"type":"brand_new"})",
      R"({"type":""})",
      R"({"delta":{"type":"text_delta","text":"x"}})",
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":1}})",
      R"({"type":"content_block_delta","delta":"text"})",
      R"({"type":"message_delta","usage":{"output_tokens":1.0}})",
      R"({"type":"message_delta","usage":{"output_tokens":1e2}})",
      R"({"type":"message_delta","usage":{"output_tokens":null}})",
      R"({"type":"message_delta","usage":{"output_tokens":1234567890123456789}})",
      R"({"type":"message_delta","usage":null})",
      R"({"type":"message_delta","delta":{"stop_reason":1}})",
      R"({"type":"message_start","message":{"model":null}})",
      // Duplicates: the last one counts in the full parse.
      R"({"type":"content_block_delta","type":"ping","delta":{"type":"text_delta","text":"x"}})",
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"x","text":"y"}})",
      R"({"type":"message_delta","usage":{"output_tokens":1,"output_tokens":2}})",
      // An escaped key may spell a field read.
      R"({"type":"content_block_delta","typ\u0065":"ping","delta":{"type":"text_delta","text":"x"}})",
      R"({"type":"content_block_delt\u0061","delta":{"type":"text_delta","text":"x"}})",
      // Invalid JSON, each of which nlohmann rejects.
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}} x)",
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"x"},})",
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"\ud83d"}})",
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"\ude00"}})",
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"\x"}})",
      "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
      "\"text\":\"\xC3\"}}",
      "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
      "\"text\":\"\xED\xA0\x80\"}}",
      "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
      "\"text\":\"a\nb\"}}",
      R"({"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"x"}})",
      R"({"type":"content_block_delta","index":1e999,"delta":{"type":"text_delta","text":"x"}})",
      R"({"type":"content_block_delta","index":tru,"delta":{"type":"text_delta","text":"x"}})",
      "\xEF\xBB\xBF{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
      "\"text_delta\",\"text\":\"bom\"}}",
  };
  for (const std::string& data : cases) {
    AnthropicEventFields fields;
    EXPECT_FALSE(ScanAnthropicEvent(data, &fields)) << data;
    EXPECT_EQ(CompareDecoders(&NewAnthropicDecoder, {SseEvent{"", data, ""}}),
              "")
        << data;
  }
}

TEST(ScanOpenAiChunkTest, ReadsContentChunksExactlyAsTheFullParse) {
  struct Case {
    std::string data;
    OpenAiChunkFields fields;
  };
  const std::vector<Case> cases = {
      {R"({"id":"c","object":"chat.completion.chunk","created":1700000000,"model":"gpt-x","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"Hi \u00e9\ud83d\ude00"},"logprobs":null,"finish_reason":null}],"usage":null})",
       {"gpt-x", true, "Hi \xC3\xA9\xF0\x9F\x98\x80", ""}},
      {R"({"choices":[{"finish_reason":"stop","delta":{}}],"model":"m"})",
       {"m", true, "", "stop"}},
      {R"({"model":"m","choices":[{"delta":{"role":"assistant","content":null}},{"delta":{"content":"second"}}]})",
       {"m", true, "", ""}},
      {R"({"id":"x","model":"m","choices":null})", {"m", false, "", ""}},
      {R"({"id":"x","model":"m"})", {"m", false, "", ""}},
      {R"({"choices":[]})", {"", false, "", ""}},
      {R"({"choices":[{"delta":null,"finish_reason":"length"}]})",
       {"", false, "", "length"}},
  };
  for (const Case& c : cases) {
    OpenAiChunkFields fields;
    ASSERT_TRUE(ScanOpenAiChunk(c.data, &fields)) << c.data;
    EXPECT_EQ(fields.model, c.fields.model) << c.data;
    EXPECT_EQ(fields.has_delta, c.fields.has_delta) << c.data;
    EXPECT_EQ(fields.content, c.fields.content) << c.data;
    EXPECT_EQ(fields.finish_reason, c.fields.finish_reason) << c.data;
    EXPECT_EQ(CompareDecoders(&NewOpenAiDecoder, {SseEvent{"", c.data, ""}}),
              "")
        << c.data;
  }
}

TEST(ScanOpenAiChunkTest, LeavesEverythingElseToTheFullParse) {
  const std::vector<std::string> cases = {
      "[DONE]",
      R"({"error":{"message":"overloaded","code":503}})",
      R"({"error":null,"choices":[]})",
      R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}})",
      R"({"choices":[{"delta":{"content":"a","content":"b"}}]})",
      R"({"model":"a","model":"b"})",
      R"({"model":1})",
      R"({"choices":[1]})",
      R"({"choices":{}})",
      R"({"choices":[{"delta":{"content":1}}]})",
      R"({"choices":[{"delta":"text"}]})",
      R"({"mod\u0065l":"m"})",
      R"({"choices":[{"delta":{"content":"x"}}]}])",
  };
  for (const std::string& data : cases) {
    OpenAiChunkFields fields;
    EXPECT_FALSE(ScanOpenAiChunk(data, &fields)) << data;
    EXPECT_EQ(CompareDecoders(&NewOpenAiDecoder, {SseEvent{"", data, ""}}), "")
        << data;
  }
}

// Every event between a message_start and a message_stop, so that what an
// event changes in the result shows.
std::string CompareInContext(const std::string& data) {
  const SseEvent start{
      "",
      R"({"type":"message_start","message":{"model":"m","usage":{"input_tokens":3,"output_tokens":1}}})",
      ""};
  const SseEvent stop{"", R"({"type":"message_stop"})", ""};
  const SseEvent event{"", data, ""};
  std::string diff =
      CompareDecoders(&NewAnthropicDecoder, {start, event, stop});
  if (diff.empty()) diff = CompareDecoders(&NewOpenAiDecoder, {event});
  return diff;
}

TEST(JsonScanTest, EverySingleByteMutationAgreesWithTheFullParse) {
  const std::vector<std::string> seeds = {
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"H\u00e9\ud83d\ude00 \"q\""}})",
      "{\"type\":\"content_block_delta\",\"index\":-1.5,\"delta\":{\"text\":"
      "\"\xE2\x82\xAC\xF0\x9F\x98\x80\",\"type\":\"text_delta\"},\"x\":[{},"
      "[true,false,null]]}",
      R"({"type":"message_start","message":{"model":"claude","content":[],"usage":{"input_tokens":25,"cache_read_input_tokens":7,"output_tokens":1}}})",
      R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":4,"output_tokens":15}})",
      R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":"a"}})",
      R"({"id":"c","model":"gpt-x","choices":[{"index":0,"delta":{"content":"a\nb\u0041"},"finish_reason":null}],"usage":null})",
      R"({"choices":[{"delta":{},"finish_reason":"stop"},{"a":1}],"model":"m"})",
  };
  const std::string replacements = std::string(
      "\"\\{}[]:,0 1-.eEnutfrl\x00\x01\x7F\x80\xBF\xC3\xE2\xED\xF0\xF4\xFF"
      "dD8a",
      36);
  int checked = 0;
  for (const std::string& seed : seeds) {
    ASSERT_EQ(CompareInContext(seed), "") << seed;
    for (size_t i = 0; i < seed.size(); ++i) {
      std::string deleted = seed;
      deleted.erase(i, 1);
      EXPECT_EQ(CompareInContext(deleted), "") << deleted;
      for (char r : replacements) {
        std::string replaced = seed;
        replaced[i] = r;
        EXPECT_EQ(CompareInContext(replaced), "") << replaced;
        std::string inserted = seed;
        inserted.insert(i, 1, r);
        EXPECT_EQ(CompareInContext(inserted), "") << inserted;
        checked += 2;
      }
    }
  }
  EXPECT_GT(checked, 20000);
}

}  // namespace
}  // namespace chat::llm
