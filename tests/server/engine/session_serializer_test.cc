// SessionSerializer: one session's tasks run one at a time in arrival order,
// different sessions run at once, and under contention no task is lost or
// run twice. Strategy: tasks record what they see and release their session
// themselves (or when the test says); "did not run yet" is checked at a
// barrier -- a task scheduled on the one-worker pool behind the point where
// the waiting task would have been scheduled.

#include "server/engine/session_serializer.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat {
namespace {

// Waits until the pool has run everything scheduled on it so far (the pool
// must have one worker, so it runs tasks in order).
void DrainOneWorkerPool(ThreadPool& pool) {
  absl::Notification drained;
  pool.Schedule([&] { drained.Notify(); });
  drained.WaitForNotification();
}

TEST(SessionSerializerTest, ATaskWaitsUntilTheOneBeforeItIsReleased) {
  std::atomic<bool> second_ran{false};
  absl::Notification second_done;
  ThreadPool pool(1);
  SessionSerializer serializer(&pool);
  EXPECT_EQ(serializer.ActiveSessions(), 0);
  serializer.Enqueue("a", [] {});  // Runs, and keeps "a" until Release.
  serializer.Enqueue("a", [&] {
    second_ran = true;
    second_done.Notify();
  });
  DrainOneWorkerPool(pool);
  EXPECT_FALSE(second_ran.load())
      << "ran while the first task held the session";
  EXPECT_EQ(serializer.ActiveSessions(), 1);

  serializer.Release("a");
  ASSERT_TRUE(second_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  serializer.Release("a");
  EXPECT_EQ(serializer.ActiveSessions(), 0);
}

TEST(SessionSerializerTest, RunOrEnqueueRunsAnIdleSessionsTaskInPlace) {
  ThreadPool pool(1);
  SessionSerializer serializer(&pool);
  std::thread::id ran_on;
  serializer.RunOrEnqueue("a", [&] { ran_on = std::this_thread::get_id(); });
  // Ran before RunOrEnqueue returned, on this thread, and holds "a".
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(serializer.ActiveSessions(), 1);
  serializer.Release("a");
  EXPECT_EQ(serializer.ActiveSessions(), 0);
}

TEST(SessionSerializerTest, RunOrEnqueueWaitsBehindARunningTask) {
  std::atomic<bool> second_ran{false};
  absl::Notification second_done;
  std::thread::id second_ran_on;
  ThreadPool pool(1);
  SessionSerializer serializer(&pool);
  serializer.RunOrEnqueue("a", [] {});  // Keeps "a" until Release.
  serializer.RunOrEnqueue("a", [&] {
    second_ran_on = std::this_thread::get_id();
    second_ran = true;
    second_done.Notify();
  });
  DrainOneWorkerPool(pool);
  EXPECT_FALSE(second_ran.load())
      << "ran while the first task held the session";
  // Another session is not held up by "a".
  bool other_ran = false;
  serializer.RunOrEnqueue("b", [&] { other_ran = true; });
  EXPECT_TRUE(other_ran);
  serializer.Release("b");

  serializer.Release("a");  // The waiting task goes to the pool.
  ASSERT_TRUE(second_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_NE(second_ran_on, std::this_thread::get_id());
  serializer.Release("a");
  EXPECT_EQ(serializer.ActiveSessions(), 0);
}

TEST(SessionSerializerTest, OneSessionsTasksRunInArrivalOrder) {
  constexpr int kTasks = 200;
  absl::Mutex mu;
  std::vector<int> order;
  int running = 0;
  bool overlapped = false;
  absl::BlockingCounter done(kTasks);
  ThreadPool pool(4);  // Several workers: order must come from the serializer.
  SessionSerializer serializer(&pool);
  for (int i = 0; i < kTasks; ++i) {
    serializer.Enqueue("s", [&, i] {
      {
        absl::MutexLock lock(&mu);
        if (++running > 1) overlapped = true;
        order.push_back(i);
      }
      {
        absl::MutexLock lock(&mu);
        --running;
      }
      serializer.Release("s");
      done.DecrementCount();
    });
  }
  done.Wait();
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(overlapped);
  ASSERT_EQ(order.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(order[i], i);
}

TEST(SessionSerializerTest, DifferentSessionsRunAtTheSameTime) {
  absl::Notification b_running;
  std::atomic<bool> a_saw_b{false};
  absl::BlockingCounter done(2);
  ThreadPool pool(2);
  SessionSerializer serializer(&pool);
  // "a" holds its session until "b" runs: only possible if "b" does not
  // wait for "a" (bounded, so a serialising implementation fails, not hangs).
  serializer.Enqueue("a", [&] {
    a_saw_b = b_running.WaitForNotificationWithTimeout(absl::Seconds(10));
    serializer.Release("a");
    done.DecrementCount();
  });
  serializer.Enqueue("b", [&] {
    b_running.Notify();
    serializer.Release("b");
    done.DecrementCount();
  });
  done.Wait();
  EXPECT_TRUE(a_saw_b.load());
  EXPECT_EQ(serializer.ActiveSessions(), 0);
}

TEST(SessionSerializerTest, ATaskMayBeReleasedFromAnotherThread) {
  absl::Notification first_running, second_done;
  ThreadPool pool(2);
  SessionSerializer serializer(&pool);
  serializer.Enqueue("a", [&] { first_running.Notify(); });
  serializer.Enqueue("a", [&] {
    // Released before the notification: once the test sees it, nothing
    // touches the serializer any more and it may be destroyed.
    serializer.Release("a");
    second_done.Notify();
  });
  first_running.WaitForNotification();
  std::thread([&] { serializer.Release("a"); }).join();
  ASSERT_TRUE(second_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(SessionSerializerTest, NoTaskIsLostOrRunTwiceUnderContention) {
  constexpr int kThreads = 6;
  constexpr int kEach = 300;
  constexpr int kSessions = 5;
  absl::Mutex mu;
  std::vector<int> runs(kThreads * kEach, 0);
  std::vector<int> running(kSessions, 0);
  std::vector<std::vector<int>> seen(kSessions *
                                     kThreads);  // Per session, per thread.
  bool overlapped = false;
  absl::BlockingCounter done(kThreads * kEach);
  ThreadPool pool(4);
  SessionSerializer serializer(&pool);
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const int session = (t + i) % kSessions;
        const std::string key = absl::StrCat("session-", session);
        const int id = t * kEach + i;
        serializer.Enqueue(key, [&, session, key, id, t, i] {
          {
            absl::MutexLock lock(&mu);
            if (++running[session] > 1) overlapped = true;
            ++runs[id];
            seen[session * kThreads + t].push_back(i);
            --running[session];
          }
          serializer.Release(key);
          done.DecrementCount();
        });
      }
    });
  }
  for (std::thread& p : producers) p.join();
  done.Wait();
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(overlapped);
  for (int id = 0; id < kThreads * kEach; ++id) {
    ASSERT_EQ(runs[id], 1) << "task " << id;
  }
  // What one producer queued on one session ran in the order it was queued.
  for (const std::vector<int>& s : seen) {
    EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
  }
  EXPECT_EQ(serializer.ActiveSessions(), 0);
}

}  // namespace
}  // namespace chat
