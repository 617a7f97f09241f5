#ifndef CHAT_SERVER_STORE_STREAM_STORE_H_
#define CHAT_SERVER_STORE_STREAM_STORE_H_

// The answers of streamed turns as they are produced, so that a client that
// lost its connection resumes one on any replica: a row per answer (who it
// belongs to, whether it ended and how, whether someone asked to cancel it)
// and a row per delta, written in batches by the replica that runs it.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/conversation_store.h"

namespace chat::store {

// How an answer ended: `status_code` is an absl::StatusCode (0: it was
// stored, and `done` holds the final event, encoded by the caller).
struct StreamOutcome {
  int status_code = 0;
  std::string status_message;
  std::string done;
};

// One write of the replica running an answer: its deltas numbered
// `first_seq`, `first_seq` + 1, ... (1 for the first delta), and its outcome
// once it ended.
struct StreamAppend {
  SessionKey session;
  std::string answer_id;
  absl::Time started_at;
  int64_t first_seq = 1;
  std::vector<std::string> deltas;
  std::optional<StreamOutcome> outcome;
  // The answer's record lives at least until then.
  absl::Time expires_at;
};

// What AppendStream tells the running replica.
struct StreamControl {
  // CancelStream was asked for this answer (from any replica).
  bool cancel_requested = false;
  // The last time a reader on any replica read it (InfinitePast: never).
  absl::Time reader_seen_at = absl::InfinitePast();
};

// What ReadStream returns.
struct StreamRead {
  std::string answer_id;
  // Deltas after the one asked for, in order; the first is number
  // `after_seq` + 1.
  std::vector<std::string> deltas;
  // Set once the answer ended and every delta is in `deltas`.
  std::optional<StreamOutcome> outcome;
};

// Answers of streamed turns, shared by every replica of one store. Only the
// replica that runs an answer appends to it. Thread-safe; calls block on I/O
// like the ConversationStore they belong to. Infrastructure failures are
// kUnavailable or kInternal.
class StreamStore {
 public:
  virtual ~StreamStore() = default;

  // Creates the answer's record if it has none, appends `append.deltas`
  // (numbers already stored are skipped), records the outcome if set, and
  // moves expires_at to `append.expires_at`, in one transaction. Returns the
  // record's control flags.
  virtual absl::StatusOr<StreamControl> AppendStream(
      const StreamAppend& append) = 0;

  // Reads answer `answer_id` of `session` (empty: the session's most recent
  // answer) from delta `after_seq` + 1 on. `touch`: also records that a
  // reader is attached at that time. kNotFound if there is no such answer, or
  // it expired at `now`.
  virtual absl::StatusOr<StreamRead> ReadStream(
      const SessionKey& session, absl::string_view answer_id, int64_t after_seq,
      absl::Time now, std::optional<absl::Time> touch) = 0;

  // Asks the replica running `session`'s unfinished answers to cancel them.
  // Returns the id of one of them; kNotFound if the session has none running
  // (none, or all ended or expired at `now`).
  virtual absl::StatusOr<std::string> RequestCancel(const SessionKey& session,
                                                    absl::Time now) = 0;

  // Deletes at most `limit` (>= 1) answers that expired at `now`, with their
  // deltas; returns how many.
  virtual absl::StatusOr<int64_t> DeleteExpiredStreams(absl::Time now,
                                                       int limit) = 0;
};

// StreamStore in process memory, for the memory store and as the engine's
// own when a store keeps none. Thread-safe; never blocks on I/O.
class MemoryStreamStore final : public StreamStore {
 public:
  absl::StatusOr<StreamControl> AppendStream(
      const StreamAppend& append) override;
  absl::StatusOr<StreamRead> ReadStream(
      const SessionKey& session, absl::string_view answer_id, int64_t after_seq,
      absl::Time now, std::optional<absl::Time> touch) override;
  absl::StatusOr<std::string> RequestCancel(const SessionKey& session,
                                            absl::Time now) override;
  absl::StatusOr<int64_t> DeleteExpiredStreams(absl::Time now,
                                               int limit) override;

 private:
  struct Answer {
    SessionKey session;
    absl::Time started_at;
    absl::Time expires_at;
    std::vector<std::string> deltas;
    std::optional<StreamOutcome> outcome;
    StreamControl control;
  };

  absl::Mutex mu_;
  std::map<std::string, Answer> answers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_STREAM_STORE_H_
