#include "server/engine/chat_engine.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "server/engine/context_window.h"
#include "server/engine/engine_metrics.h"

namespace chat {

absl::Status CheckRoomForSession(store::ConversationStore& store,
                                 absl::string_view tenant,
                                 int64_t max_sessions) {
  if (max_sessions <= 0) return absl::OkStatus();
  absl::StatusOr<store::StoreStats> stats = store.GetStats(tenant);
  if (!stats.ok()) return stats.status();
  if (stats->total_sessions >= max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the limit of ", max_sessions,
        " sessions (max_sessions_per_tenant) is reached; delete a session "
        "first"));
  }
  return absl::OkStatus();
}

// One turn's life: queued behind earlier turns of its session, running
// (history loaded, provider streaming), then committing, then done. Every
// path ends in Finish(), which calls the observer's OnComplete once.
//
// The provider's final callback and the commit run on the pool, never on the
// provider's I/O thread, so store I/O never stalls other streams. The start
// (history read, provider started) runs on the pool too when the store may
// block (SQLite, PostgreSQL); with a store that answers from memory
// (MayBlock() false) that hand-off buys nothing but a context switch, so a
// turn whose session is idle starts on the caller's thread, inside
// StartTurn. Turns queued behind a running one start on the pool, from the
// Release of the turn before.
class ChatEngine::Turn final : public TurnHandle,
                               public llm::CompletionSink,
                               public std::enable_shared_from_this<Turn> {
 public:
  // `holds_stream_slot`: StartTurn took one of the key's stream slots for
  // this turn, which gives it back when it ends.
  Turn(ChatEngine* engine, ChatTurnRequest request, TurnObserver* observer,
       bool holds_stream_slot)
      : engine_(engine),
        request_(std::move(request)),
        observer_(observer),
        serializer_key_(SerializerKeyOf(request_)),
        accepted_at_(absl::Now()),
        stream_slot_(holds_stream_slot) {}

  const std::string& serializer_key() const { return serializer_key_; }

  // Runs when every earlier turn of the session is done: on the pool, or
  // inside StartTurn (see the class comment).
  void Run() {
    EngineMetrics::Get().turns_queued.Decrement();
    bool cancelled_while_queued = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_while_queued = state_ == State::kDone;
      if (!cancelled_while_queued) state_ = State::kRunning;
    }
    if (cancelled_while_queued) {
      engine_->serializer_.Release(serializer_key_);
      Ended();
      return;
    }
    StartCompletion();
  }

  void Cancel() override {
    std::shared_ptr<llm::CompletionCall> call;
    bool ended_while_queued = false;
    {
      absl::MutexLock lock(&mu_);
      if (state_ == State::kDone || cancelled_) return;
      cancelled_ = true;
      if (state_ == State::kQueued) {
        // Answer now rather than after the turns ahead of it; Run() later
        // sees kDone and just passes the session on.
        state_ = State::kDone;
        ended_while_queued = true;
      } else {
        call = call_;  // Null while history loads: Run() checks cancelled_.
      }
    }
    if (ended_while_queued) {
      // The slot goes now, not when the turns ahead of it end.
      ReleaseStreamSlot();
      observer_->OnComplete(absl::CancelledError("the call was cancelled"));
    } else if (call != nullptr) {
      call->Cancel();
    }
  }

  // Reads the history and starts the provider; where Run runs, or on the
  // pool for a retried turn.
  void StartCompletion() {
    absl::StatusOr<llm::CompletionRequest> completion = PrepareCompletion();
    if (!completion.ok()) {
      Finish(completion.status());
      return;
    }
    std::shared_ptr<llm::CompletionCall> call =
        engine_->provider_->Start(*std::move(completion), shared_from_this());
    {
      absl::MutexLock lock(&mu_);
      call_ = call;
    }
    if (IsCancelled()) call->Cancel();
  }

  void OnDelta(absl::string_view text) override {
    if (!first_delta_at_.has_value()) {
      first_delta_at_ = absl::Now();
      EngineMetrics::Get().time_to_first_token.Observe(
          absl::ToDoubleSeconds(*first_delta_at_ - accepted_at_));
    }
    reply_.append(text.data(), text.size());
    observer_->OnDelta(text);
  }

  void OnComplete(absl::StatusOr<llm::CompletionResult> result) override {
    if (result.ok() && first_delta_at_.has_value() &&
        result->output_tokens > 0) {
      const double seconds =
          absl::ToDoubleSeconds(absl::Now() - *first_delta_at_);
      if (seconds > 0) {
        EngineMetrics::Get().output_tokens_per_second.Observe(
            static_cast<double>(result->output_tokens) / seconds);
      }
    }
    // On the pool even when the store does not block: measured, committing
    // here (memory store) cost ~40 us more CPU per turn in chat-server and
    // ~30 us in the gateway, because the observer's gRPC Finish then runs on
    // this one I/O thread, answer by answer, and gRPC no longer coalesces
    // the answers of concurrent turns into one write, as it does when they
    // come from pool threads.
    engine_->pool_->Schedule(
        [self = shared_from_this(), result = std::move(result)]() mutable {
          if (!result.ok()) {
            self->Finish(result.status());
          } else {
            self->Commit(*std::move(result));
          }
        });
  }

 private:
  enum class State { kQueued, kRunning, kDone };

  bool IsCancelled() {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

  // Turns of one session queue behind each other; a stateless completion
  // has no session, so its key is its own and it never waits.
  static std::string SerializerKeyOf(const ChatTurnRequest& request) {
    if (!request.stateless) {
      return absl::StrCat(request.tenant, "\n", request.session_id);
    }
    static std::atomic<uint64_t> next_stateless{0};
    // No tenant holds a NUL byte, so this never names a session.
    return absl::StrCat(absl::string_view("\0stateless\n", 11),
                        next_stateless.fetch_add(1));
  }

  // The prompt of a stateless completion: the caller's, as given.
  absl::StatusOr<llm::CompletionRequest> PrepareStateless() {
    llm::CompletionRequest completion;
    completion.system_prompt = request_.system_prompt.value_or("");
    completion.messages = request_.messages;
    completion.model = request_.model.value_or("");
    completion.max_tokens = request_.max_tokens;
    completion.temperature = request_.temperature;
    completion.stop = request_.stop;
    completion.user = request_.user;
    completion.deadline = request_.deadline;
    completion.traceparent = request_.traceparent;
    if (IsCancelled()) return absl::CancelledError("the call was cancelled");
    if (absl::Status admitted = Admit(&completion); !admitted.ok()) {
      return admitted;
    }
    return completion;
  }

  // Reads the session (or the defaults of a new one) and builds the prompt.
  absl::StatusOr<llm::CompletionRequest> PrepareCompletion() {
    if (request_.stateless) return PrepareStateless();
    store::SessionKey key{request_.tenant, request_.session_id};
    store::ConversationStore& store = *engine_->store_;
    llm::CompletionRequest completion;
    absl::StatusOr<store::SessionInfo> session = store.GetSession(key);
    const ChatEngineOptions& options = engine_->options_;
    user_message_ = request_.message;
    if (IsBranch()) {
      if (absl::IsNotFound(session.status())) {
        return absl::NotFoundError(
            absl::StrCat("session ", request_.session_id, " not found"));
      }
      if (!session.ok()) return session.status();
      completion.system_prompt = session->system_prompt;
      if (absl::Status s = PrepareBranch(store, key, &completion); !s.ok()) {
        return s;
      }
    } else if (session.ok()) {
      if (options.max_turns_per_session > 0 &&
          session->turn_count >= options.max_turns_per_session) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "session ", request_.session_id, " has reached the limit of ",
            options.max_turns_per_session,
            " turns (max_turns_per_session); reset or delete it"));
      }
      completion.system_prompt = session->system_prompt;
      expected_turns_ = session->turn_count;
      absl::StatusOr<std::vector<store::StoredMessage>> history =
          store.LoadHistory(key);
      if (!history.ok()) return history.status();
      completion.messages.reserve(history->size() + 1);
      for (store::StoredMessage& m : *history) {
        llm::PromptMessage& prompt = completion.messages.emplace_back();
        prompt.role = std::move(m.role);
        prompt.content = std::move(m.content);
        // The provider's own count, where it reported one, beats bytes/4.
        if (m.tokens > 0) prompt.tokens = m.tokens;
      }
    } else if (absl::IsNotFound(session.status())) {
      if (absl::Status room = CheckRoomForSession(
              store, request_.tenant, options.max_sessions_per_tenant);
          !room.ok()) {
        return room;
      }
      completion.system_prompt =
          request_.system_prompt.value_or(options.default_system_prompt);
      expected_turns_ = 0;
    } else {
      return session.status();
    }
    system_prompt_ = completion.system_prompt;
    completion.messages.push_back({"user", user_message_});
    // Only the prompt is trimmed; the stored history stays whole.
    truncated_turns_ =
        TrimToContextWindow(engine_->options_.max_context_tokens,
                            completion.system_prompt, &completion.messages);
    completion.model = request_.model.value_or("");
    completion.max_tokens = request_.max_tokens;
    completion.temperature = request_.temperature;
    completion.deadline = request_.deadline;
    completion.traceparent = request_.traceparent;
    if (IsCancelled()) return absl::CancelledError("the call was cancelled");
    if (absl::Status admitted = Admit(&completion); !admitted.ok()) {
      return admitted;
    }
    return completion;
  }

  bool IsBranch() const {
    return request_.edit_turn_id.has_value() ||
           request_.regenerate_turn_id.has_value() ||
           request_.after_turn_id.has_value();
  }

  // For an edit or a regeneration: the turns before the one replaced, on
  // its branch, go into the prompt; the replaced turn's parent is where the
  // new version goes, and a regeneration asks its user message again. For
  // a turn after an earlier one: the branch up to that turn goes into the
  // prompt, and the new turn becomes its child.
  absl::Status PrepareBranch(store::ConversationStore& store,
                             const store::SessionKey& key,
                             llm::CompletionRequest* completion) {
    const int target =
        request_.after_turn_id.value_or(request_.edit_turn_id.value_or(
            request_.regenerate_turn_id.value_or(0)));
    absl::StatusOr<std::vector<store::StoredMessage>> branch =
        target > 0 ? store.LoadBranch(key, target) : store.LoadHistory(key);
    if (!branch.ok()) return branch.status();
    if (branch->size() < 2) {
      return absl::FailedPreconditionError(absl::StrCat(
          "session ", request_.session_id, " has no turn to regenerate"));
    }
    if (request_.after_turn_id.has_value()) {
      const int limit = engine_->options_.max_turns_per_session;
      if (limit > 0 && static_cast<int>(branch->size() / 2) >= limit) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "turn ", *request_.after_turn_id, " of session ",
            request_.session_id, " is the limit of ", limit,
            " turns deep (max_turns_per_session); continue from an earlier "
            "turn"));
      }
      parent_turn_id_ = *request_.after_turn_id;
    } else {
      // The branch ends with the replaced turn: its user message, its answer.
      const store::StoredMessage& replaced = (*branch)[branch->size() - 2];
      parent_turn_id_ = replaced.parent_turn_id;
      if (request_.regenerate_turn_id.has_value()) {
        user_message_ = replaced.content;
      }
      branch->resize(branch->size() - 2);
    }
    completion->messages.reserve(branch->size() + 1);
    for (store::StoredMessage& m : *branch) {
      llm::PromptMessage& prompt = completion->messages.emplace_back();
      prompt.role = std::move(m.role);
      prompt.content = std::move(m.content);
      if (m.tokens > 0) prompt.tokens = m.tokens;
    }
    return absl::OkStatus();
  }

  // Charges the turn to its API key's per-minute limits and budget, once
  // (a retry after a conflicting append is the same turn). The reservation
  // is the most the turn can use: its prompt's estimate and its max_tokens,
  // which is then sent to the provider, so the answer cannot outgrow it.
  absl::Status Admit(llm::CompletionRequest* completion) {
    const store::KeyLimits& limits = request_.key_limits;
    if (limits.max_tokens > 0) {
      // The key's ceiling holds for a request that names no max_tokens too.
      completion->max_tokens = static_cast<int>(std::min<int64_t>(
          completion->max_tokens.value_or(engine_->options_.default_max_tokens),
          limits.max_tokens));
    }
    prompt_tokens_ = EstimateTokens(completion->system_prompt);
    for (const llm::PromptMessage& message : completion->messages) {
      prompt_tokens_ +=
          message.tokens.value_or(EstimateTokens(message.content));
    }
    if (admission_.has_value() || request_.key_id.empty() ||
        !KeyQuotas::HasCounters(limits)) {
      return absl::OkStatus();
    }
    const int max_tokens =
        completion->max_tokens.value_or(engine_->options_.default_max_tokens);
    completion->max_tokens = max_tokens;
    const int64_t tokens = prompt_tokens_ + max_tokens;
    absl::StatusOr<QuotaAdmission> admission =
        engine_->quotas_.Admit(request_.key_id, limits, tokens, absl::Now());
    if (!admission.ok()) return admission.status();
    admission_ = *std::move(admission);
    observer_->OnAdmitted(admission_->status);
    return absl::OkStatus();
  }

  // Stores the finished turn, unless the caller has gone.
  void Commit(llm::CompletionResult result) {
    if (IsCancelled()) {
      Finish(absl::CancelledError("the call was cancelled"));
      return;
    }
    if (request_.stateless) {
      // Nothing to store: the answer is the caller's alone.
      ChatTurnResult answer;
      answer.response = std::move(reply_);
      answer.timestamp = absl::Now();
      answer.cost_usd = engine_->CostOf(result.model, result.input_tokens,
                                        result.output_tokens);
      answer.model = std::move(result.model);
      answer.stop_reason = std::move(result.stop_reason);
      answer.input_tokens = result.input_tokens;
      answer.output_tokens = result.output_tokens;
      if (first_delta_at_.has_value()) {
        answer.time_to_first_token = *first_delta_at_ - accepted_at_;
      }
      answer.provider = std::move(result.provider);
      answer.provider_request_id = std::move(result.provider_request_id);
      answer.provider_retries = result.retries;
      Finish(std::move(answer));
      return;
    }
    store::Turn turn;
    turn.user_message = user_message_;
    turn.assistant_message = reply_;
    turn.model = result.model;
    turn.stop_reason = result.stop_reason;
    turn.input_tokens = result.input_tokens;
    turn.output_tokens = result.output_tokens;
    turn.cost_usd = engine_->CostOf(result.model, result.input_tokens,
                                    result.output_tokens);
    turn.created_at = absl::Now();
    const store::SessionKey key{request_.tenant, request_.session_id};
    absl::StatusOr<store::StoredTurn> stored;
    if (IsBranch()) {
      stored = engine_->store_->AppendBranchTurn(key, parent_turn_id_, turn);
      if (absl::IsNotFound(stored.status())) {
        // Reset or deleted while the answer was being generated.
        Finish(absl::AbortedError(
            absl::StrCat("session ", request_.session_id,
                         " changed while this turn ran: its turn ",
                         parent_turn_id_, " is gone; retry")));
        return;
      }
    } else {
      // Only a claim in the conversation store can be written with the turn;
      // IdempotentTurns then keeps its ids there (ChatEngine's constructor).
      // Branch turns take no request id, so they never carry one.
      if (engine_->store_->idempotency() != nullptr) {
        turn.answers = request_.request_claim;
      }
      stored = engine_->store_->AppendTurn(key, expected_turns_, system_prompt_,
                                           turn);
    }
    if (!stored.ok()) {
      if (absl::IsAborted(stored.status()) && request_.retry_on_conflict &&
          !retried_) {
        // Another replica stored a turn meanwhile. Nothing reached this
        // caller yet, so ask again against the fresh history, once.
        retried_ = true;
        // The first answer was generated (and billed) even though it is
        // thrown away: it counts against the key.
        spent_tokens_ += result.input_tokens + result.output_tokens;
        if (std::optional<double> cost = engine_->CostOf(
                result.model, result.input_tokens, result.output_tokens)) {
          spent_cost_usd_ += *cost;
        }
        reply_.clear();
        StartCompletion();
        return;
      }
      if (absl::IsAborted(stored.status())) {
        Finish(absl::AbortedError(absl::StrCat(
            "session ", request_.session_id,
            " is busy: another turn was stored while this one ran; retry")));
      } else if (turn.answers.has_value() &&
                 absl::IsFailedPrecondition(stored.status())) {
        // Its claim went stale and a repeat took the id over; that repeat's
        // turn is the one kept.
        Finish(absl::AbortedError(absl::StrCat(
            "request_id ", turn.answers->key.request_id,
            " was taken over by a repeat while this turn ran too long; "
            "retry with the same request_id for its answer")));
      } else {
        Finish(stored.status());
      }
      return;
    }
    if (stored->turn_count == 1 && !IsBranch()) {
      // Off this turn's path: the title is made after the answer went out.
      // A new version of a first turn (an edit, a regeneration) keeps the
      // session's title: it was made from the first exchange already.
      engine_->titler_->TitleFirstExchange(
          {request_.tenant, request_.session_id}, request_.message, reply_);
    }
    ChatTurnResult answer;
    answer.session_id = request_.session_id;
    answer.response = std::move(reply_);
    answer.timestamp = turn.created_at;
    answer.turn_count = stored->turn_count;
    answer.model = std::move(result.model);
    answer.stop_reason = std::move(result.stop_reason);
    answer.input_tokens = result.input_tokens;
    answer.output_tokens = result.output_tokens;
    answer.cost_usd = turn.cost_usd;
    answer.truncated_turns = truncated_turns_;
    // An idempotent turn's repeats replay the answer kept with its request
    // id, which keeps no turn id: the first answer leaves it out too, so
    // that every repeat is the same.
    if (request_.request_id.empty() && request_.idempotency_key.empty()) {
      answer.turn_id = stored->turn_id;
    }
    if (first_delta_at_.has_value()) {
      answer.time_to_first_token = *first_delta_at_ - accepted_at_;
    }
    answer.provider = std::move(result.provider);
    answer.provider_request_id = std::move(result.provider_request_id);
    answer.provider_retries = result.retries;
    answer.answer_stored = turn.answers.has_value();
    Finish(std::move(answer));
  }

  // Ends a turn that was running: tells the observer, then lets the
  // session's next turn start.
  void Finish(absl::StatusOr<ChatTurnResult> result) {
    {
      absl::MutexLock lock(&mu_);
      state_ = State::kDone;
    }
    // What the turn cost at the provider: its reported usage, or, for a
    // turn that ended after the model had started answering (cancelled, cut
    // off, failed), the prompt and the reply so far, estimated. A provider
    // that failed before any output billed nothing.
    int64_t input_tokens = 0;
    int64_t output_tokens = 0;
    if (result.ok()) {
      input_tokens = result->input_tokens;
      output_tokens = result->output_tokens;
      CounterFamily& tokens = EngineMetrics::Get().tokens;
      tokens.WithLabels({"input", result->model, request_.tenant})
          .Increment(static_cast<double>(result->input_tokens));
      tokens.WithLabels({"output", result->model, request_.tenant})
          .Increment(static_cast<double>(result->output_tokens));
      if (result->cost_usd.has_value()) {
        EngineMetrics::Get()
            .cost.WithLabels({request_.tenant})
            .Increment(*result->cost_usd);
      }
    } else if (!reply_.empty()) {
      input_tokens = prompt_tokens_;
      output_tokens = EstimateTokens(reply_);
    }
    const int64_t used_tokens = spent_tokens_ + input_tokens + output_tokens;
    if (result.ok() || used_tokens > 0) {
      // Only answers priced by the model they name add to the cost; a turn
      // that ended early has no reported model, so its estimate adds none.
      const double cost_usd =
          spent_cost_usd_ + (result.ok() ? result->cost_usd.value_or(0) : 0);
      engine_->usage_.Record(request_.tenant, request_.key_id,
                             result.ok() ? result->timestamp : absl::Now(),
                             input_tokens, output_tokens + spent_tokens_,
                             cost_usd);
    }
    if (admission_.has_value()) {
      // Before OnComplete, so a caller that saw the answer sees the
      // counters that include it.
      if (absl::Status settled =
              engine_->quotas_.Settle(*admission_, used_tokens);
          !settled.ok()) {
        Log(LogSeverity::kWarning,
            absl::StrCat("token counters of key ", request_.key_id,
                         " not settled: ", settled.ToString()),
            LogFields().Add("traceparent", request_.traceparent));
      }
    }
    // Before OnComplete too: a client that saw its stream end may start
    // the next one at once.
    ReleaseStreamSlot();
    observer_->OnComplete(std::move(result));
    engine_->serializer_.Release(serializer_key_);
    Ended();  // The last use of engine_.
  }

  void ReleaseStreamSlot() {
    bool held;
    {
      absl::MutexLock lock(&mu_);
      held = stream_slot_;
      stream_slot_ = false;
    }
    if (held) engine_->quotas_.ReleaseStream(request_.key_id);
  }

  // Gives back what the turn held from the moment StartTurn accepted it.
  void Ended() {
    ReleaseStreamSlot();
    engine_->TurnEnded();
  }

  ChatEngine* const engine_;
  const ChatTurnRequest request_;
  TurnObserver* const observer_;
  const std::string serializer_key_;
  // When StartTurn accepted the turn: time to first token counts from here,
  // queueing included, as the caller waits through it.
  const absl::Time accepted_at_;

  // Written by Run() before the provider starts, read by Commit() after it
  // ends: ordered by the provider's callbacks, so unguarded.
  int expected_turns_ = 0;
  int truncated_turns_ = 0;
  std::string system_prompt_;
  // The user message stored with the turn: the request's, or for a
  // regeneration the replaced turn's.
  std::string user_message_;
  // For an edit or a regeneration: the parent of the turn replaced.
  int parent_turn_id_ = 0;
  // Appended only by OnDelta, whose calls never overlap.
  std::string reply_;
  // Set by the first OnDelta (a retried turn keeps its first one); read by
  // Commit, after the provider's end.
  std::optional<absl::Time> first_delta_at_;
  // A conflicting append was already retried once.
  bool retried_ = false;
  // The prompt's estimated tokens, and the tokens of answers generated and
  // then thrown away (a retried conflicting append).
  int64_t prompt_tokens_ = 0;
  int64_t spent_tokens_ = 0;
  // The cost of those thrown-away answers, where their model has a price.
  double spent_cost_usd_ = 0;
  // Set once the key's counters were charged; settled by Finish.
  std::optional<QuotaAdmission> admission_;

  absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kQueued;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<llm::CompletionCall> call_ ABSL_GUARDED_BY(mu_);
  // Holds one of the key's stream slots until the turn ends: released once,
  // by whichever of Cancel (while queued), Finish or Run gets there first.
  bool stream_slot_ ABSL_GUARDED_BY(mu_);
};

ChatEngine::ChatEngine(store::ConversationStore* store,
                       llm::LlmProvider* provider, ThreadPool* pool,
                       ChatEngineOptions options)
    : store_(store),
      provider_(provider),
      pool_(pool),
      store_may_block_(store->MayBlock()),
      options_(std::move(options)),
      serializer_(pool),
      quotas_(&store->quotas()),
      usage_(&store->quotas(), &quotas_, options_.usage_flush_interval),
      idempotent_(std::make_unique<IdempotentTurns>(
          store->idempotency() != nullptr ? store->idempotency()
                                          : &local_request_ids_,
          pool, options_.idempotency,
          [this](ChatTurnRequest request, TurnObserver* observer) {
            return StartAcceptedTurn(std::move(request), observer);
          })),
      titler_(std::make_unique<SessionTitler>(store, provider, pool,
                                              options_.titles)) {}

ChatEngine::~ChatEngine() {
  idempotent_.reset();
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](int* live_turns) { return *live_turns == 0; }, &live_turns_));
  }
  titler_.reset();
}

std::optional<double> ChatEngine::CostOf(absl::string_view model,
                                         int64_t input_tokens,
                                         int64_t output_tokens) const {
  if (options_.prices == nullptr) return std::nullopt;
  return options_.prices->Cost(model, input_tokens, output_tokens);
}

void ChatEngine::TurnEnded() {
  absl::MutexLock lock(&mu_);
  --live_turns_;
}

absl::StatusOr<std::shared_ptr<TurnHandle>> ChatEngine::StartTurn(
    ChatTurnRequest request, TurnObserver* observer) {
  if (absl::Status valid = ValidateChatTurnRequest(request, options_.limits);
      !valid.ok()) {
    return valid;
  }
  if (absl::Status allowed = KeyQuotas::CheckRequest(request); !allowed.ok()) {
    return allowed;
  }
  if (request.stateless) {
    // Request ids name turns of sessions; a stateless call has none.
    request.request_id.clear();
    request.idempotency_key.clear();
  }
  absl::StatusOr<std::string> request_id = EffectiveRequestId(request);
  if (!request_id.ok()) return request_id.status();
  if (!request_id->empty()) {
    return idempotent_->Start(std::move(request), *std::move(request_id),
                              observer);
  }
  return StartAcceptedTurn(std::move(request), observer);
}

absl::StatusOr<std::shared_ptr<TurnHandle>> ChatEngine::StartAcceptedTurn(
    ChatTurnRequest request, TurnObserver* observer) {
  const bool takes_stream_slot = request.streamed && !request.key_id.empty() &&
                                 request.key_limits.max_streams > 0;
  if (takes_stream_slot) {
    if (absl::Status slot = quotas_.AcquireStream(
            request.key_id, request.key_limits.max_streams);
        !slot.ok()) {
      return slot;
    }
  }
  {
    absl::MutexLock lock(&mu_);
    ++live_turns_;
  }
  auto turn = std::make_shared<Turn>(this, std::move(request), observer,
                                     takes_stream_slot);
  EngineMetrics::Get().turns_queued.Increment();
  if (store_may_block_) {
    serializer_.Enqueue(turn->serializer_key(), [turn] { turn->Run(); });
  } else {
    // May end the turn (a refusal, a limit) and call the observer before
    // this returns.
    serializer_.RunOrEnqueue(turn->serializer_key(), [turn] { turn->Run(); });
  }
  return turn;
}

absl::StatusOr<RateLimitStatus> ChatEngine::ChargeSessionWrite(
    const std::string& key_id, const store::KeyLimits& limits) {
  if (key_id.empty()) return RateLimitStatus{};
  return quotas_.ChargeRequest(key_id, limits, absl::Now());
}

}  // namespace chat
