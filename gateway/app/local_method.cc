#include "gateway/app/local_method.h"

namespace chat::gateway {

void LocalCancel::Set(LocalCallCancel cancel) {
  std::vector<LocalCancelReason> early;
  {
    absl::MutexLock lock(&mu_);
    cancel_set_ = true;
    cancel_ = cancel;
    early.swap(early_);
  }
  if (!cancel) return;
  for (LocalCancelReason reason : early) cancel(reason);
}

void LocalCancel::Cancel(LocalCancelReason reason) {
  // Before the cancel runs: the call may answer inside it, and its answer
  // is mapped by deadline_passed().
  if (reason == LocalCancelReason::kDeadline) deadline_passed_.store(true);
  LocalCallCancel cancel;
  {
    absl::MutexLock lock(&mu_);
    if (!cancel_set_) {
      early_.push_back(reason);
      return;
    }
    cancel = cancel_;
  }
  // Outside the lock: the call's `done` may run inside.
  if (cancel) cancel(reason);
}

}  // namespace chat::gateway
