#include "server/store/idempotency_store.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "server/store/expiry_sweep.h"

namespace chat::store {
namespace {

// Times are kept at microsecond precision, as the SQL stores keep them.
absl::Time Micros(absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return t;
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

}  // namespace

absl::StatusOr<ClaimResult> MemoryIdempotencyStore::Claim(
    const RequestKey& key, absl::string_view fingerprint,
    absl::string_view owner, absl::Time now, absl::Time expires_at,
    absl::Time stale_before) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = records_.try_emplace({key.tenant, key.request_id});
  RequestRecord& record = it->second;
  const bool replace =
      inserted || record.expires_at <= now ||
      (!record.answer.has_value() && record.fingerprint == fingerprint &&
       record.claimed_at < stale_before);
  if (!replace) return ClaimResult{false, record};
  record = RequestRecord{std::string(fingerprint), std::string(owner),
                         Micros(now), Micros(expires_at), std::nullopt};
  return ClaimResult{true, {}};
}

absl::StatusOr<bool> MemoryIdempotencyStore::Complete(
    const RequestKey& key, absl::string_view owner,
    const IdempotentAnswer& answer) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find({key.tenant, key.request_id});
  if (it == records_.end() || it->second.owner != owner) return false;
  it->second.answer = answer;
  it->second.answer->timestamp = Micros(answer.timestamp);
  return true;
}

absl::Status MemoryIdempotencyStore::Release(const RequestKey& key,
                                             absl::string_view owner) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find({key.tenant, key.request_id});
  if (it != records_.end() && it->second.owner == owner &&
      !it->second.answer.has_value()) {
    records_.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<RequestRecord> MemoryIdempotencyStore::Lookup(
    const RequestKey& key, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find({key.tenant, key.request_id});
  if (it == records_.end() || it->second.expires_at <= now) {
    return absl::NotFoundError(
        absl::StrCat("request id ", key.request_id, " not found"));
  }
  return it->second;
}

absl::StatusOr<int64_t> MemoryIdempotencyStore::DeleteExpired(absl::Time now,
                                                              int limit) {
  if (absl::Status s = CheckSweepLimit(limit); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  return EraseExpired(records_, now, limit);
}

}  // namespace chat::store
