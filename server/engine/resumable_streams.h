#ifndef CHAT_SERVER_ENGINE_RESUMABLE_STREAMS_H_
#define CHAT_SERVER_ENGINE_RESUMABLE_STREAMS_H_

#include <cstdint>
#include <map>
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
#include "server/engine/chat_engine.h"
#include "server/engine/chat_types.h"
#include "server/store/stream_store.h"

namespace chat {

struct ResumableStreamOptions {
  // How long an answer runs on with no client attached before it is
  // cancelled upstream (--detached_stream_ttl); also how long an ended
  // answer stays resumable.
  absl::Duration detached_ttl = absl::Seconds(60);
  // Deltas are written to the store in batches this often (an answer's end
  // at once); readers of an answer another replica runs poll the store this
  // often.
  absl::Duration flush_interval = absl::Milliseconds(100);
};

// An event id, "<answer id>:<sequence>": deltas are numbered from 1, the
// final event takes the number after the last delta.
std::string StreamEventId(absl::string_view answer_id, int64_t seq);
// Splits an event id; kInvalidArgument if it is not one.
absl::Status ParseStreamEventId(absl::string_view event_id,
                                std::string* answer_id, int64_t* seq);

// The stored form of a turn's result (StreamOutcome::done), and back.
std::string EncodeTurnResult(const ChatTurnResult& result);
absl::StatusOr<ChatTurnResult> DecodeTurnResult(absl::string_view encoded);

// Hears the events of one answer, from its start or from where a client left
// it: OnDelta for each delta in order, then OnEnd exactly once (the answer
// ended, failed, could not be found, or the subscriber was detached: then
// kCancelled). Calls never overlap, may come from any thread (also before
// Start returns), and must not block.
class StreamSubscriber {
 public:
  virtual ~StreamSubscriber() = default;
  // Only for the client that started the turn; see TurnObserver.
  virtual void OnAdmitted(const RateLimitStatus& /*status*/) {}
  virtual void OnDelta(absl::string_view event_id, absl::string_view text) = 0;
  // `event_id` is empty when the answer was not found or the client left.
  virtual void OnEnd(absl::string_view event_id,
                     absl::StatusOr<ChatTurnResult> result) = 0;
};

// One subscriber's hold on an answer.
class StreamAttachment {
 public:
  virtual ~StreamAttachment() = default;
  // The client left: its subscriber gets OnEnd(kCancelled) now unless it had
  // it already, and hears nothing more. The answer runs on (see
  // ResumableStreams). Safe from any thread, more than once.
  virtual void Detach() = 0;
  // The client's deadline passed: it bounded the answer too, so an answer
  // this subscriber started is cancelled (a resume only detaches).
  virtual void Expire() = 0;
};

// Streamed turns whose answer outlives the connection that asked for it. The
// replica running an answer keeps its deltas in memory for its own clients
// and writes them to the store in batches (every flush_interval; an answer's
// end as soon as it ends), so a client that lost its connection resumes on
// any replica: one on this replica attaches to the answer in memory, one on
// another replica reads the store and polls it until the answer ends. A running
// answer with no client attached anywhere for detached_ttl is cancelled
// upstream; CancelStream (a flag in the store that the running replica reads at
// each batch) cancels it from anywhere. A background thread writes the batches,
// polls for remote readers and sweeps expired answers. Thread-safe.
class ResumableStreams {
 public:
  // `engine`, `store` and `pool` must outlive this object.
  ResumableStreams(ChatEngine* engine, store::StreamStore* store,
                   ThreadPool* pool, ResumableStreamOptions options);
  ResumableStreams(const ResumableStreams&) = delete;
  ResumableStreams& operator=(const ResumableStreams&) = delete;
  // Cancels the answers still running and waits for them to end; readers
  // still polling end with kUnavailable.
  ~ResumableStreams();

  // Starts `request` (a streamed turn) as ChatEngine::StartTurn does, with
  // `subscriber` attached. Fails as StartTurn does, and then never calls
  // `subscriber`.
  absl::StatusOr<std::shared_ptr<StreamAttachment>> Start(
      ChatTurnRequest request, StreamSubscriber* subscriber);

  // Attaches `subscriber` to `session`'s answer after event `last_event_id`
  // (empty: the session's latest answer, from its start), on the pool. An
  // unknown or expired answer ends with kNotFound, a malformed id with
  // kInvalidArgument.
  std::shared_ptr<StreamAttachment> Resume(store::SessionKey session,
                                           std::string last_event_id,
                                           StreamSubscriber* subscriber);

  // Stops `session`'s running answer, wherever it runs; `done` gets the
  // outcome (kNotFound if none is running), on the pool.
  void Cancel(store::SessionKey session,
              absl::AnyInvocable<void(absl::Status)> done);

  const ResumableStreamOptions& options() const { return options_; }

 private:
  class Answer;
  class LocalAttachment;
  class RemoteReader;

  void ResumeNow(store::SessionKey session, std::string last_event_id,
                 const std::shared_ptr<RemoteReader>& reader);
  std::shared_ptr<Answer> FindLocal(const store::SessionKey& session,
                                    absl::string_view answer_id);
  void AnswerEnded(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  bool ShouldWake() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || kicked_;
  }
  bool AllEnded() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return running_ == 0 && pending_calls_ == 0;
  }
  // The loop thread: Tick every flush_interval, and in between FlushAnswers
  // of the answers that ended. Both run only there, never at once: an
  // answer's Flush relies on it.
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);
  // Stores what is new of every answer, polls the remote readers, sweeps.
  void Tick() ABSL_LOCKS_EXCLUDED(mu_);
  // Writes what is new of each of `answers` to the store and forgets those
  // whose outcome is stored (a failed write is retried by the next Tick).
  void FlushAnswers(const std::vector<std::shared_ptr<Answer>>& answers,
                    absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  std::string NewAnswerId() ABSL_LOCKS_EXCLUDED(mu_);

  ChatEngine* const engine_;
  store::StreamStore* const store_;
  ThreadPool* const pool_;
  const ResumableStreamOptions options_;

  absl::Mutex mu_;
  // Answers run here whose outcome is not yet in the store.
  std::map<std::string, std::shared_ptr<Answer>> answers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<RemoteReader>> readers_ ABSL_GUARDED_BY(mu_);
  // Answers whose engine turn has not yet ended.
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  // Answers ended since the loop last woke, to store at once.
  std::vector<std::shared_ptr<Answer>> ended_ ABSL_GUARDED_BY(mu_);
  int pending_calls_ ABSL_GUARDED_BY(mu_) = 0;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_sweep_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t id_state_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_RESUMABLE_STREAMS_H_
