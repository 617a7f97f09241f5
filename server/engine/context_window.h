#ifndef CHAT_SERVER_ENGINE_CONTEXT_WINDOW_H_
#define CHAT_SERVER_ENGINE_CONTEXT_WINDOW_H_

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/llm/llm_provider.h"

namespace chat {

// Estimated tokens of `text`: bytes / 4, rounded up, the usual rule of thumb
// for English with BPE tokenizers (a provider's reported usage, where
// known, replaces it).
int64_t EstimateTokens(absl::string_view text);

// Trims `messages` (the stored history, oldest first, in whole
// user/assistant turns, then the new user message last) so that the prompt
// fits `max_context_tokens`: whole turns are dropped from the oldest until
// the system prompt, what is left of the history and the new message fit.
// A message counts as its `tokens` when known, else EstimateTokens.
// The system prompt and the new message always go, even when they alone
// exceed the budget (the provider then says so). `max_context_tokens` <= 0
// means no limit. Returns the number of turns dropped.
int TrimToContextWindow(int64_t max_context_tokens,
                        absl::string_view system_prompt,
                        std::vector<llm::PromptMessage>* messages);

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_CONTEXT_WINDOW_H_
