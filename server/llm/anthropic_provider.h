#ifndef CHAT_SERVER_LLM_ANTHROPIC_PROVIDER_H_
#define CHAT_SERVER_LLM_ANTHROPIC_PROVIDER_H_

#include <memory>
#include <string>

#include "server/llm/http_streaming_provider.h"

namespace chat::llm {

struct AnthropicConfig {
  std::string api_key;
  // Without the /v1 path: requests go to {base_url}/v1/messages.
  std::string base_url = "https://api.anthropic.com";
  std::string default_model = "claude-sonnet-4-6";
  int default_max_tokens = 1024;
};

// Anthropic's Messages API (POST /v1/messages, `stream: true`): the request
// carries `x-api-key` and `anthropic-version: 2023-06-01`; the answer is SSE
// (message_start with input usage, content_block_delta text_delta events,
// message_delta with the stop reason and cumulative output usage,
// message_stop; `ping` anywhere; an `error` event may arrive after the 200).
class AnthropicProtocol final : public WireProtocol {
 public:
  explicit AnthropicProtocol(AnthropicConfig config)
      : config_(std::move(config)) {}
  absl::string_view name() const override { return "anthropic"; }
  HttpRequest BuildRequest(const CompletionRequest& request) const override;
  std::unique_ptr<StreamDecoder> NewDecoder() const override;
  absl::string_view request_id_header() const override { return "request-id"; }

 private:
  const AnthropicConfig config_;
};

// AnthropicProtocol's decoder. With `fast_path` false every event goes
// through the full JSON parse: tests and fuzzers check both read the same.
std::unique_ptr<StreamDecoder> NewAnthropicDecoder(bool fast_path);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_ANTHROPIC_PROVIDER_H_
