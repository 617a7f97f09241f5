#include "server/llm/provider_factory.h"

#include "absl/strings/str_cat.h"
#include "server/llm/echo_provider.h"

namespace chat::llm {

absl::StatusOr<std::unique_ptr<LlmProvider>> MakeLlmProvider(
    const ProviderConfig& config) {
  if (config.name == "echo") {
    return std::make_unique<EchoProvider>(EchoOptions{config.echo_delay});
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown provider '", config.name, "'; known providers: echo"));
}

}  // namespace chat::llm
