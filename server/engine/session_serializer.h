#ifndef CHAT_SERVER_ENGINE_SESSION_SERIALIZER_H_
#define CHAT_SERVER_ENGINE_SESSION_SERIALIZER_H_

#include <deque>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/thread_pool.h"

namespace chat {

// Runs the turns of one session one after another, in arrival order, without
// parking a thread per waiting turn: a waiting turn is a queued closure.
// Sessions are independent. Memory is proportional to the sessions that have
// work queued or running, not to the sessions that exist. Thread-safe.
class SessionSerializer {
 public:
  // Tasks run on `pool`, which must outlive this object.
  explicit SessionSerializer(ThreadPool* pool) : pool_(pool) {}
  SessionSerializer(const SessionSerializer&) = delete;
  SessionSerializer& operator=(const SessionSerializer&) = delete;

  // Queues `task` behind every task queued earlier for `key`. It runs on the
  // pool once all of those have called Release(key). Every task that runs
  // must eventually call Release(key) exactly once, from any thread.
  void Enqueue(const std::string& key, std::function<void()> task);

  // Like Enqueue, but when no task for `key` is running or queued, runs
  // `task` on the calling thread before returning rather than on the pool:
  // one hand-off fewer, for tasks that do not block.
  void RunOrEnqueue(const std::string& key, std::function<void()> task);

  // Marks the running task for `key` finished and schedules the next one.
  void Release(const std::string& key);

  // Sessions with a running or queued task (for tests and stats).
  int ActiveSessions() const;

 private:
  ThreadPool* const pool_;
  mutable absl::Mutex mu_;
  // Per key: the tasks waiting behind the running one. A key is present
  // exactly while a task for it is running.
  absl::flat_hash_map<std::string, std::deque<std::function<void()>>> waiting_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_SESSION_SERIALIZER_H_
