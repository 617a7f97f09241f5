#ifndef CHAT_TESTS_TESTING_EVENTUALLY_H_
#define CHAT_TESTS_TESTING_EVENTUALLY_H_

// Eventually(predicate, timeout): polls a condition until it holds or the
// time is up. Only for conditions no event announces (another process's
// counters, a log file, a remote health status); where the code under test
// offers a notification, wait on that instead. Never use it to wait for
// something *not* to happen: pick the barrier after which it would have.
// The default bound is generous: it only matters when a test fails, and a
// loaded machine running sanitized binaries can be many times slower.

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace chat::testing {

// Calls `predicate` every `interval` until it returns true (then returns
// true) or `timeout` has passed (then returns false). The predicate runs on
// the calling thread and may have side effects, e.g. keep the last answer it
// saw for the failure message.
template <typename Predicate>
bool Eventually(Predicate predicate, absl::Duration timeout = absl::Seconds(60),
                absl::Duration interval = absl::Milliseconds(20)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (predicate()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(interval);
  }
}

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_EVENTUALLY_H_
