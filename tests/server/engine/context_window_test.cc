// TrimToContextWindow drops whole turns, oldest first, and never the system
// prompt or the new message. Strategy: messages of known sizes (4 bytes =
// 1 estimated token) against budgets just above and below each boundary.

#include "server/engine/context_window.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat {
namespace {

// n turns of `turn_tokens` tokens per message, then a new message.
std::vector<llm::PromptMessage> Conversation(int turns, int tokens_each) {
  std::vector<llm::PromptMessage> m;
  for (int i = 0; i < turns; ++i) {
    m.push_back(
        {"user", std::string(4 * tokens_each, 'u') + std::to_string(i)});
    m.back().content.resize(4 * tokens_each);
    m.push_back({"assistant", std::string(4 * tokens_each, 'a')});
  }
  m.push_back({"user", std::string(4 * tokens_each, 'n')});
  return m;
}

TEST(EstimateTokensTest, BytesOverFourRoundedUp) {
  EXPECT_EQ(EstimateTokens(""), 0);
  EXPECT_EQ(EstimateTokens("a"), 1);
  EXPECT_EQ(EstimateTokens("abcd"), 1);
  EXPECT_EQ(EstimateTokens("abcde"), 2);
}

TEST(TrimToContextWindowTest, NoLimitOrEnoughRoomKeepsEverything) {
  std::vector<llm::PromptMessage> m = Conversation(3, 10);
  EXPECT_EQ(TrimToContextWindow(0, "sys!", &m), 0);
  EXPECT_EQ(m.size(), 7u);
  // 7 messages * 10 + 1 for the system prompt = 71 tokens.
  EXPECT_EQ(TrimToContextWindow(71, "sys!", &m), 0);
  EXPECT_EQ(m.size(), 7u);
}

TEST(TrimToContextWindowTest, DropsOldestWholeTurnsFirst) {
  std::vector<llm::PromptMessage> m = Conversation(3, 10);
  const std::string second_turn = m[2].content;
  EXPECT_EQ(TrimToContextWindow(70, "sys!", &m), 1);
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(m[0].role, "user");
  EXPECT_EQ(m[0].content, second_turn);
  EXPECT_EQ(m.back().content, std::string(40, 'n'));
}

TEST(TrimToContextWindowTest, NewMessageAndSystemPromptAlwaysGo) {
  std::vector<llm::PromptMessage> m = Conversation(3, 10);
  EXPECT_EQ(TrimToContextWindow(1, std::string(400, 's'), &m), 3);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].content, std::string(40, 'n'));
}

TEST(TrimToContextWindowTest, FirstTurnOfASessionHasNothingToDrop) {
  std::vector<llm::PromptMessage> m = Conversation(0, 10);
  EXPECT_EQ(TrimToContextWindow(1, "", &m), 0);
  EXPECT_EQ(m.size(), 1u);
}

TEST(TrimToContextWindowTest, KnownUsageBeatsTheEstimate) {
  std::vector<llm::PromptMessage> m = Conversation(2, 10);
  // The provider said the first reply was 500 tokens, not 10.
  m[1].tokens = 500;
  EXPECT_EQ(TrimToContextWindow(100, "", &m), 1);
  EXPECT_EQ(m.size(), 3u);
  m = Conversation(2, 10);
  m[1].tokens = 1;  // Smaller than estimated: now everything fits.
  EXPECT_EQ(TrimToContextWindow(41, "", &m), 0);
}

}  // namespace
}  // namespace chat
