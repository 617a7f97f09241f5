#ifndef CHAT_SERVER_LLM_JSON_SCAN_H_
#define CHAT_SERVER_LLM_JSON_SCAN_H_

// Fast paths for the SSE events of an ordinary streamed reply (the text
// deltas, one per token, and the events around them), read without building
// a JSON document.
//
// Each function is a strict scanner of one shape: it returns true only when
// `data` is valid JSON (exactly as nlohmann::json::parse judges it: RFC 8259
// grammar, well-formed UTF-8, surrogate pairs, nothing after the value) of
// that shape, and then the fields it returns are exactly what the full parse
// would give. Anything it is not sure of (an escaped key, a duplicate of a
// field it reads, a number with an exponent, nesting deeper than 64, another
// event type, an error) returns false, and the caller parses the event
// fully. So what a decoder reads never depends on which path read it:
// json_scan_test and the anthropic_response / openai_response fuzzers
// compare a decoder using these with one that parses every event.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace chat::llm {

// The usage counts of an Anthropic event; each is absent unless the event
// had it.
struct AnthropicUsage {
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> cache_read_input_tokens;
  std::optional<int64_t> cache_creation_input_tokens;
  std::optional<int64_t> output_tokens;
};

// What AnthropicDecoder reads from an event of a Messages API stream.
struct AnthropicEventFields {
  std::string type;
  // "delta": content_block_delta's {type, text}, message_delta's
  // {stop_reason}.
  bool has_delta = false;
  std::string delta_type;                 // "" when absent.
  std::optional<std::string> delta_text;  // Absent: no "text".
  std::string stop_reason;                // "" when absent or null.
  std::optional<AnthropicUsage> usage;    // message_delta's "usage".
  // message_start's "message".
  bool has_message = false;
  std::string model;  // "" when absent.
  std::optional<AnthropicUsage> message_usage;
  // content_block_start's "content_block".
  bool has_block = false;
  std::string block_type;
  std::optional<std::string> block_text;
};

// Anthropic: an object whose "type" is message_start, content_block_start,
// content_block_delta, message_delta, message_stop,
// content_block_stop or ping (error events and unknown types go to the full
// parse), whose "delta", "usage", "message" and "content_block" are objects
// when present, and whose fields read above have the JSON types the API
// documents (token counts: integers of at most 18 digits). Other members may
// be anything.
bool ScanAnthropicEvent(absl::string_view data, AnthropicEventFields* fields);

// What OpenAiDecoder reads from a chat.completion.chunk.
struct OpenAiChunkFields {
  std::string model;  // "" when absent.
  // choices[0].delta is an object: its content (or "") is a delta.
  bool has_delta = false;
  std::string content;        // choices[0].delta.content; "" if absent/null.
  std::string finish_reason;  // choices[0].finish_reason; "" if absent/null.
};

// OpenAI: an object without "error" and with "usage" absent or null, whose
// "model" is a string if present and whose "choices" is absent, null or an
// array; if that array has a first element, it is an object whose "delta"
// is an object or null (its "content" a string or null) and whose
// "finish_reason" is a string or null. Other members may be anything.
bool ScanOpenAiChunk(absl::string_view data, OpenAiChunkFields* fields);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_JSON_SCAN_H_
