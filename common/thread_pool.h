#ifndef CHAT_COMMON_THREAD_POOL_H_
#define CHAT_COMMON_THREAD_POOL_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace chat {

// A fixed pool of threads running queued tasks in FIFO order. Blocking work
// (store I/O) goes here so that gRPC callback threads and the provider's I/O
// thread never wait on a disk or a database. Thread-safe.
class ThreadPool {
 public:
  // Starts `threads` (>= 1) workers.
  explicit ThreadPool(int threads);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  // Runs every task already scheduled, then joins the workers.
  ~ThreadPool();

  // Queues `task`; it runs on one of the workers. Must not be called once
  // the destructor has started.
  void Schedule(std::function<void()> task);

 private:
  void WorkerLoop();
  bool HasWorkOrStopping() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace chat

#endif  // CHAT_COMMON_THREAD_POOL_H_
