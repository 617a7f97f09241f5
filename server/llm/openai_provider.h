#ifndef CHAT_SERVER_LLM_OPENAI_PROVIDER_H_
#define CHAT_SERVER_LLM_OPENAI_PROVIDER_H_

#include <memory>
#include <string>

#include "server/llm/http_streaming_provider.h"

namespace chat::llm {

struct OpenAiConfig {
  // May be empty for local servers (Ollama, llama.cpp) that need none.
  std::string api_key;
  // With its path: requests go to {base_url}/chat/completions (Groq's base is
  // https://api.groq.com/openai/v1, Ollama's http://127.0.0.1:11434/v1).
  std::string base_url = "https://api.openai.com/v1";
  std::string default_model = "gpt-4o-mini";
  int default_max_tokens = 1024;
};

// OpenAI-compatible Chat Completions (OpenAI, Groq, Together, Ollama, vLLM,
// llama.cpp server): `Authorization: Bearer`, the system prompt as the first
// message, `stream: true` with `stream_options.include_usage`. The answer is
// SSE of chat.completion.chunk objects ended by `data: [DONE]`; the usage
// comes in a last chunk with `choices: []`. Tolerates what servers differ in:
// `choices` null or absent, `:` comment lines, `usage: null`, and a
// mid-stream failure sent as `data: {"error": {...}}`. Finish reasons "stop"
// and "length" are reported as "end_turn" and "max_tokens", like Anthropic's.
// The reply limit goes as `max_completion_tokens` to api.openai.com (which
// deprecated `max_tokens`) and as `max_tokens` to every other server.
class OpenAiProtocol final : public WireProtocol {
 public:
  explicit OpenAiProtocol(OpenAiConfig config) : config_(std::move(config)) {}
  absl::string_view name() const override { return "openai"; }
  HttpRequest BuildRequest(const CompletionRequest& request) const override;
  std::unique_ptr<StreamDecoder> NewDecoder() const override;
  absl::string_view request_id_header() const override {
    return "x-request-id";
  }

 private:
  const OpenAiConfig config_;
};

// OpenAiProtocol's decoder. With `fast_path` false every event goes through
// the full JSON parse: tests and fuzzers check both read the same.
std::unique_ptr<StreamDecoder> NewOpenAiDecoder(bool fast_path);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_OPENAI_PROVIDER_H_
