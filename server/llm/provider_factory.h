#ifndef CHAT_SERVER_LLM_PROVIDER_FACTORY_H_
#define CHAT_SERVER_LLM_PROVIDER_FACTORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/llm/http_streaming_provider.h"
#include "server/llm/llm_provider.h"

namespace chat::llm {

// One entry of --fallback: a provider and the model to ask it for.
struct FallbackTarget {
  std::string provider;  // "anthropic", "openai" or "echo"
  std::string model;
};

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
  // Tried in order after the primary fails before its first delta (see
  // FallbackProvider); empty: no fallback, and no circuit breaker.
  std::vector<FallbackTarget> fallbacks;
  // How long a provider entry that failed kFallbackFailureThreshold times in
  // a row is skipped.
  absl::Duration fallback_cooldown = absl::Seconds(30);
};

// Consecutive retryable failures after which an entry is skipped for the
// cooldown. Three: one failure is noise, and the provider's own retries
// already ran inside each.
inline constexpr int kFallbackFailureThreshold = 3;

// Parses one --fallback entry, "PROVIDER:MODEL" (the model may hold colons,
// as Ollama's "llama3:8b" does). kInvalidArgument naming --fallback for an
// unknown provider or a missing model.
absl::StatusOr<FallbackTarget> ParseFallbackTarget(absl::string_view spec);

// kInvalidArgument naming --fallback if a fallback's provider lacks its key
// (as ChooseProvider decides for --provider). Needs the environment read.
absl::Status CheckFallbackCredentials(const ProviderConfig& config);

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

// The models `config` serves: first the one a request naming none gets
// (--model, else the chosen provider's default: "claude-sonnet-4-6",
// "gpt-4o-mini", "echo"), then each fallback's, without repeats. Empty if no
// provider can be chosen.
std::vector<std::string> ConfiguredModels(const ProviderConfig& config);

// The provider `config` selects (see ChooseProvider), ready to use; with
// fallbacks, a FallbackProvider over it and them.
absl::StatusOr<std::unique_ptr<LlmProvider>> MakeLlmProvider(
    const ProviderConfig& config);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_PROVIDER_FACTORY_H_
