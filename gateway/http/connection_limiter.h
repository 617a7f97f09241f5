#ifndef CHAT_GATEWAY_HTTP_CONNECTION_LIMITER_H_
#define CHAT_GATEWAY_HTTP_CONNECTION_LIMITER_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace chat::gateway {

// Counts the open connections, in total and per client, against two caps
// (--max_connections, --max_connections_per_client). A client is an IPv4
// address (also when it arrives IPv4-mapped, ::ffff:a.b.c.d) or an IPv6 /64.
// Thread-safe: the acceptor takes slots and each connection's strand gives
// its slot back.
class ConnectionLimiter {
 public:
  // Both caps must be at least 1.
  ConnectionLimiter(int max_total, int max_per_client);
  ConnectionLimiter(const ConnectionLimiter&) = delete;
  ConnectionLimiter& operator=(const ConnectionLimiter&) = delete;

  // Takes a slot for a connection from `client`; false (nothing taken) if
  // the total or that client's count is at its cap.
  bool TryAcquire(absl::string_view client);
  // Gives back a slot that TryAcquire(client) took.
  void Release(absl::string_view client);

  int open() const;
  // Open connections counted against `client`'s cap (its /64 for IPv6).
  int open_from(absl::string_view client) const;

  // The client `address` counts as: the IPv4 address for IPv4 and
  // IPv4-mapped IPv6, "<prefix>::/64" for other IPv6, and anything that is
  // not an IP address as it is.
  static std::string ClientKey(absl::string_view address);

 private:
  const int max_total_;
  const int max_per_client_;
  mutable absl::Mutex mu_;
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  // Only clients with at least one open connection, so the map stays as
  // small as the set of connected addresses.
  absl::flat_hash_map<std::string, int> per_client_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_HTTP_CONNECTION_LIMITER_H_
