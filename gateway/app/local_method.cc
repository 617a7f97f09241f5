#include "gateway/app/local_method.h"

namespace chat::gateway {

void LocalCancel::Set(std::function<void()> cancel) {
  {
    absl::MutexLock lock(&mu_);
    if (!cancelled_) {
      cancel_ = std::move(cancel);
      return;
    }
  }
  cancel();
}

void LocalCancel::Cancel() {
  std::function<void()> cancel;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    cancel = cancel_;
  }
  // Outside the lock: the call's `done` may run inside.
  if (cancel) cancel();
}

}  // namespace chat::gateway
