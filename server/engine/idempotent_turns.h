#ifndef CHAT_SERVER_ENGINE_IDEMPOTENT_TURNS_H_
#define CHAT_SERVER_ENGINE_IDEMPOTENT_TURNS_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/thread_pool.h"
#include "server/engine/chat_types.h"
#include "server/store/idempotency_store.h"

namespace chat {

class TurnHandle;
class TurnObserver;

struct IdempotencyOptions {
  // How long a request id is remembered after its first use
  // (--idempotency_ttl).
  absl::Duration ttl = absl::Hours(24);
  // An unanswered claim older than this is presumed abandoned (its replica
  // died mid-turn) and a repeat takes it over and runs the turn.
  absl::Duration claim_timeout = absl::Minutes(10);
  // How often a repeat waiting for a turn another replica runs looks again;
  // a turn run in this process wakes its repeats as soon as it ends.
  absl::Duration poll_interval = absl::Milliseconds(50);
  // Expired ids deleted per statement by the sweep.
  int sweep_batch = 1000;
};

// The reason (ErrorReasonOf) of the kFailedPrecondition that refuses a
// request id reused for another session or message: the gateway answers it
// 409, where FAILED_PRECONDITION is otherwise 400.
inline constexpr absl::string_view kRequestIdReusedReason =
    "IDEMPOTENCY_KEY_REUSED";

// The request id a turn carries: `request_id`, else `idempotency_key` (the
// Idempotency-Key header); "" for none. kInvalidArgument if both are set and
// differ, or the id is not 1..128 bytes of [A-Za-z0-9._:@-].
absl::StatusOr<std::string> EffectiveRequestId(const ChatTurnRequest& request);

// What identifies a request under its id: its session and message, hashed
// (SHA-256, hex). A repeat with another fingerprint is refused.
std::string RequestFingerprint(const ChatTurnRequest& request);

// Runs turns that carry a request id at most once per (tenant, id) while the
// id is remembered, across every replica of one store. The first request
// claims the id in the store and runs the turn; its answer is stored in the
// id's record with the turn, in the turn's transaction (store::Turn::answers).
// A repeat of an answered id gets the stored answer (one OnDelta with the whole
// text, then OnComplete) without a provider call; a repeat of a running one
// waits for it, then does the same; a repeat with another session or message
// gets kFailedPrecondition with reason kRequestIdReusedReason. A turn that
// fails gives its id back, so a repeat runs it again. A background thread wakes
// waiting repeats and sweeps expired ids. Thread-safe.
class IdempotentTurns {
 public:
  // Starts a turn that has been validated (ChatEngine's accepted path).
  using StartFn =
      absl::AnyInvocable<absl::StatusOr<std::shared_ptr<TurnHandle>>(
          ChatTurnRequest, TurnObserver*)>;

  // `store` and `pool` must outlive this object; `start` runs the turn.
  IdempotentTurns(store::IdempotencyStore* store, ThreadPool* pool,
                  IdempotencyOptions options, StartFn start);
  IdempotentTurns(const IdempotentTurns&) = delete;
  IdempotentTurns& operator=(const IdempotentTurns&) = delete;
  // Stops the background thread, ends repeats still waiting with
  // kUnavailable, and waits until every call started has ended.
  ~IdempotentTurns();

  // Handles `request`, whose id is `request_id` (non-empty), on the pool;
  // `observer` hears the outcome as from ChatEngine::StartTurn, never before
  // Start returns.
  std::shared_ptr<TurnHandle> Start(ChatTurnRequest request,
                                    std::string request_id,
                                    TurnObserver* observer);

 private:
  class Call;

  void Wait(std::shared_ptr<Call> call);
  // A turn of this process ended: its repeats look again now.
  void Kick();
  void CallEnded();
  void Loop();
  void Sweep();
  bool ShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || kicked_ || rearm_;
  }

  store::IdempotencyStore* const store_;
  ThreadPool* const pool_;
  const IdempotencyOptions options_;
  StartFn start_;

  absl::Mutex mu_;
  // Repeats waiting for a running turn; the thread hands them to the pool
  // when kicked or every poll_interval.
  std::vector<std::shared_ptr<Call>> waiters_ ABSL_GUARDED_BY(mu_);
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  // A repeat started waiting: the loop sets its next wake-up again.
  bool rearm_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int live_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_IDEMPOTENT_TURNS_H_
