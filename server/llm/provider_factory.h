#ifndef CHAT_SERVER_LLM_PROVIDER_FACTORY_H_
#define CHAT_SERVER_LLM_PROVIDER_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/llm/llm_provider.h"

namespace chat::llm {

struct ProviderConfig {
  // "echo".
  std::string name = "echo";
  absl::Duration echo_delay = absl::Milliseconds(20);
};

// The provider `config` names. kInvalidArgument for an unknown name.
absl::StatusOr<std::unique_ptr<LlmProvider>> MakeLlmProvider(
    const ProviderConfig& config);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_PROVIDER_FACTORY_H_
