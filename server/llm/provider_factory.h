#ifndef CHAT_SERVER_LLM_PROVIDER_FACTORY_H_
#define CHAT_SERVER_LLM_PROVIDER_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/llm/http_streaming_provider.h"
#include "server/llm/llm_provider.h"

namespace chat::llm {

struct ProviderConfig {
  // "auto", "echo", "anthropic" or "openai".
  std::string name = "auto";
  absl::Duration echo_delay = absl::Milliseconds(20);
  // Empty: the provider's own default model.
  std::string model;
  int max_tokens = 1024;
  HttpProviderOptions http;
  // From ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL, OPENAI_API_KEY,
  // OPENAI_BASE_URL (empty when unset).
  std::string anthropic_api_key;
  std::string anthropic_base_url;
  std::string openai_api_key;
  std::string openai_base_url;
};

// Fills the credentials and base URLs of `config` from the environment.
void ReadProviderEnvironment(ProviderConfig* config);

// The provider `config` selects, and why, for the start-up log (never
// containing a key). "auto" is anthropic if its key is set, else openai if
// its key is set, else echo. kInvalidArgument for an unknown name;
// kFailedPrecondition when the named provider lacks its key (openai needs
// none when OPENAI_BASE_URL points at a local server).
struct ProviderChoice {
  std::string name;
  std::string reason;
};
absl::StatusOr<ProviderChoice> ChooseProvider(const ProviderConfig& config);

// The provider `config` selects (see ChooseProvider), ready to use.
absl::StatusOr<std::unique_ptr<LlmProvider>> MakeLlmProvider(
    const ProviderConfig& config);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_PROVIDER_FACTORY_H_
