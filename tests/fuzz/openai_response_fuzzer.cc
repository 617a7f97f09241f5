// OpenAI-compatible response parsers (OpenAiProtocol's decoder) on arbitrary
// bytes: as an SSE stream of chat.completion.chunk events and as a whole JSON
// body. See provider_decoder_fuzz.h for what is checked.

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "server/llm/openai_provider.h"
#include "tests/fuzz/provider_decoder_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const chat::llm::OpenAiProtocol* const protocol =
      new chat::llm::OpenAiProtocol(chat::llm::OpenAiConfig{});
  chat::llm::DecodeResponse(
      *protocol, absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
