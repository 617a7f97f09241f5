#ifndef CHAT_SERVER_STORE_EXPIRY_SWEEP_H_
#define CHAT_SERVER_STORE_EXPIRY_SWEEP_H_

// The batch delete the stores' sweeps share (request ids, streamed answers):
// the same bound on a batch, and for the in-memory stores the same walk.

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace chat::store {

// OK for a batch of at least one row; kInvalidArgument otherwise.
inline absl::Status CheckSweepLimit(int limit) {
  if (limit < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit must be >= 1, got ", limit));
  }
  return absl::OkStatus();
}

// Erases up to `limit` entries of `map` whose value's `expires_at` is at or
// before `now`. Returns how many it erased.
template <typename Map>
int64_t EraseExpired(Map& map, absl::Time now, int limit) {
  int64_t erased = 0;
  for (auto it = map.begin(); it != map.end() && erased < limit;) {
    if (it->second.expires_at <= now) {
      it = map.erase(it);
      ++erased;
    } else {
      ++it;
    }
  }
  return erased;
}

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_EXPIRY_SWEEP_H_
