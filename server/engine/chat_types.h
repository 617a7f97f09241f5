#ifndef CHAT_SERVER_ENGINE_CHAT_TYPES_H_
#define CHAT_SERVER_ENGINE_CHAT_TYPES_H_

// What one chat turn asks for and what it produces, free of gRPC types so the
// engine can be driven from tests and any front end.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/llm/llm_provider.h"
#include "server/store/idempotency_store.h"
#include "server/store/key_store.h"

namespace chat {

struct ChatTurnRequest {
  std::string tenant = "default";
  // The API key the call was made with (its public id); empty for an
  // anonymous call. Its limits and budget apply to the turn.
  std::string key_id;
  store::KeyLimits key_limits;
  std::string session_id;
  std::string message;
  // Used only when the session is created by this turn.
  std::optional<std::string> system_prompt;
  std::optional<std::string> model;
  std::optional<int> max_tokens;
  std::optional<double> temperature;
  // The caller shows nothing until the turn is stored (unary Chat), so when
  // another replica stores a turn on the session first, the engine may ask
  // the provider again against the fresh history instead of failing.
  bool retry_on_conflict = false;
  // A ChatStream call: counts against the key's max_streams.
  bool streamed = false;
  // The client's id for this turn (ChatRequest.request_id), and the
  // Idempotency-Key header (gRPC metadata `idempotency-key`); either makes
  // the turn idempotent (see IdempotentTurns). Empty: none.
  std::string request_id;
  std::string idempotency_key;
  // Branches. A turn with one of these is a new version of an existing turn
  // of the session, stored as its sibling (ConversationStore::
  // AppendBranchTurn) and made active; the prompt holds the turns before it
  // on its branch. edit_turn_id: `message` replaces that turn's user
  // message. regenerate_turn_id: that turn's own user message is asked
  // again (`message` empty); 0 names the active branch's last turn. At most
  // one is set; neither: a new turn after the active branch's last.
  // after_turn_id: `message` starts a new branch after that turn (a child
  // of it, where an edit makes a sibling).
  std::optional<int> edit_turn_id;
  std::optional<int> regenerate_turn_id;
  std::optional<int> after_turn_id;
  // Set by IdempotentTurns on the turn it runs for a claimed id: the store
  // writes the answer into the id's record with the turn (store::Turn::
  // answers) when the claim is in the conversation store.
  std::optional<store::RequestClaim> request_claim;
  // The caller's deadline; the provider call is bounded by it.
  absl::Time deadline = absl::InfiniteFuture();
  // The W3C traceparent passed to the provider (the trace this turn belongs
  // to, the caller's span as parent); empty: none.
  std::string traceparent;
  // A completion without memory (the Complete RPCs, OpenAI's Chat
  // Completions): `messages` is the whole conversation, sent with
  // `system_prompt` (absent: none) as given; no session is read or written,
  // no context window trims it, and session_id, message and the request ids
  // are unused. Keys, limits, budgets, usage and metrics apply as to a turn.
  bool stateless = false;
  std::vector<llm::PromptMessage> messages;
  // Passed to the provider (llm::CompletionRequest): sequences that end the
  // reply, and the end user the call is for.
  std::vector<std::string> stop;
  std::string user;
};

struct ChatTurnResult {
  std::string session_id;
  std::string response;
  // When the turn was stored.
  absl::Time timestamp;
  // Completed turns in the session, this one included.
  int turn_count = 0;
  std::string model;
  std::string stop_reason;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  // What the turn cost in US dollars at `model`'s price (ChatEngineOptions::
  // prices); nullopt when the model has no price. Observers that count spend
  // (metrics, logs) read it here.
  std::optional<double> cost_usd;
  // Earlier turns left out of the prompt to fit the context window (they
  // stay stored).
  int truncated_turns = 0;
  // The stored turn's id, for an edit or a regeneration; 0 for a turn
  // appended after the active branch's last (the store does not say it).
  int turn_id = 0;
  // For the logs: from the turn's start until the provider's first text
  // (none if it sent none), who answered, their id for the request, and the
  // provider's failed attempts before the answer.
  std::optional<absl::Duration> time_to_first_token;
  std::string provider;
  std::string provider_request_id;
  int provider_retries = 0;
  // A repeat of an idempotent turn answered from the stored answer; no
  // provider was asked (provider fields and time_to_first_token are empty).
  bool replayed = false;
  // The answer was written to `request_claim`'s record with the turn, in
  // one transaction; IdempotentTurns need not write it again.
  bool answer_stored = false;
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_CHAT_TYPES_H_
