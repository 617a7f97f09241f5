#ifndef CHAT_SERVER_LLM_TIMER_QUEUE_H_
#define CHAT_SERVER_LLM_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace chat::llm {

// Runs callbacks at given times on one thread: thousands of paced streams
// share it instead of sleeping a thread each. Callbacks must be short.
// Thread-safe.
class TimerQueue {
 public:
  TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;
  // Runs the callbacks still due (at once, ignoring their times) so that
  // nobody waits forever for a completion, then joins the thread.
  ~TimerQueue();

  // Runs `callback` at `when` (at once if it is past). Callbacks due at the
  // same time run in the order they were scheduled.
  void RunAt(absl::Time when, std::function<void()> callback);

 private:
  void Loop();

  absl::Mutex mu_;
  std::multimap<std::pair<absl::Time, uint64_t>, std::function<void()>> due_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_TIMER_QUEUE_H_
