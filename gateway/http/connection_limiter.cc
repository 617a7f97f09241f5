#include "gateway/http/connection_limiter.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "common/logging.h"

namespace chat::gateway {

std::string ConnectionLimiter::ClientKey(absl::string_view address) {
  const std::string text(address);
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return text;
  char buffer[INET6_ADDRSTRLEN] = {};
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    // The same IPv4 client, whichever socket family accepted it.
    in_addr v4{};
    std::memcpy(&v4, &v6.s6_addr[12], sizeof(v4));
    return inet_ntop(AF_INET, &v4, buffer, sizeof(buffer));
  }
  // One subscriber usually holds a whole /64 and can pick any address in
  // it, so a per-address cap would not cap them at all.
  std::memset(&v6.s6_addr[8], 0, 8);
  return std::string(inet_ntop(AF_INET6, &v6, buffer, sizeof(buffer))) + "/64";
}

ConnectionLimiter::ConnectionLimiter(int max_total, int max_per_client)
    : max_total_(max_total), max_per_client_(max_per_client) {}

bool ConnectionLimiter::TryAcquire(absl::string_view client) {
  const std::string key = ClientKey(client);
  absl::MutexLock lock(&mu_);
  if (total_ >= max_total_) return false;
  auto [it, inserted] = per_client_.try_emplace(key, 0);
  if (it->second >= max_per_client_) return false;
  ++it->second;
  ++total_;
  return true;
}

void ConnectionLimiter::Release(absl::string_view client) {
  const std::string key = ClientKey(client);
  absl::MutexLock lock(&mu_);
  auto it = per_client_.find(key);
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
  const std::string key = ClientKey(client);
  absl::MutexLock lock(&mu_);
  auto it = per_client_.find(key);
  return it == per_client_.end() ? 0 : it->second;
}

}  // namespace chat::gateway
