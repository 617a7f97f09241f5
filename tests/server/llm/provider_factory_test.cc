// ChooseProvider: which provider --provider=auto picks, and the errors for
// a provider named without its key.

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

}  // namespace
}  // namespace chat::llm
