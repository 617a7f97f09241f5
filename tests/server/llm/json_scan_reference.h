#ifndef CHAT_TESTS_SERVER_LLM_JSON_SCAN_REFERENCE_H_
#define CHAT_TESTS_SERVER_LLM_JSON_SCAN_REFERENCE_H_

// The full-parse reading of the events server/llm/json_scan.h reads fast,
// written the way the decoders read them with nlohmann::json, for tests and
// fuzzers to compare the two (json_scan_test, anthropic_response_fuzzer,
// openai_response_fuzzer).

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "server/llm/json_scan.h"

namespace chat::llm {

// The text AnthropicDecoder's full parse takes from `data`, if it is a
// content_block_delta event with a text_delta; nullopt otherwise (other
// events, or not JSON).
inline std::optional<std::string> ReferenceAnthropicTextDelta(
    absl::string_view data) {
  using nlohmann::json;
  json payload = json::parse(data, nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) return std::nullopt;
  auto type = payload.find("type");
  if (type == payload.end() || !type->is_string() ||
      type->get<std::string>() != "content_block_delta") {
    return std::nullopt;
  }
  auto delta = payload.find("delta");
  if (delta == payload.end() || !delta->is_object()) return std::nullopt;
  auto delta_type = delta->find("type");
  if (delta_type == delta->end() || !delta_type->is_string() ||
      delta_type->get<std::string>() != "text_delta") {
    return std::nullopt;
  }
  auto text = delta->find("text");
  return text != delta->end() && text->is_string() ? text->get<std::string>()
                                                   : std::string();
}

// What OpenAiDecoder's full parse takes from `data`, if it is a JSON object
// with no error and no usage object (the chunks ScanOpenAiChunk may read);
// nullopt otherwise.
inline std::optional<OpenAiChunkFields> ReferenceOpenAiChunk(
    absl::string_view data) {
  using nlohmann::json;
  json chunk = json::parse(data, nullptr, false);
  if (chunk.is_discarded() || !chunk.is_object()) return std::nullopt;
  if (chunk.contains("error") && !chunk["error"].is_null()) return std::nullopt;
  if (auto usage = chunk.find("usage");
      usage != chunk.end() && usage->is_object()) {
    return std::nullopt;
  }
  auto string_at = [](const json& object, const char* key) {
    auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>()
                                                 : std::string();
  };
  OpenAiChunkFields fields;
  fields.model = string_at(chunk, "model");
  if (auto choices = chunk.find("choices");
      choices != chunk.end() && choices->is_array() && !choices->empty()) {
    const json& choice = (*choices)[0];
    if (choice.is_object()) {
      if (auto delta = choice.find("delta");
          delta != choice.end() && delta->is_object()) {
        fields.has_delta = true;
        fields.content = string_at(*delta, "content");
      }
      fields.finish_reason = string_at(choice, "finish_reason");
    }
  }
  return fields;
}

inline bool SameChunkFields(const OpenAiChunkFields& a,
                            const OpenAiChunkFields& b) {
  return a.model == b.model && a.has_delta == b.has_delta &&
         a.content == b.content && a.finish_reason == b.finish_reason;
}

// True if the fast path either declines `data` or reads exactly what the
// full parse reads.
inline bool ScanAgreesWithFullParse(absl::string_view data) {
  std::string text;
  if (ScanAnthropicTextDelta(data, &text)) {
    std::optional<std::string> expected = ReferenceAnthropicTextDelta(data);
    if (!expected.has_value() || *expected != text) return false;
  }
  OpenAiChunkFields fields;
  if (ScanOpenAiChunk(data, &fields)) {
    std::optional<OpenAiChunkFields> expected = ReferenceOpenAiChunk(data);
    if (!expected.has_value() || !SameChunkFields(*expected, fields))
      return false;
  }
  return true;
}

}  // namespace chat::llm

#endif  // CHAT_TESTS_SERVER_LLM_JSON_SCAN_REFERENCE_H_
