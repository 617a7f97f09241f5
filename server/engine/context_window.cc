#include "server/engine/context_window.h"

namespace chat {

int64_t EstimateTokens(absl::string_view text) {
  return static_cast<int64_t>((text.size() + 3) / 4);
}

namespace {

int64_t TokensOf(const llm::PromptMessage& m) {
  return m.tokens.has_value() ? *m.tokens : EstimateTokens(m.content);
}

}  // namespace

int TrimToContextWindow(int64_t max_context_tokens,
                        absl::string_view system_prompt,
                        std::vector<llm::PromptMessage>* messages) {
  if (max_context_tokens <= 0 || messages->empty()) return 0;
  int64_t total = EstimateTokens(system_prompt);
  for (const llm::PromptMessage& m : *messages) total += TokensOf(m);
  // A turn is a user message and the assistant's reply; the last message
  // is the new one and is never dropped.
  const size_t history = messages->size() - 1;
  size_t drop = 0;  // Messages to drop from the front.
  int turns = 0;
  while (total > max_context_tokens && drop + 2 <= history) {
    total -= TokensOf((*messages)[drop]) + TokensOf((*messages)[drop + 1]);
    drop += 2;
    ++turns;
  }
  messages->erase(messages->begin(),
                  messages->begin() + static_cast<long>(drop));
  return turns;
}

}  // namespace chat
