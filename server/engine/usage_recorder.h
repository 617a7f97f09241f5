#ifndef CHAT_SERVER_ENGINE_USAGE_RECORDER_H_
#define CHAT_SERVER_ENGINE_USAGE_RECORDER_H_

#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine/key_quotas.h"
#include "server/store/quota_store.h"

namespace chat {

// Sums the calls, tokens and cost of finished turns per (tenant, key, day) in
// memory and adds them to the store every `flush_interval`, so a turn costs
// no extra store write: usage trails by at most one interval (and a crash
// loses at most that). The same thread deletes finished rate-limit windows
// once a minute. Thread-safe.
class UsageRecorder {
 public:
  // `store` and `quotas` must outlive this.
  UsageRecorder(store::QuotaStore* store, KeyQuotas* quotas,
                absl::Duration flush_interval);
  UsageRecorder(const UsageRecorder&) = delete;
  UsageRecorder& operator=(const UsageRecorder&) = delete;
  // Flushes what is pending and stops the thread.
  ~UsageRecorder();

  // Counts one answered call that ended at `when`.
  void Record(absl::string_view tenant, absl::string_view key_id,
              absl::Time when, int64_t input_tokens, int64_t output_tokens,
              double cost_usd = 0);

  // Writes what is pending now; returns once it is in the store (or the
  // write failed and was logged; the deltas are kept for the next try).
  void Flush();

 private:
  using Key = std::tuple<std::string, std::string, int64_t>;
  struct Sums {
    int64_t calls = 0;
    int64_t input_tokens = 0;
    int64_t output_tokens = 0;
    double cost_usd = 0;
  };

  void Loop();

  store::QuotaStore* const store_;
  KeyQuotas* const quotas_;
  const absl::Duration flush_interval_;

  absl::Mutex mu_;
  std::map<Key, Sums> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Serializes flushes, so deltas put back after a failure keep their order.
  absl::Mutex flush_mu_;
  std::thread thread_;
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_USAGE_RECORDER_H_
