// ChooseProvider: which provider --provider=auto picks, and the errors for
// a provider named without its key; --fallback entries parsed and checked
// the same way.

#include "server/llm/provider_factory.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::llm {
namespace {

using ::chat::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ChooseProviderTest, AutoPrefersAnthropicThenOpenAiThenEcho) {
  ProviderConfig config;
  EXPECT_EQ(ChooseProvider(config)->name, "echo");
  config.openai_api_key = "sk-openai-secret";
  EXPECT_EQ(ChooseProvider(config)->name, "openai");
  config.anthropic_api_key = "sk-ant-secret";
  absl::StatusOr<ProviderChoice> choice = ChooseProvider(config);
  EXPECT_EQ(choice->name, "anthropic");
  EXPECT_THAT(choice->reason, HasSubstr("ANTHROPIC_API_KEY"));
  EXPECT_THAT(choice->reason, Not(HasSubstr("secret")));
}

TEST(ChooseProviderTest, ExplicitProviderNeedsItsKey) {
  ProviderConfig config;
  config.name = "anthropic";
  EXPECT_THAT(ChooseProvider(config),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  config.name = "openai";
  EXPECT_THAT(ChooseProvider(config),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  config.openai_base_url = "http://127.0.0.1:11434/v1";  // Ollama: no key.
  EXPECT_EQ(ChooseProvider(config)->name, "openai");
  config.name = "gemini";
  EXPECT_THAT(ChooseProvider(config),
              StatusIs(absl::StatusCode::kInvalidArgument));
  config.name = "echo";
  config.anthropic_api_key = "k";
  EXPECT_EQ(ChooseProvider(config)->name, "echo");
}

TEST(MakeLlmProviderTest, BuildsEachProvider) {
  ProviderConfig config;
  config.anthropic_api_key = "k";
  config.anthropic_base_url = "http://127.0.0.1:9";
  absl::StatusOr<std::unique_ptr<LlmProvider>> p = MakeLlmProvider(config);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->name(), "anthropic");
  config.name = "openai";
  config.openai_api_key = "k";
  p = MakeLlmProvider(config);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->name(), "openai");
}

TEST(ParseFallbackTargetTest, ProviderColonModel) {
  absl::StatusOr<FallbackTarget> target =
      ParseFallbackTarget("openai:gpt-4o-mini");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->provider, "openai");
  EXPECT_EQ(target->model, "gpt-4o-mini");
  // Ollama's models carry a tag after a colon.
  EXPECT_EQ(ParseFallbackTarget("openai:llama3:8b")->model, "llama3:8b");
  EXPECT_EQ(ParseFallbackTarget("anthropic:claude-haiku-4-5")->provider,
            "anthropic");
}

TEST(ParseFallbackTargetTest, RefusesUnknownProvidersAndMissingModels) {
  for (const char* spec :
       {"gemini:pro", "auto:x", "openai", "openai:", "", ":gpt-4o-mini"}) {
    SCOPED_TRACE(spec);
    EXPECT_THAT(
        ParseFallbackTarget(spec),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--fallback")));
  }
}

TEST(CheckFallbackCredentialsTest, EachFallbackNeedsItsKey) {
  ProviderConfig config;
  config.anthropic_api_key = "sk-ant-secret";
  config.fallbacks = {{"openai", "gpt-4o-mini"}};
  absl::Status status = CheckFallbackCredentials(config);
  EXPECT_THAT(status,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--fallback entry 'openai:gpt-4o-mini' "
                                 "needs OPENAI_API_KEY")));
  EXPECT_THAT(status.message(), Not(HasSubstr("secret")));
  config.openai_api_key = "sk-openai-secret";
  EXPECT_TRUE(CheckFallbackCredentials(config).ok());
  config.fallbacks.push_back({"echo", "echo"});
  EXPECT_TRUE(CheckFallbackCredentials(config).ok());
}

TEST(MakeLlmProviderTest, WrapsThePrimaryWithItsFallbacks) {
  ProviderConfig config;
  config.name = "anthropic";
  config.anthropic_api_key = "k";
  config.anthropic_base_url = "http://127.0.0.1:9";
  config.openai_api_key = "k";
  config.openai_base_url = "http://127.0.0.1:9/v1";
  config.fallbacks = {{"openai", "gpt-4o-mini"}, {"echo", "echo"}};
  absl::StatusOr<std::unique_ptr<LlmProvider>> p = MakeLlmProvider(config);
  ASSERT_TRUE(p.ok()) << p.status();
  // Logs name the primary.
  EXPECT_EQ((*p)->name(), "anthropic");
  config.openai_api_key.clear();
  config.openai_base_url.clear();
  EXPECT_THAT(
      MakeLlmProvider(config),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--fallback")));
}

}  // namespace
}  // namespace chat::llm
