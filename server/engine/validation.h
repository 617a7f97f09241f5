#ifndef CHAT_SERVER_ENGINE_VALIDATION_H_
#define CHAT_SERVER_ENGINE_VALIDATION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/engine/chat_types.h"

namespace chat {

// The bounds a request must respect. Documented in docs/API.md.
struct RequestLimits {
  size_t max_message_bytes = 64 * 1024;
  size_t max_system_prompt_bytes = 16 * 1024;
  int max_tokens_ceiling = 65536;
  // Models a request may name; empty: any (the provider refuses unknown
  // ones itself).
  std::vector<std::string> allowed_models;
};

inline constexpr size_t kMaxSessionIdBytes = 128;
// A stateless completion's bounds: messages in its conversation, stop
// sequences (OpenAI's limit) and bytes of each.
inline constexpr size_t kMaxCompletionMessages = 1000;
inline constexpr size_t kMaxStopSequences = 4;
inline constexpr size_t kMaxStopSequenceBytes = 256;

// OK for 1..128 bytes of [A-Za-z0-9._:@-]; otherwise kInvalidArgument saying
// which rule was broken.
absl::Status ValidateSessionId(absl::string_view session_id);

// A system prompt within limits.max_system_prompt_bytes, with no NUL byte
// (PostgreSQL's TEXT cannot hold one).
absl::Status ValidateSystemPrompt(absl::string_view system_prompt,
                                  const RequestLimits& limits);

// Checks everything a turn carries against `limits`. kInvalidArgument with a
// message naming the field and the bound. A stateless request is checked
// for its messages (each "user" or "assistant", each within
// max_message_bytes) instead of session_id and message.
absl::Status ValidateChatTurnRequest(const ChatTurnRequest& request,
                                     const RequestLimits& limits);

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_VALIDATION_H_
