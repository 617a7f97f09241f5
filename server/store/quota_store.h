#ifndef CHAT_SERVER_STORE_QUOTA_STORE_H_
#define CHAT_SERVER_STORE_QUOTA_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chat::store {

// Names one counter of a fixed window: what is counted (`scope`, for example
// "rpm/KEY_ID" or "budget/KEY_ID") and the start of the window it counts.
// Replicas that name the same counter share it.
struct QuotaCounter {
  std::string scope;
  absl::Time window_start;
};

// The outcome of QuotaStore::Charge.
struct QuotaCharge {
  // Whether the amount was added.
  bool accepted = false;
  // The counter's value after the call (unchanged when not accepted).
  int64_t used = 0;
};

// Calls, tokens and cost used through one key on one UTC day.
struct UsageDelta {
  std::string tenant;
  // Empty for anonymous calls.
  std::string key_id;
  // Midnight UTC of the day the calls ended.
  absl::Time day;
  int64_t calls = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  // US dollars of the calls whose model had a price.
  double cost_usd = 0;
};

// Sums of usage over a range of days, for one key (or for a whole tenant when
// `key_id` is empty in a per-tenant query).
struct UsageTotals {
  std::string tenant;
  std::string key_id;
  int64_t calls = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
};

// Counters shared by every replica on one store, exact under concurrency:
// rate limits and budgets are checked and charged in one atomic step, so two
// replicas never both take the last unit. Thread-safe; calls block on I/O.
class QuotaStore {
 public:
  virtual ~QuotaStore() = default;

  // Adds `amount` (>= 0) to `counter` (created at 0 if absent) if the sum
  // stays <= `limit`; otherwise adds nothing. Atomic across replicas.
  virtual absl::StatusOr<QuotaCharge> Charge(const QuotaCounter& counter,
                                             int64_t amount, int64_t limit) = 0;

  // Adds `delta` (which may be negative: a reservation that was too large)
  // to `counter` with no limit; a counter never goes below 0.
  virtual absl::Status Adjust(const QuotaCounter& counter, int64_t delta) = 0;

  // The counter's value; 0 if absent.
  virtual absl::StatusOr<int64_t> Read(const QuotaCounter& counter) = 0;

  // Deletes the counters whose scope starts with `scope_prefix` and whose
  // window started before `cutoff` (the sweep of windows that are over).
  // Returns how many.
  virtual absl::StatusOr<int64_t> DeleteCountersBefore(
      absl::string_view scope_prefix, absl::Time cutoff) = 0;

  // Adds each delta to the usage of its (tenant, key_id, day), in one
  // transaction.
  virtual absl::Status AddUsage(const std::vector<UsageDelta>& deltas) = 0;

  // Usage of days in [since, until): one row per key of `tenant` (every
  // tenant's keys if `tenant` is empty), anonymous usage under key_id "".
  // Only the key `key_id` if it is not empty. Ordered by tenant, then key_id.
  virtual absl::StatusOr<std::vector<UsageTotals>> GetUsage(
      absl::string_view tenant, absl::string_view key_id, absl::Time since,
      absl::Time until) = 0;
};

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_QUOTA_STORE_H_
