#ifndef CHAT_SERVER_ENGINE_CHAT_ENGINE_H_
#define CHAT_SERVER_ENGINE_CHAT_ENGINE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/thread_pool.h"
#include "server/engine/chat_types.h"
#include "server/engine/idempotent_turns.h"
#include "server/engine/key_quotas.h"
#include "server/engine/price_table.h"
#include "server/engine/session_serializer.h"
#include "server/engine/session_titler.h"
#include "server/engine/usage_recorder.h"
#include "server/engine/validation.h"
#include "server/llm/llm_provider.h"
#include "server/store/conversation_store.h"

namespace chat {

struct ChatEngineOptions {
  std::string default_system_prompt = "You are a helpful AI assistant.";
  RequestLimits limits;
  // 0: unlimited. Beyond them a turn fails with kResourceExhausted before
  // the provider is asked.
  int max_turns_per_session = 0;
  int64_t max_sessions_per_tenant = 0;
  // Prompt budget in estimated tokens: older turns are left out of the
  // prompt (never out of the store) to fit it. 0: no limit.
  int64_t max_context_tokens = 0;
  // The provider's reply length when a request sets no max_tokens: what a
  // turn of a key with token limits reserves for its answer.
  int default_max_tokens = 1024;
  // How often usage is added to the store.
  absl::Duration usage_flush_interval = absl::Seconds(1);
  // Prices each answer by the model that gave it; null: no answer has a
  // cost.
  std::shared_ptr<const PriceTable> prices;
  // Turns with a request id (--idempotency_ttl and the rest).
  IdempotencyOptions idempotency;
  // Session titles made after a session's first turn (--title_model).
  TitleOptions titles;
};

// OK while `tenant` has fewer than `max_sessions` sessions (0: no limit);
// kResourceExhausted naming max_sessions_per_tenant otherwise. What a turn
// that creates a session and CreateSession both meet. A soft bound: sessions
// created at the same moment on several replicas may each pass it.
absl::Status CheckRoomForSession(store::ConversationStore& store,
                                 absl::string_view tenant,
                                 int64_t max_sessions);

// Receives the outcome of one turn: OnDelta for each piece of the reply as
// the provider produces it, then OnComplete exactly once, after the turn was
// stored (or with the reason it was not). Calls never overlap and may come
// from any thread; they must not block.
class TurnObserver {
 public:
  virtual ~TurnObserver() = default;
  // Once the turn's API key was charged for it, before the first OnDelta;
  // only for keys with per-minute limits or a budget.
  virtual void OnAdmitted(const RateLimitStatus& /*status*/) {}
  virtual void OnDelta(absl::string_view text) = 0;
  virtual void OnComplete(absl::StatusOr<ChatTurnResult> result) = 0;
};

// Ends a running turn early.
class TurnHandle {
 public:
  virtual ~TurnHandle() = default;
  // Stops the turn: the provider call is cancelled, nothing is stored, and
  // the observer's OnComplete says kCancelled, unless the turn had already
  // been stored. Safe from any thread, more than once.
  virtual void Cancel() = 0;
};

// Runs chat turns: loads a session's history, asks the provider, and stores
// the user message and the reply together once the reply is complete. A
// failed or cancelled turn leaves the history as it was. Turns of one session
// run one after another in arrival order; no thread waits for a provider or
// a queued turn. Thread-safe.
class ChatEngine {
 public:
  // `store`, `provider` and `pool` must outlive the engine. Store I/O runs
  // on `pool`, except that with a store that does not block
  // (ConversationStore::MayBlock) a turn of an idle session reads its
  // history on the thread that called StartTurn.
  ChatEngine(store::ConversationStore* store, llm::LlmProvider* provider,
             ThreadPool* pool, ChatEngineOptions options);
  ChatEngine(const ChatEngine&) = delete;
  ChatEngine& operator=(const ChatEngine&) = delete;
  // Waits until every turn started has ended (its observer answered and its
  // session passed on); the pool must still run.
  ~ChatEngine();

  // Validates `request` (kInvalidArgument, and the observer is never called),
  // checks it against its API key's allowed models, max_tokens ceiling and
  // stream slots (kPermissionDenied, kInvalidArgument, kResourceExhausted),
  // and queues the turn. The key's per-minute limits and budget are charged
  // when the turn starts, before the provider is called; a refusal ends the
  // turn with kResourceExhausted (see RateLimitedError). `observer` must stay
  // valid until its OnComplete. With a store that does not block, a turn
  // that ends before its provider starts (a limit, a refusal) calls the
  // observer's OnAdmitted and OnComplete before StartTurn returns: the caller
  // must not hold a lock those take.
  //
  // A request with a request id (request_id or idempotency_key;
  // kInvalidArgument if they differ) is idempotent: see IdempotentTurns. A
  // repeat may get the stored answer as one OnDelta and OnComplete, wait for
  // the first request's turn, or end with kFailedPrecondition (the id was used
  // for another session or message); the observer is then never called before
  // StartTurn returns.
  absl::StatusOr<std::shared_ptr<TurnHandle>> StartTurn(ChatTurnRequest request,
                                                        TurnObserver* observer);

  const ChatEngineOptions& options() const { return options_; }

  // Charges a call that writes a session without a turn (CreateSession,
  // UpdateSession, ImportSession, SwitchBranch) to the caller's key: one
  // request against its requests per minute (KeyQuotas::ChargeRequest), so a
  // key cannot write sessions faster than it may chat. Returns where the
  // key's requests then stand; all zeros for an anonymous caller. Blocks on
  // the store.
  absl::StatusOr<RateLimitStatus> ChargeSessionWrite(
      const std::string& key_id, const store::KeyLimits& limits);

  // Adds the usage counted so far to the store now (tests, shutdown).
  void FlushUsage() { usage_.Flush(); }

 private:
  // What the tokens of `model` cost; nullopt without a price.
  std::optional<double> CostOf(absl::string_view model, int64_t input_tokens,
                               int64_t output_tokens) const;

  class Turn;
  void TurnEnded();
  // StartTurn after validation: takes the stream slot and queues the turn.
  absl::StatusOr<std::shared_ptr<TurnHandle>> StartAcceptedTurn(
      ChatTurnRequest request, TurnObserver* observer);

  store::ConversationStore* const store_;
  llm::LlmProvider* const provider_;
  ThreadPool* const pool_;
  // store_->MayBlock(): whether turns start on the pool (true) or, when their
  // session is idle, on the thread that calls StartTurn (false).
  const bool store_may_block_;
  const ChatEngineOptions options_;
  SessionSerializer serializer_;
  KeyQuotas quotas_;
  UsageRecorder usage_;

  // Request ids for stores that keep none (store::ConversationStore::
  // idempotency() null): in this process only.
  store::MemoryIdempotencyStore local_request_ids_;
  // Reset first by the destructor: its calls start turns of this engine.
  std::unique_ptr<IdempotentTurns> idempotent_;
  // Reset by the destructor once every turn has ended (turns start its
  // work).
  std::unique_ptr<SessionTitler> titler_;

  absl::Mutex mu_;
  int live_turns_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_CHAT_ENGINE_H_
