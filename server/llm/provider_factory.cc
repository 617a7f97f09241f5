#include "server/llm/provider_factory.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "server/llm/anthropic_provider.h"
#include "server/llm/curl_multi_loop.h"
#include "server/llm/echo_provider.h"
#include "server/llm/fallback_provider.h"
#include "server/llm/openai_provider.h"

namespace chat::llm {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

}  // namespace

void ReadProviderEnvironment(ProviderConfig* config) {
  config->anthropic_api_key = Env("ANTHROPIC_API_KEY");
  config->anthropic_base_url = Env("ANTHROPIC_BASE_URL");
  config->openai_api_key = Env("OPENAI_API_KEY");
  config->openai_base_url = Env("OPENAI_BASE_URL");
}

absl::StatusOr<ProviderChoice> ChooseProvider(const ProviderConfig& config) {
  const std::string& name = config.name;
  if (name == "auto") {
    if (!config.anthropic_api_key.empty()) {
      return ProviderChoice{"anthropic",
                            "--provider=auto and ANTHROPIC_API_KEY is set"};
    }
    if (!config.openai_api_key.empty()) {
      return ProviderChoice{"openai",
                            "--provider=auto and OPENAI_API_KEY is set"};
    }
    return ProviderChoice{
        "echo",
        "--provider=auto and neither ANTHROPIC_API_KEY nor OPENAI_API_KEY is "
        "set; replies are offline echoes"};
  }
  if (name == "echo") return ProviderChoice{"echo", "--provider=echo"};
  if (name == "anthropic") {
    if (config.anthropic_api_key.empty()) {
      return absl::FailedPreconditionError(
          "--provider=anthropic needs ANTHROPIC_API_KEY (in the environment or "
          ".env)");
    }
    return ProviderChoice{"anthropic", "--provider=anthropic"};
  }
  if (name == "openai") {
    if (config.openai_api_key.empty() && config.openai_base_url.empty()) {
      return absl::FailedPreconditionError(
          "--provider=openai needs OPENAI_API_KEY, or OPENAI_BASE_URL for a "
          "local server that needs no key");
    }
    return ProviderChoice{"openai", "--provider=openai"};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown provider '", name,
                   "'; known providers: auto, echo, anthropic, openai"));
}

absl::StatusOr<FallbackTarget> ParseFallbackTarget(absl::string_view spec) {
  const size_t colon = spec.find(':');
  FallbackTarget target;
  target.provider = std::string(spec.substr(0, colon));
  if (target.provider != "anthropic" && target.provider != "openai" &&
      target.provider != "echo") {
    return absl::InvalidArgumentError(absl::StrCat(
        "--fallback entry '", spec, "' names unknown provider '",
        target.provider,
        "'; write PROVIDER:MODEL with PROVIDER one of anthropic, openai, "
        "echo"));
  }
  if (colon != absl::string_view::npos) {
    target.model = std::string(spec.substr(colon + 1));
  }
  if (target.model.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--fallback entry '", spec,
                     "' names no model; write PROVIDER:MODEL, e.g. "
                     "openai:gpt-4o-mini"));
  }
  return target;
}

absl::Status CheckFallbackCredentials(const ProviderConfig& config) {
  for (const FallbackTarget& target : config.fallbacks) {
    ProviderConfig named = config;
    named.name = target.provider;
    absl::StatusOr<ProviderChoice> choice = ChooseProvider(named);
    if (!choice.ok()) {
      return absl::InvalidArgumentError(absl::StrReplaceAll(
          choice.status().message(),
          {{absl::StrCat("--provider=", target.provider),
            absl::StrCat("--fallback entry '", target.provider, ":",
                         target.model, "'")}}));
    }
  }
  return absl::OkStatus();
}

namespace {

// One provider, `name` as ChooseProvider resolved it.
absl::StatusOr<std::unique_ptr<LlmProvider>> MakeOneProvider(
    const ProviderConfig& config, const std::string& name) {
  if (name == "echo") {
    return std::make_unique<EchoProvider>(EchoOptions{config.echo_delay});
  }
  std::unique_ptr<WireProtocol> protocol;
  if (name == "anthropic") {
    AnthropicConfig c;
    c.api_key = config.anthropic_api_key;
    if (!config.anthropic_base_url.empty())
      c.base_url = config.anthropic_base_url;
    if (!config.model.empty()) c.default_model = config.model;
    c.default_max_tokens = config.max_tokens;
    protocol = std::make_unique<AnthropicProtocol>(std::move(c));
  } else {
    OpenAiConfig c;
    c.api_key = config.openai_api_key;
    if (!config.openai_base_url.empty()) c.base_url = config.openai_base_url;
    if (!config.model.empty()) c.default_model = config.model;
    c.default_max_tokens = config.max_tokens;
    protocol = std::make_unique<OpenAiProtocol>(std::move(c));
  }
  CurlMultiLoopOptions loop_options;
  loop_options.provider = std::string(protocol->name());
  absl::StatusOr<std::unique_ptr<CurlMultiLoop>> loop =
      CurlMultiLoop::Create(std::move(loop_options));
  if (!loop.ok()) return loop.status();
  return std::make_unique<HttpStreamingProvider>(std::move(protocol),
                                                 config.http, *std::move(loop));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LlmProvider>> MakeLlmProvider(
    const ProviderConfig& config) {
  absl::StatusOr<ProviderChoice> choice = ChooseProvider(config);
  if (!choice.ok()) return choice.status();
  absl::StatusOr<std::unique_ptr<LlmProvider>> primary =
      MakeOneProvider(config, choice->name);
  if (!primary.ok() || config.fallbacks.empty()) return primary;
  if (absl::Status s = CheckFallbackCredentials(config); !s.ok()) return s;
  std::vector<FallbackEntry> entries;
  entries.push_back({*std::move(primary), ""});
  for (const FallbackTarget& target : config.fallbacks) {
    ProviderConfig own = config;
    // The fallback's model is sent with each request; --model is the
    // primary's.
    own.model = target.model;
    absl::StatusOr<std::unique_ptr<LlmProvider>> provider =
        MakeOneProvider(own, target.provider);
    if (!provider.ok()) return provider.status();
    entries.push_back({*std::move(provider), target.model});
  }
  CircuitBreakerOptions breaker;
  breaker.failure_threshold = kFallbackFailureThreshold;
  breaker.cooldown = config.fallback_cooldown;
  return std::make_unique<FallbackProvider>(std::move(entries),
                                            std::move(breaker));
}

std::vector<std::string> ConfiguredModels(const ProviderConfig& config) {
  std::vector<std::string> models;
  absl::StatusOr<ProviderChoice> choice = ChooseProvider(config);
  if (!choice.ok()) return models;
  std::string primary = config.model;
  if (primary.empty()) {
    if (choice->name == "anthropic") {
      primary = AnthropicConfig().default_model;
    } else if (choice->name == "openai") {
      primary = OpenAiConfig().default_model;
    } else {
      primary = "echo";
    }
  }
  models.push_back(std::move(primary));
  for (const FallbackTarget& fallback : config.fallbacks) {
    if (std::find(models.begin(), models.end(), fallback.model) ==
        models.end()) {
      models.push_back(fallback.model);
    }
  }
  return models;
}

}  // namespace chat::llm
