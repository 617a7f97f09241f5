#include "server/engine/idempotent_turns.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "server/engine/chat_engine.h"
#include "server/engine/error_reason.h"
#include "server/engine/retention_sweeper.h"
#include "server/engine/validation.h"

namespace chat {
namespace {

// Statements per sweep at most, so one sweep ends even if ids expire faster
// than it deletes them; the next sweep goes on.
constexpr int kMaxSweepBatches = 100;

Counter& ReplaysCounter() {
  static Counter& counter = MetricsRegistry::Default().AddCounter(
      "chatd_idempotent_replays_total",
      "Repeats of an idempotent turn (same request_id) answered with the "
      "stored answer, without asking the provider.");
  return counter;
}

// A token unique to one claim: 128 random bits, hex.
std::string NewOwnerToken() {
  std::random_device random;
  std::string bytes(16, '\0');
  for (char& c : bytes) c = static_cast<char>(random() & 0xff);
  return absl::BytesToHexString(bytes);
}

ChatTurnResult ResultOf(const store::IdempotentAnswer& answer) {
  ChatTurnResult result;
  result.session_id = answer.session_id;
  result.response = answer.response;
  result.timestamp = answer.timestamp;
  result.turn_count = answer.turn_count;
  result.model = answer.model;
  result.stop_reason = answer.stop_reason;
  result.input_tokens = answer.input_tokens;
  result.output_tokens = answer.output_tokens;
  result.cost_usd = answer.cost_usd;
  result.replayed = true;
  return result;
}

store::IdempotentAnswer AnswerOf(const ChatTurnResult& result) {
  store::IdempotentAnswer answer;
  answer.session_id = result.session_id;
  answer.response = result.response;
  answer.timestamp = result.timestamp;
  answer.turn_count = result.turn_count;
  answer.model = result.model;
  answer.stop_reason = result.stop_reason;
  answer.input_tokens = result.input_tokens;
  answer.output_tokens = result.output_tokens;
  answer.cost_usd = result.cost_usd;
  return answer;
}

}  // namespace

absl::StatusOr<std::string> EffectiveRequestId(const ChatTurnRequest& request) {
  if (!request.request_id.empty() && !request.idempotency_key.empty() &&
      request.request_id != request.idempotency_key) {
    return absl::InvalidArgumentError(
        "request_id and the Idempotency-Key header differ; send one, or the "
        "same id in both");
  }
  std::string id =
      request.request_id.empty() ? request.idempotency_key : request.request_id;
  if (id.empty()) return id;
  // The same rule as session ids; the message names the field.
  if (absl::Status valid = ValidateSessionId(id); !valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id (or Idempotency-Key) must be 1..128 bytes of "
                     "[A-Za-z0-9._:@-]: ",
                     valid.message()));
  }
  return id;
}

std::string RequestFingerprint(const ChatTurnRequest& request) {
  // Length-prefixed, so no two (session, message) pairs hash the same text.
  const std::string text =
      absl::StrCat(request.session_id.size(), ":", request.session_id,
                   request.message.size(), ":", request.message);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), length));
}

// One request with an id: claims it, then runs the turn (as the inner turn's
// observer), replays a stored answer, or waits for the turn that holds the
// id. Attempt() runs on the pool, again after each wait. Ends exactly once,
// in End().
class IdempotentTurns::Call final : public TurnHandle,
                                    public TurnObserver,
                                    public std::enable_shared_from_this<Call> {
 public:
  Call(IdempotentTurns* turns, ChatTurnRequest request, std::string request_id,
       TurnObserver* observer)
      : turns_(turns),
        request_(std::move(request)),
        key_{request_.tenant, std::move(request_id)},
        fingerprint_(RequestFingerprint(request_)),
        owner_(NewOwnerToken()),
        observer_(observer) {}

  void Attempt() {
    if (IsCancelled()) {
      End(absl::CancelledError("the call was cancelled"));
      return;
    }
    const absl::Time now = absl::Now();
    if (now >= request_.deadline) {
      End(absl::DeadlineExceededError(absl::StrCat(
          "the deadline passed while waiting for the turn of request_id ",
          key_.request_id, " to end")));
      return;
    }
    const IdempotencyOptions& options = turns_->options_;
    absl::StatusOr<store::ClaimResult> claim =
        turns_->store_->Claim(key_, fingerprint_, owner_, now,
                              now + options.ttl, now - options.claim_timeout);
    if (!claim.ok()) {
      End(claim.status());
      return;
    }
    if (claim->claimed) {
      RunTurn();
      return;
    }
    const store::RequestRecord& record = claim->existing;
    if (record.fingerprint != fingerprint_) {
      End(WithErrorReason(
          absl::FailedPreconditionError(absl::StrCat(
              "request_id ", key_.request_id,
              " was already used for another request (a different message or "
              "session); use a new request_id")),
          kRequestIdReusedReason));
      return;
    }
    if (record.answer.has_value()) {
      ReplaysCounter().Increment();
      ChatTurnResult result = ResultOf(*record.answer);
      if (!result.response.empty()) observer_->OnDelta(result.response);
      End(std::move(result));
      return;
    }
    turns_->Wait(shared_from_this());
  }

  void Cancel() override {
    std::shared_ptr<TurnHandle> inner;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      inner = inner_;
    }
    if (inner != nullptr) inner->Cancel();
  }

  void OnAdmitted(const RateLimitStatus& status) override {
    observer_->OnAdmitted(status);
  }
  void OnDelta(absl::string_view text) override { observer_->OnDelta(text); }

  // The inner turn ended (on the pool, or inside start_ with a store that
  // does not block).
  void OnComplete(absl::StatusOr<ChatTurnResult> result) override {
    if (!result.ok()) {
      if (absl::Status released = turns_->store_->Release(key_, owner_);
          !released.ok()) {
        LogWarning("request_id ", key_.request_id,
                   " not released: ", released.ToString());
      }
    } else if (!result->answer_stored) {
      // Not written with the turn (store::Turn::answers): a store that keeps
      // no ids, so the engine's own records get it, before the caller hears
      // the answer, so a retry after it finds it.
      absl::StatusOr<bool> stored =
          turns_->store_->Complete(key_, owner_, AnswerOf(*result));
      if (!stored.ok() || !*stored) {
        LogWarning("answer of request_id ", key_.request_id, " not stored: ",
                   stored.ok() ? "its claim was taken over"
                               : stored.status().ToString(),
                   "; a repeat may run the turn again once the claim is "
                   "stale");
      }
    }
    turns_->Kick();
    std::shared_ptr<Call> keep;
    {
      absl::MutexLock lock(&mu_);
      keep = std::move(self_);
    }
    End(std::move(result));
  }

  // Answers the caller; the first call wins.
  void End(absl::StatusOr<ChatTurnResult> result) {
    {
      absl::MutexLock lock(&mu_);
      if (ended_) return;
      ended_ = true;
    }
    observer_->OnComplete(std::move(result));
    turns_->CallEnded();  // The last use of turns_.
  }

 private:
  bool IsCancelled() {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }

  void RunTurn() {
    {
      absl::MutexLock lock(&mu_);
      // The inner turn holds `this` as its observer until its OnComplete.
      self_ = shared_from_this();
    }
    ChatTurnRequest request = request_;
    // The store writes the answer with the turn, under this claim.
    request.request_claim = store::RequestClaim{key_, owner_};
    absl::StatusOr<std::shared_ptr<TurnHandle>> handle =
        turns_->start_(std::move(request), this);
    if (!handle.ok()) {
      OnComplete(handle.status());
      return;
    }
    bool cancel = false;
    {
      absl::MutexLock lock(&mu_);
      inner_ = *handle;
      cancel = cancelled_;
    }
    if (cancel) (*handle)->Cancel();
  }

  IdempotentTurns* const turns_;
  const ChatTurnRequest request_;
  const store::RequestKey key_;
  const std::string fingerprint_;
  const std::string owner_;
  TurnObserver* const observer_;

  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  std::shared_ptr<TurnHandle> inner_ ABSL_GUARDED_BY(mu_);
  // Set while the inner turn runs.
  std::shared_ptr<Call> self_ ABSL_GUARDED_BY(mu_);
};

IdempotentTurns::IdempotentTurns(store::IdempotencyStore* store,
                                 ThreadPool* pool, IdempotencyOptions options,
                                 StartFn start)
    : store_(store),
      pool_(pool),
      options_(options),
      start_(std::move(start)),
      thread_([this] { Loop(); }) {}

IdempotentTurns::~IdempotentTurns() {
  std::vector<std::shared_ptr<Call>> waiting;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  {
    absl::MutexLock lock(&mu_);
    waiting = std::exchange(waiters_, {});
  }
  for (const std::shared_ptr<Call>& call : waiting) {
    call->End(absl::UnavailableError(
        "the server is shutting down; retry with the same request_id"));
  }
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* live) { return *live == 0; }, &live_calls_));
}

std::shared_ptr<TurnHandle> IdempotentTurns::Start(ChatTurnRequest request,
                                                   std::string request_id,
                                                   TurnObserver* observer) {
  {
    absl::MutexLock lock(&mu_);
    ++live_calls_;
  }
  auto call = std::make_shared<Call>(this, std::move(request),
                                     std::move(request_id), observer);
  pool_->Schedule([call] { call->Attempt(); });
  return call;
}

void IdempotentTurns::Wait(std::shared_ptr<Call> call) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      waiters_.push_back(std::move(call));
      rearm_ = true;  // The loop may be asleep until the next sweep.
      return;
    }
  }
  call->End(absl::UnavailableError(
      "the server is shutting down; retry with the same request_id"));
}

void IdempotentTurns::Kick() {
  absl::MutexLock lock(&mu_);
  kicked_ = true;
}

void IdempotentTurns::CallEnded() {
  absl::MutexLock lock(&mu_);
  --live_calls_;
}

void IdempotentTurns::Loop() {
  const absl::Duration sweep_interval =
      RetentionSweeper::IntervalFor(options_.ttl);
  absl::Time next_sweep = absl::Now() + sweep_interval;
  mu_.Lock();
  while (!stopping_) {
    absl::Time wake = next_sweep;
    if (!waiters_.empty()) {
      wake = std::min(wake, absl::Now() + options_.poll_interval);
    }
    rearm_ = false;
    mu_.AwaitWithDeadline(absl::Condition(this, &IdempotentTurns::ShouldWake),
                          wake);
    if (stopping_) break;
    // A new waiter only: sleep again, until its first poll.
    if (rearm_ && !kicked_ && absl::Now() < wake) continue;
    kicked_ = false;
    std::vector<std::shared_ptr<Call>> ready = std::exchange(waiters_, {});
    mu_.Unlock();
    for (std::shared_ptr<Call>& call : ready) {
      pool_->Schedule([call = std::move(call)] { call->Attempt(); });
    }
    if (absl::Now() >= next_sweep) {
      Sweep();
      next_sweep = absl::Now() + sweep_interval;
    }
    mu_.Lock();
  }
  mu_.Unlock();
}

void IdempotentTurns::Sweep() {
  int64_t total = 0;
  for (int batch = 0; batch < kMaxSweepBatches; ++batch) {
    absl::StatusOr<int64_t> deleted =
        store_->DeleteExpired(absl::Now(), options_.sweep_batch);
    if (!deleted.ok()) {
      LogWarning("request id sweep failed: ", deleted.status().ToString());
      break;
    }
    total += *deleted;
    if (*deleted < options_.sweep_batch) break;
  }
  if (total > 0) LogInfo("request id sweep deleted ", total, " expired id(s)");
}

}  // namespace chat
