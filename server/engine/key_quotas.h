#ifndef CHAT_SERVER_ENGINE_KEY_QUOTAS_H_
#define CHAT_SERVER_ENGINE_KEY_QUOTAS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/engine/chat_types.h"
#include "server/store/key_store.h"
#include "server/store/quota_store.h"

namespace chat {

// Where a key stands against its per-minute limits, in the terms of OpenAI's
// x-ratelimit-* headers. A limit of 0: that kind is not limited.
struct RateLimitStatus {
  int64_t limit_requests = 0;
  int64_t remaining_requests = 0;
  absl::Duration reset_requests;
  int64_t limit_tokens = 0;
  int64_t remaining_tokens = 0;
  absl::Duration reset_tokens;
};

// A refused turn is kResourceExhausted; these carry, as payloads of that
// status, when the caller may retry and where the key stands, for the edge
// to turn into google.rpc.RetryInfo and x-ratelimit headers.
absl::Status RateLimitedError(absl::string_view message,
                              absl::Duration retry_after,
                              const RateLimitStatus& status);
std::optional<absl::Duration> RetryAfterOf(const absl::Status& status);
std::optional<RateLimitStatus> RateLimitStatusOf(const absl::Status& status);

// The charges an admitted turn holds until it is settled.
struct QuotaAdmission {
  RateLimitStatus status;
  // Tokens reserved in each of `token_counters` (tokens per minute, budget).
  int64_t reserved_tokens = 0;
  std::vector<store::QuotaCounter> token_counters;
};

// Enforces one API key's limits. Requests and tokens per minute and token
// budgets are counters in the store, so replicas sharing a store share them:
// a turn is admitted only if every counter can take it, in atomic steps, so
// no two replicas both take the last unit. A turn reserves its largest cost
// (its prompt's estimate plus its max_tokens) before the provider is called,
// and the reservation is replaced by the provider's reported usage when it
// ends. Concurrent streams are counted on this replica only. Thread-safe.
class KeyQuotas {
 public:
  // `store` must outlive this.
  explicit KeyQuotas(store::QuotaStore* store);

  // No I/O. kPermissionDenied for a model the key may not use (naming no
  // model, a request gets the server's default, which any key may use);
  // kInvalidArgument for a max_tokens above the key's ceiling.
  static absl::Status CheckRequest(const ChatTurnRequest& request);

  // Takes one of the key's stream slots on this replica; kResourceExhausted
  // when all `max_streams` are taken. Release with ReleaseStream.
  absl::Status AcquireStream(const std::string& key_id, int64_t max_streams);
  void ReleaseStream(const std::string& key_id);

  // Whether `limits` has any counter Admit would charge.
  static bool HasCounters(const store::KeyLimits& limits);

  // Blocks on the store. Charges one request and `tokens` against the key's
  // per-minute limits and budget, all or none: kResourceExhausted (with
  // RateLimitedError's payloads) naming the limit that refused.
  absl::StatusOr<QuotaAdmission> Admit(const std::string& key_id,
                                       const store::KeyLimits& limits,
                                       int64_t tokens, absl::Time now);

  // Blocks on the store. Replaces an admitted turn's reservation with the
  // tokens it used (0 for a turn that ended without an answer).
  absl::Status Settle(const QuotaAdmission& admission, int64_t used_tokens);

  // Blocks on the store. Charges one request against the key's requests per
  // minute only, for a call that writes without a turn, and returns where
  // the key's requests then stand (no tokens: limit_tokens 0); all zeros
  // for a key without that limit. kResourceExhausted (with
  // RateLimitedError's payloads) once the minute's requests are used up.
  absl::StatusOr<RateLimitStatus> ChargeRequest(const std::string& key_id,
                                                const store::KeyLimits& limits,
                                                absl::Time now);

  // Blocks on the store. Deletes the counters of windows that are over.
  absl::Status DeleteFinishedWindows(absl::Time now);

 private:
  store::QuotaStore* const store_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int64_t> open_streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_KEY_QUOTAS_H_
