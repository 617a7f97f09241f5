#include "server/engine/retention_sweeper.h"

#include <algorithm>

#include "absl/time/clock.h"
#include "common/logging.h"

namespace chat {

RetentionSweeper::RetentionSweeper(store::ConversationStore* store,
                                   absl::Duration ttl, absl::Duration interval)
    : store_(store),
      ttl_(ttl),
      interval_(interval),
      thread_([this] { Loop(); }) {}

RetentionSweeper::~RetentionSweeper() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

absl::Duration RetentionSweeper::IntervalFor(absl::Duration ttl) {
  return std::clamp(ttl / 10, absl::Seconds(1), absl::Minutes(1));
}

void RetentionSweeper::Loop() {
  while (true) {
    absl::StatusOr<int64_t> deleted =
        store_->DeleteSessionsIdleSince(absl::Now() - ttl_);
    if (!deleted.ok()) {
      // The store may be down for a while; the next sweep tries again.
      LogWarning("retention sweep failed: ", deleted.status().ToString());
    } else if (*deleted > 0) {
      LogInfo("retention sweep deleted ", *deleted, " session(s) idle over ",
              absl::FormatDuration(ttl_));
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_)) return;
  }
}

}  // namespace chat
