#ifndef CHAT_SERVER_STORE_IDEMPOTENCY_STORE_H_
#define CHAT_SERVER_STORE_IDEMPOTENCY_STORE_H_

// The request ids of idempotent turns (ChatRequest.request_id, REST's
// Idempotency-Key): who is running each one, and the answer once it is
// stored, so that a repeat is answered from here instead of the provider.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace chat::store {

// Request ids are per tenant: two tenants may use the same one.
struct RequestKey {
  std::string tenant;
  std::string request_id;
};

// The stored answer of a finished turn: what the caller of the first request
// was told, given again to each repeat.
struct IdempotentAnswer {
  std::string session_id;
  std::string response;
  absl::Time timestamp;
  int turn_count = 0;
  std::string model;
  std::string stop_reason;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  std::optional<double> cost_usd;
};

// A claim on a request id: the id, and the token of whoever holds it
// (IdempotencyStore::Claim's `owner`).
struct RequestClaim {
  RequestKey key;
  std::string owner;
};

// One request id's record.
struct RequestRecord {
  // Identifies the request (its session and message, hashed by the caller);
  // a repeat must carry the same one.
  std::string fingerprint;
  // The claim's token (IdempotencyStore::Claim's `owner`).
  std::string owner;
  absl::Time claimed_at;
  absl::Time expires_at;
  // Set once the turn is stored; absent while it runs.
  std::optional<IdempotentAnswer> answer;
};

// The outcome of IdempotencyStore::Claim.
struct ClaimResult {
  // True: the caller now owns the id and runs the turn. False: `existing`
  // is the live record someone else holds (running or answered).
  bool claimed = false;
  RequestRecord existing;
};

// Request-id records, shared by every replica on one store. Claim is atomic
// across replicas: of any number of callers claiming one id at once, exactly
// one gets it. Thread-safe; calls block on I/O like the ConversationStore
// they belong to. Infrastructure failures are kUnavailable or kInternal.
class IdempotencyStore {
 public:
  virtual ~IdempotencyStore() = default;

  // Claims `key` for a turn: records `fingerprint`, `owner` (a token unique
  // to this claim), `now` and `expires_at`, with no answer yet, and returns
  // claimed = true, if no record exists, or the existing one expired
  // (expires_at <= now), or it is still unanswered, has the same fingerprint
  // and was claimed before `stale_before` (its owner is presumed gone).
  // Otherwise writes nothing and returns claimed = false with the record.
  virtual absl::StatusOr<ClaimResult> Claim(const RequestKey& key,
                                            absl::string_view fingerprint,
                                            absl::string_view owner,
                                            absl::Time now,
                                            absl::Time expires_at,
                                            absl::Time stale_before) = 0;

  // Stores `answer` in `key`'s record if `owner` still holds it. Returns
  // whether it did (false: the record was taken over or swept).
  virtual absl::StatusOr<bool> Complete(const RequestKey& key,
                                        absl::string_view owner,
                                        const IdempotentAnswer& answer) = 0;

  // Deletes `key`'s record if `owner` holds it and it has no answer: the turn
  // failed and a repeat should run it again.
  virtual absl::Status Release(const RequestKey& key,
                               absl::string_view owner) = 0;

  // The record of `key` if it has one that has not expired at `now`;
  // kNotFound otherwise.
  virtual absl::StatusOr<RequestRecord> Lookup(const RequestKey& key,
                                               absl::Time now) = 0;

  // Deletes at most `limit` (>= 1) records that expired at `now`, in one
  // short statement (the sweep calls it again while it deletes a full
  // batch, so no lock is held for long); returns how many.
  virtual absl::StatusOr<int64_t> DeleteExpired(absl::Time now, int limit) = 0;
};

// IdempotencyStore in process memory, for the memory store (and as the
// engine's own when a store has none). Thread-safe; never blocks on I/O.
class MemoryIdempotencyStore final : public IdempotencyStore {
 public:
  absl::StatusOr<ClaimResult> Claim(const RequestKey& key,
                                    absl::string_view fingerprint,
                                    absl::string_view owner, absl::Time now,
                                    absl::Time expires_at,
                                    absl::Time stale_before) override;
  absl::StatusOr<bool> Complete(const RequestKey& key, absl::string_view owner,
                                const IdempotentAnswer& answer) override;
  absl::Status Release(const RequestKey& key, absl::string_view owner) override;
  absl::StatusOr<RequestRecord> Lookup(const RequestKey& key,
                                       absl::Time now) override;
  absl::StatusOr<int64_t> DeleteExpired(absl::Time now, int limit) override;

 private:
  using Key = std::pair<std::string, std::string>;

  absl::Mutex mu_;
  std::map<Key, RequestRecord> records_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_IDEMPOTENCY_STORE_H_
