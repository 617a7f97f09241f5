// ThreadPool: every task runs, one worker runs them in FIFO order, N workers
// run N tasks at once, and the destructor runs what is queued before it
// joins. Strategy: tasks record what they see; concurrency is shown with a
// rendezvous that only N simultaneous tasks can complete (bounded by a
// timeout, so a serialising pool fails instead of hanging).

#include "common/thread_pool.h"

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat {
namespace {

TEST(ThreadPoolTest, RunsEveryTask) {
  constexpr int kTasks = 2000;
  std::atomic<int> sum{0};
  absl::BlockingCounter done(kTasks);
  ThreadPool pool(4);  // Last: joined before what its tasks use goes away.
  for (int i = 1; i <= kTasks; ++i) {
    pool.Schedule([&, i] {
      sum += i;
      done.DecrementCount();
    });
  }
  done.Wait();
  EXPECT_EQ(sum.load(), kTasks * (kTasks + 1) / 2);
}

TEST(ThreadPoolTest, OneWorkerRunsTasksInTheOrderTheyWereScheduled) {
  constexpr int kTasks = 500;
  std::vector<int> order;  // Written by the one worker only.
  {
    ThreadPool pool(1);
    for (int i = 0; i < kTasks; ++i) {
      pool.Schedule([&order, i] { order.push_back(i); });
    }
  }  // The destructor drains and joins: `order` is complete and visible.
  ASSERT_EQ(order.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(order[i], i);
}

TEST(ThreadPoolTest, DestructorRunsQueuedTasksThenJoins) {
  std::vector<int> ran;  // Written by the one worker only.
  absl::Notification gate;
  auto pool = std::make_unique<ThreadPool>(1);
  // The worker is held inside the first task while the rest queue up.
  absl::Notification first_running;
  pool->Schedule([&] {
    first_running.Notify();
    gate.WaitForNotification();
    ran.push_back(0);
  });
  first_running.WaitForNotification();
  for (int i = 1; i <= 10; ++i) pool->Schedule([&ran, i] { ran.push_back(i); });
  std::thread opener([&] { gate.Notify(); });
  pool.reset();  // Must not return before all eleven have run.
  opener.join();
  EXPECT_THAT(ran, ::testing::ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
}

TEST(ThreadPoolTest, NWorkersRunNTasksAtOnce) {
  constexpr int kWorkers = 4;
  absl::Mutex mu;
  int arrived = 0;
  std::atomic<int> met{0};
  absl::BlockingCounter done(kWorkers);
  ThreadPool pool(kWorkers);
  for (int i = 0; i < kWorkers; ++i) {
    pool.Schedule([&] {
      absl::MutexLock lock(&mu);
      ++arrived;
      // Only possible if all kWorkers tasks are running at the same time.
      if (mu.AwaitWithTimeout(
              absl::Condition(
                  +[](int* n) { return *n == kWorkers; }, &arrived),
              absl::Seconds(10))) {
        ++met;
      }
      done.DecrementCount();
    });
  }
  done.Wait();
  EXPECT_EQ(met.load(), kWorkers);
}

TEST(ThreadPoolTest, TasksMayScheduleMoreTasks) {
  absl::BlockingCounter done(100);
  std::function<void(int)> chain;
  ThreadPool pool(2);
  chain = [&](int left) {
    done.DecrementCount();
    if (left > 1) pool.Schedule([&chain, left] { chain(left - 1); });
  };
  pool.Schedule([&] { chain(100); });
  done.Wait();
}

TEST(ThreadPoolTest, ConcurrentSchedulersLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kEach = 500;
  std::atomic<int> ran{0};
  absl::BlockingCounter done(kThreads * kEach);
  ThreadPool pool(3);
  std::vector<std::thread> schedulers;
  for (int t = 0; t < kThreads; ++t) {
    schedulers.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        pool.Schedule([&] {
          ++ran;
          done.DecrementCount();
        });
      }
    });
  }
  for (std::thread& t : schedulers) t.join();
  done.Wait();
  EXPECT_EQ(ran.load(), kThreads * kEach);
}

}  // namespace
}  // namespace chat
