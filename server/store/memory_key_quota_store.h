#ifndef CHAT_SERVER_STORE_MEMORY_KEY_QUOTA_STORE_H_
#define CHAT_SERVER_STORE_MEMORY_KEY_QUOTA_STORE_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/key_store.h"
#include "server/store/quota_store.h"

namespace chat::store {

// KeyStore in process memory, for the memory store. Thread-safe.
class MemoryKeyStore final : public KeyStore {
 public:
  absl::Status CreateKey(const ApiKey& key) override;
  absl::StatusOr<ApiKey> GetKey(absl::string_view id) override;
  absl::StatusOr<std::vector<ApiKey>> ListKeys(
      absl::string_view tenant) override;
  absl::StatusOr<bool> RevokeKey(absl::string_view id, absl::Time now) override;
  absl::StatusOr<bool> HasActiveKeys(absl::Time now) override;

 private:
  absl::Mutex mu_;
  std::map<std::string, ApiKey, std::less<>> keys_ ABSL_GUARDED_BY(mu_);
};

// QuotaStore in process memory, for the memory store. Thread-safe.
class MemoryQuotaStore final : public QuotaStore {
 public:
  absl::StatusOr<QuotaCharge> Charge(const QuotaCounter& counter,
                                     int64_t amount, int64_t limit) override;
  absl::Status Adjust(const QuotaCounter& counter, int64_t delta) override;
  absl::StatusOr<int64_t> Read(const QuotaCounter& counter) override;
  absl::StatusOr<int64_t> DeleteCountersBefore(absl::string_view scope_prefix,
                                               absl::Time cutoff) override;
  absl::Status AddUsage(const std::vector<UsageDelta>& deltas) override;
  absl::StatusOr<std::vector<UsageTotals>> GetUsage(absl::string_view tenant,
                                                    absl::string_view key_id,
                                                    absl::Time since,
                                                    absl::Time until) override;

 private:
  // (scope, window start in Unix microseconds).
  using CounterKey = std::pair<std::string, int64_t>;
  // (tenant, key_id, day in Unix seconds).
  using UsageKey = std::tuple<std::string, std::string, int64_t>;
  struct Usage {
    int64_t calls = 0;
    int64_t input_tokens = 0;
    int64_t output_tokens = 0;
    double cost_usd = 0;
  };

  absl::Mutex mu_;
  std::map<CounterKey, int64_t> counters_ ABSL_GUARDED_BY(mu_);
  std::map<UsageKey, Usage> usage_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_MEMORY_KEY_QUOTA_STORE_H_
