#include "server/engine/usage_recorder.h"

#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "common/logging.h"

namespace chat {

UsageRecorder::UsageRecorder(store::QuotaStore* store, KeyQuotas* quotas,
                             absl::Duration flush_interval)
    : store_(store),
      quotas_(quotas),
      flush_interval_(flush_interval),
      thread_([this] { Loop(); }) {}

UsageRecorder::~UsageRecorder() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  Flush();
}

void UsageRecorder::Record(absl::string_view tenant, absl::string_view key_id,
                           absl::Time when, int64_t input_tokens,
                           int64_t output_tokens, double cost_usd) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const int64_t day =
      absl::ToUnixSeconds(absl::FromCivil(absl::ToCivilDay(when, utc), utc));
  absl::MutexLock lock(&mu_);
  Sums& sums = pending_[Key(std::string(tenant), std::string(key_id), day)];
  ++sums.calls;
  sums.input_tokens += input_tokens;
  sums.output_tokens += output_tokens;
  sums.cost_usd += cost_usd;
}

void UsageRecorder::Flush() {
  absl::MutexLock flush_lock(&flush_mu_);
  std::map<Key, Sums> taken;
  {
    absl::MutexLock lock(&mu_);
    taken.swap(pending_);
  }
  if (taken.empty()) return;
  std::vector<store::UsageDelta> deltas;
  deltas.reserve(taken.size());
  for (const auto& [key, sums] : taken) {
    const auto& [tenant, key_id, day] = key;
    deltas.push_back({tenant, key_id, absl::FromUnixSeconds(day), sums.calls,
                      sums.input_tokens, sums.output_tokens, sums.cost_usd});
  }
  if (absl::Status written = store_->AddUsage(deltas); !written.ok()) {
    LogWarning("usage not recorded yet (kept for the next try): ",
               written.ToString());
    absl::MutexLock lock(&mu_);
    for (const auto& [key, sums] : taken) {
      Sums& back = pending_[key];
      back.calls += sums.calls;
      back.input_tokens += sums.input_tokens;
      back.output_tokens += sums.output_tokens;
      back.cost_usd += sums.cost_usd;
    }
  }
}

void UsageRecorder::Loop() {
  absl::Time next_sweep = absl::Now();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), flush_interval_);
      if (stopping_) return;
    }
    Flush();
    if (const absl::Time now = absl::Now(); now >= next_sweep) {
      if (absl::Status swept = quotas_->DeleteFinishedWindows(now);
          !swept.ok()) {
        LogWarning("finished rate-limit windows not deleted: ",
                   swept.ToString());
      }
      next_sweep = now + absl::Minutes(1);
    }
  }
}

}  // namespace chat
