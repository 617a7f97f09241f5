#include "server/llm/timer_queue.h"

#include "absl/time/clock.h"

namespace chat::llm {

TimerQueue::TimerQueue() : thread_([this] { Loop(); }) {}

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void TimerQueue::RunAt(absl::Time when, std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  due_.emplace(std::make_pair(when, next_sequence_++), std::move(callback));
}

void TimerQueue::Loop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    if (due_.empty()) {
      if (stopping_) return;
      // Woken by RunAt or the destructor (Await re-checks on every unlock).
      mu_.Await(absl::Condition(
          +[](TimerQueue* q) {
            q->mu_.AssertHeld();  // Await evaluates conditions under mu_.
            return q->stopping_ || !q->due_.empty();
          },
          this));
      continue;
    }
    absl::Time next = due_.begin()->first.first;
    if (!stopping_ && next > absl::Now()) {
      // Wakes early when an earlier timer is added or on shutdown.
      struct Wake {
        TimerQueue* q;
        absl::Time next;
      } wake{this, next};
      mu_.AwaitWithDeadline(absl::Condition(
                                +[](Wake* w) {
                                  w->q->mu_.AssertHeld();
                                  return w->q->stopping_ ||
                                         w->q->due_.begin()->first.first <
                                             w->next;
                                },
                                &wake),
                            next);
      continue;
    }
    auto node = due_.extract(due_.begin());
    mu_.Unlock();
    node.mapped()();
    mu_.Lock();
  }
}

}  // namespace chat::llm
