#ifndef CHAT_SERVER_LLM_JSON_SCAN_H_
#define CHAT_SERVER_LLM_JSON_SCAN_H_

// Fast paths for the SSE events that make up almost all of a streamed reply
// (one per token), read without building a JSON document.
//
// Each function is a strict scanner of one shape: it returns true only when
// `data` is valid JSON (exactly as nlohmann::json::parse judges it: RFC 8259
// grammar, well-formed UTF-8, surrogate pairs, nothing after the value) of
// that shape, and then the fields it returns are exactly what the full parse
// would give. Anything it is not sure of (an escaped key, a duplicate of a
// field it reads, a number with an exponent, nesting deeper than 64, another
// event type) returns false, and the caller parses the event fully. So the
// decoded text never depends on which path read it; the tests and the
// anthropic_response / openai_response fuzzers compare the two.

#include <string>

#include "absl/strings/string_view.h"

namespace chat::llm {

// Anthropic: {"type":"content_block_delta",...,"delta":{"type":"text_delta",
// "text":TEXT,...},...}, keys in any order. Sets `*text` to TEXT, decoded.
bool ScanAnthropicTextDelta(absl::string_view data, std::string* text);

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
