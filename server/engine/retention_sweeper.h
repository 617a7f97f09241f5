#ifndef CHAT_SERVER_ENGINE_RETENTION_SWEEPER_H_
#define CHAT_SERVER_ENGINE_RETENTION_SWEEPER_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/conversation_store.h"

namespace chat {

// Deletes sessions idle for longer than a time-to-live, in the background:
// one thread that wakes every `interval` and asks the store to delete what
// has expired. Several replicas may sweep one database; the deletes are
// idempotent. Thread-safe.
class RetentionSweeper {
 public:
  // Starts sweeping `store` (which must outlive the sweeper) for sessions
  // idle longer than `ttl` (> 0).
  RetentionSweeper(store::ConversationStore* store, absl::Duration ttl,
                   absl::Duration interval);
  RetentionSweeper(const RetentionSweeper&) = delete;
  RetentionSweeper& operator=(const RetentionSweeper&) = delete;
  // Stops the thread, waiting for a sweep in progress.
  ~RetentionSweeper();

  // How often to sweep for a given TTL: a tenth of it, between 1 s and 1 min,
  // so a session outlives its TTL by at most about 10%.
  static absl::Duration IntervalFor(absl::Duration ttl);

 private:
  void Loop();

  store::ConversationStore* const store_;
  const absl::Duration ttl_;
  const absl::Duration interval_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_RETENTION_SWEEPER_H_
