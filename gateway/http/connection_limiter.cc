#include "gateway/http/connection_limiter.h"

#include "common/logging.h"

namespace chat::gateway {

ConnectionLimiter::ConnectionLimiter(int max_total, int max_per_client)
    : max_total_(max_total), max_per_client_(max_per_client) {}

bool ConnectionLimiter::TryAcquire(absl::string_view client) {
  absl::MutexLock lock(&mu_);
  if (total_ >= max_total_) return false;
  auto [it, inserted] = per_client_.try_emplace(client, 0);
  if (it->second >= max_per_client_) return false;
  ++it->second;
  ++total_;
  return true;
}

void ConnectionLimiter::Release(absl::string_view client) {
  absl::MutexLock lock(&mu_);
  auto it = per_client_.find(client);
  if (it == per_client_.end() || it->second <= 0) {
    LogError("connection limiter: a slot of ", client,
             " was released that was never taken");
    return;
  }
  if (--it->second == 0) per_client_.erase(it);
  --total_;
}

int ConnectionLimiter::open() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

int ConnectionLimiter::open_from(absl::string_view client) const {
  absl::MutexLock lock(&mu_);
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace chat::gateway
