#include "server/store/memory_key_quota_store.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/store/key_columns.h"

namespace chat::store {
namespace {

// The SQL stores keep microseconds; so does this one, so all compare equal.
absl::Time TruncateToMicros(absl::Time t) {
  if (t == absl::InfiniteFuture() || t == absl::InfinitePast()) return t;
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

ApiKey Normalized(ApiKey key) {
  key.created_at = TruncateToMicros(key.created_at);
  key.expires_at = TruncateToMicros(key.expires_at);
  key.revoked_at = TruncateToMicros(key.revoked_at);
  return key;
}

}  // namespace

absl::Status MemoryKeyStore::CreateKey(const ApiKey& key) {
  // The SQL stores' rules, so a key accepted here is accepted there.
  if (absl::Status s = ValidateApiKey(key); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (!keys_.emplace(key.id, Normalized(key)).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("key ", key.id, " already exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ApiKey> MemoryKeyStore::GetKey(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) {
    return absl::NotFoundError(absl::StrCat("key ", id, " not found"));
  }
  return it->second;
}

absl::StatusOr<std::vector<ApiKey>> MemoryKeyStore::ListKeys(
    absl::string_view tenant) {
  std::vector<ApiKey> keys;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, key] : keys_) {
      if (tenant.empty() || key.tenant == tenant) keys.push_back(key);
    }
  }
  std::stable_sort(keys.begin(), keys.end(),
                   [](const ApiKey& a, const ApiKey& b) {
                     return a.created_at < b.created_at;
                   });
  return keys;
}

absl::StatusOr<bool> MemoryKeyStore::RevokeKey(absl::string_view id,
                                               absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = keys_.find(id);
  if (it == keys_.end()) return false;
  if (it->second.revoked_at == absl::InfiniteFuture()) {
    it->second.revoked_at = TruncateToMicros(now);
  }
  return true;
}

absl::StatusOr<bool> MemoryKeyStore::HasActiveKeys(absl::Time now) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, key] : keys_) {
    if (key.revoked_at > now && key.expires_at > now) return true;
  }
  return false;
}

absl::StatusOr<QuotaCharge> MemoryQuotaStore::Charge(
    const QuotaCounter& counter, int64_t amount, int64_t limit) {
  if (amount < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("quota charge must be >= 0, got ", amount));
  }
  absl::MutexLock lock(&mu_);
  int64_t& used = counters_[CounterKey(
      counter.scope, absl::ToUnixMicros(counter.window_start))];
  if (used + amount > limit) return QuotaCharge{false, used};
  used += amount;
  return QuotaCharge{true, used};
}

absl::Status MemoryQuotaStore::Adjust(const QuotaCounter& counter,
                                      int64_t delta) {
  absl::MutexLock lock(&mu_);
  int64_t& used = counters_[CounterKey(
      counter.scope, absl::ToUnixMicros(counter.window_start))];
  used = std::max<int64_t>(0, used + delta);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> MemoryQuotaStore::Read(const QuotaCounter& counter) {
  absl::MutexLock lock(&mu_);
  auto it = counters_.find(
      CounterKey(counter.scope, absl::ToUnixMicros(counter.window_start)));
  return it == counters_.end() ? 0 : it->second;
}

absl::StatusOr<int64_t> MemoryQuotaStore::DeleteCountersBefore(
    absl::string_view scope_prefix, absl::Time cutoff) {
  const int64_t cutoff_micros = absl::ToUnixMicros(cutoff);
  absl::MutexLock lock(&mu_);
  int64_t deleted = 0;
  for (auto it = counters_.begin(); it != counters_.end();) {
    if (it->first.second < cutoff_micros &&
        absl::StartsWith(it->first.first, scope_prefix)) {
      it = counters_.erase(it);
      ++deleted;
    } else {
      ++it;
    }
  }
  return deleted;
}

absl::Status MemoryQuotaStore::AddUsage(const std::vector<UsageDelta>& deltas) {
  absl::MutexLock lock(&mu_);
  for (const UsageDelta& delta : deltas) {
    Usage& usage = usage_[UsageKey(delta.tenant, delta.key_id,
                                   absl::ToUnixSeconds(delta.day))];
    usage.calls += delta.calls;
    usage.input_tokens += delta.input_tokens;
    usage.output_tokens += delta.output_tokens;
    usage.cost_usd += delta.cost_usd;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<UsageTotals>> MemoryQuotaStore::GetUsage(
    absl::string_view tenant, absl::string_view key_id, absl::Time since,
    absl::Time until) {
  const int64_t since_seconds = absl::ToUnixSeconds(since);
  const int64_t until_seconds = absl::ToUnixSeconds(until);
  std::vector<UsageTotals> totals;
  absl::MutexLock lock(&mu_);
  // usage_ is ordered by (tenant, key_id, day): one key's days are adjacent.
  for (const auto& [usage_key, usage] : usage_) {
    const auto& [row_tenant, row_key_id, day] = usage_key;
    if (!tenant.empty() && row_tenant != tenant) continue;
    if (!key_id.empty() && row_key_id != key_id) continue;
    if (day < since_seconds || day >= until_seconds) continue;
    if (totals.empty() || totals.back().tenant != row_tenant ||
        totals.back().key_id != row_key_id) {
      totals.push_back(UsageTotals{row_tenant, row_key_id});
    }
    totals.back().calls += usage.calls;
    totals.back().input_tokens += usage.input_tokens;
    totals.back().output_tokens += usage.output_tokens;
    totals.back().cost_usd += usage.cost_usd;
  }
  return totals;
}

}  // namespace chat::store
