#include "server/engine/key_quotas.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/time_format.h"

namespace chat {
namespace {

// Payload type URLs of a refused turn's status. Private to chatd: the edge
// translates them into standard gRPC details and HTTP headers.
constexpr absl::string_view kRetryAfterPayload = "chatd/retry-after-micros";
constexpr absl::string_view kRateLimitPayload = "chatd/rate-limit-status";

absl::Time MinuteStart(absl::Time now) {
  return absl::FromCivil(absl::ToCivilMinute(now, absl::UTCTimeZone()),
                         absl::UTCTimeZone());
}

// The budget period containing `now`: [start, end).
struct Period {
  absl::Time start;
  absl::Time end;
  absl::string_view name;
};

Period BudgetPeriodOf(store::BudgetPeriod period, absl::Time now) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  if (period == store::BudgetPeriod::kMonth) {
    const absl::CivilMonth month = absl::ToCivilMonth(now, utc);
    return {absl::FromCivil(month, utc), absl::FromCivil(month + 1, utc),
            "month"};
  }
  const absl::CivilDay day = absl::ToCivilDay(now, utc);
  return {absl::FromCivil(day, utc), absl::FromCivil(day + 1, utc), "day"};
}

std::string BudgetScope(store::BudgetPeriod period, absl::string_view key_id) {
  return absl::StrCat(
      period == store::BudgetPeriod::kMonth ? "budget-month/" : "budget-day/",
      key_id);
}

}  // namespace

absl::Status RateLimitedError(absl::string_view message,
                              absl::Duration retry_after,
                              const RateLimitStatus& status) {
  absl::Status error = absl::ResourceExhaustedError(message);
  error.SetPayload(kRetryAfterPayload,
                   absl::Cord(absl::StrCat(absl::ToInt64Microseconds(
                       std::max(retry_after, absl::ZeroDuration())))));
  error.SetPayload(kRateLimitPayload,
                   absl::Cord(absl::StrJoin(
                       {status.limit_requests, status.remaining_requests,
                        absl::ToInt64Microseconds(status.reset_requests),
                        status.limit_tokens, status.remaining_tokens,
                        absl::ToInt64Microseconds(status.reset_tokens)},
                       " ")));
  return error;
}

std::optional<absl::Duration> RetryAfterOf(const absl::Status& status) {
  auto payload = status.GetPayload(kRetryAfterPayload);
  int64_t micros = 0;
  if (!payload.has_value() ||
      !absl::SimpleAtoi(std::string(*payload), &micros)) {
    return std::nullopt;
  }
  return absl::Microseconds(micros);
}

std::optional<RateLimitStatus> RateLimitStatusOf(const absl::Status& status) {
  auto payload = status.GetPayload(kRateLimitPayload);
  if (!payload.has_value()) return std::nullopt;
  std::vector<std::string> fields = absl::StrSplit(std::string(*payload), ' ');
  int64_t v[6];
  if (fields.size() != 6) return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    if (!absl::SimpleAtoi(fields[i], &v[i])) return std::nullopt;
  }
  return RateLimitStatus{v[0], v[1], absl::Microseconds(v[2]),
                         v[3], v[4], absl::Microseconds(v[5])};
}

KeyQuotas::KeyQuotas(store::QuotaStore* store) : store_(store) {}

absl::Status KeyQuotas::CheckRequest(const ChatTurnRequest& request) {
  const store::KeyLimits& limits = request.key_limits;
  // A request that names no model gets the server's default (--model),
  // which the operator chose, so every key may use it.
  if (!limits.allowed_models.empty() && request.model.has_value() &&
      !request.model->empty()) {
    const std::string& model = *request.model;
    if (std::find(limits.allowed_models.begin(), limits.allowed_models.end(),
                  model) == limits.allowed_models.end()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "this API key may not use model '", model,
          "'; it may use: ", absl::StrJoin(limits.allowed_models, ", ")));
    }
  }
  if (limits.max_tokens > 0 && request.max_tokens.has_value() &&
      *request.max_tokens > limits.max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens ", *request.max_tokens,
        " is above this API key's ceiling of ", limits.max_tokens));
  }
  return absl::OkStatus();
}

absl::Status KeyQuotas::AcquireStream(const std::string& key_id,
                                      int64_t max_streams) {
  absl::MutexLock lock(&mu_);
  int64_t& open = open_streams_[key_id];
  if (open >= max_streams) {
    if (open == 0) open_streams_.erase(key_id);
    return RateLimitedError(
        absl::StrCat("this API key already has ", max_streams,
                     " streams open, its limit (max_streams); retry when one "
                     "ends"),
        absl::Seconds(1), RateLimitStatus{});
  }
  ++open;
  return absl::OkStatus();
}

void KeyQuotas::ReleaseStream(const std::string& key_id) {
  absl::MutexLock lock(&mu_);
  auto it = open_streams_.find(key_id);
  if (it == open_streams_.end()) return;
  if (--it->second <= 0) open_streams_.erase(it);
}

bool KeyQuotas::HasCounters(const store::KeyLimits& limits) {
  return limits.requests_per_minute > 0 || limits.tokens_per_minute > 0 ||
         (limits.budget_tokens > 0 &&
          limits.budget_period != store::BudgetPeriod::kNone);
}

absl::StatusOr<RateLimitStatus> KeyQuotas::ChargeRequest(
    const std::string& key_id, const store::KeyLimits& limits, absl::Time now) {
  if (limits.requests_per_minute <= 0) return RateLimitStatus{};
  // Admit's request counter, and nothing else: no tokens are reserved, and
  // a request is never refunded.
  store::KeyLimits requests_only;
  requests_only.requests_per_minute = limits.requests_per_minute;
  absl::StatusOr<QuotaAdmission> admitted =
      Admit(key_id, requests_only, /*tokens=*/0, now);
  if (!admitted.ok()) return admitted.status();
  return admitted->status;
}

absl::StatusOr<QuotaAdmission> KeyQuotas::Admit(const std::string& key_id,
                                                const store::KeyLimits& limits,
                                                int64_t tokens,
                                                absl::Time now) {
  QuotaAdmission admission;
  admission.reserved_tokens = tokens;
  RateLimitStatus& status = admission.status;
  const absl::Time minute = MinuteStart(now);
  const absl::Duration minute_left = minute + absl::Minutes(1) - now;
  // Counters already charged, undone if a later one refuses.
  std::vector<std::pair<store::QuotaCounter, int64_t>> charged;
  auto undo = [&] {
    for (const auto& [counter, amount] : charged) {
      // Best effort: a failed undo over-counts, which only errs on the safe
      // side, and the window ends within the minute (or period).
      store_->Adjust(counter, -amount).IgnoreError();
    }
  };

  if (limits.requests_per_minute > 0) {
    store::QuotaCounter counter{absl::StrCat("rpm/", key_id), minute};
    absl::StatusOr<store::QuotaCharge> charge =
        store_->Charge(counter, 1, limits.requests_per_minute);
    if (!charge.ok()) return charge.status();
    status.limit_requests = limits.requests_per_minute;
    status.remaining_requests =
        std::max<int64_t>(0, limits.requests_per_minute - charge->used);
    status.reset_requests = minute_left;
    if (!charge->accepted) {
      return RateLimitedError(
          absl::StrCat(
              "rate limit reached: this API key may make ",
              limits.requests_per_minute, " requests per minute; retry in ",
              absl::FormatDuration(absl::Ceil(minute_left, absl::Seconds(1)))),
          minute_left, status);
    }
    charged.emplace_back(std::move(counter), 1);
  }

  if (limits.tokens_per_minute > 0) {
    store::QuotaCounter counter{absl::StrCat("tpm/", key_id), minute};
    absl::StatusOr<store::QuotaCharge> charge =
        store_->Charge(counter, tokens, limits.tokens_per_minute);
    if (!charge.ok()) {
      undo();
      return charge.status();
    }
    status.limit_tokens = limits.tokens_per_minute;
    status.remaining_tokens =
        std::max<int64_t>(0, limits.tokens_per_minute - charge->used);
    status.reset_tokens = minute_left;
    if (!charge->accepted) {
      undo();
      if (tokens > limits.tokens_per_minute) {
        return RateLimitedError(
            absl::StrCat("this turn may use up to ", tokens,
                         " tokens (prompt and max_tokens), more than this API "
                         "key's limit of ",
                         limits.tokens_per_minute,
                         " tokens per minute; send a shorter prompt or a "
                         "smaller max_tokens"),
            minute_left, status);
      }
      return RateLimitedError(
          absl::StrCat(
              "rate limit reached: this API key may use ",
              limits.tokens_per_minute,
              " tokens per minute and this turn may use up to ", tokens,
              "; retry in ",
              absl::FormatDuration(absl::Ceil(minute_left, absl::Seconds(1)))),
          minute_left, status);
    }
    charged.emplace_back(counter, tokens);
    admission.token_counters.push_back(std::move(counter));
  }

  if (limits.budget_tokens > 0 &&
      limits.budget_period != store::BudgetPeriod::kNone) {
    const Period period = BudgetPeriodOf(limits.budget_period, now);
    store::QuotaCounter counter{BudgetScope(limits.budget_period, key_id),
                                period.start};
    absl::StatusOr<store::QuotaCharge> charge =
        store_->Charge(counter, tokens, limits.budget_tokens);
    if (!charge.ok()) {
      undo();
      return charge.status();
    }
    if (!charge->accepted) {
      undo();
      return RateLimitedError(
          absl::StrCat("token budget exceeded: this API key's budget is ",
                       limits.budget_tokens, " tokens per ", period.name, ", ",
                       charge->used,
                       " are used and this turn may use up "
                       "to ",
                       tokens, "; the budget resets at ",
                       FormatTimestamp(period.end)),
          period.end - now, status);
    }
    charged.emplace_back(counter, tokens);
    admission.token_counters.push_back(std::move(counter));
  }
  return admission;
}

absl::Status KeyQuotas::Settle(const QuotaAdmission& admission,
                               int64_t used_tokens) {
  absl::Status result;
  const int64_t delta = used_tokens - admission.reserved_tokens;
  if (delta == 0) return result;
  for (const store::QuotaCounter& counter : admission.token_counters) {
    result.Update(store_->Adjust(counter, delta));
  }
  return result;
}

absl::Status KeyQuotas::DeleteFinishedWindows(absl::Time now) {
  absl::Status result;
  // A per-minute window is over a minute after it starts; a budget period's
  // counter goes once its period is over (a month can be 31 days).
  const absl::Time minute = MinuteStart(now);
  for (absl::string_view prefix : {"rpm/", "tpm/"}) {
    result.Update(
        store_->DeleteCountersBefore(prefix, minute - absl::Minutes(1))
            .status());
  }
  result.Update(
      store_->DeleteCountersBefore("budget-day/", now - absl::Hours(48))
          .status());
  result.Update(
      store_->DeleteCountersBefore("budget-month/", now - absl::Hours(24 * 62))
          .status());
  return result;
}

}  // namespace chat
