// KeyQuotas against the memory quota store (the SQL stores pass the same
// store conformance tests): what is admitted, what is refused and with what
// message, retry time and standing, and that a refusal charges nothing.

#include "server/engine/key_quotas.h"

#include <optional>
#include <string>

#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/memory_key_quota_store.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Optional;

absl::Time At(int year, int month, int day, int hour, int minute, int second) {
  return absl::FromCivil(
      absl::CivilSecond(year, month, day, hour, minute, second),
      absl::UTCTimeZone());
}

class KeyQuotasTest : public ::testing::Test {
 protected:
  store::MemoryQuotaStore store_;
  KeyQuotas quotas_{&store_};
  const absl::Time now_ = At(2026, 11, 30, 15, 0, 45);
};

TEST_F(KeyQuotasTest, RequestsPerMinuteAdmitsExactlyTheLimitThenRefuses) {
  store::KeyLimits limits;
  limits.requests_per_minute = 3;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<QuotaAdmission> admitted =
        quotas_.Admit("k1", limits, 10, now_);
    ASSERT_THAT(admitted, IsOk());
    EXPECT_EQ(admitted->status.limit_requests, 3);
    EXPECT_EQ(admitted->status.remaining_requests, 2 - i);
    EXPECT_EQ(admitted->status.reset_requests, absl::Seconds(15));
  }
  absl::StatusOr<QuotaAdmission> refused =
      quotas_.Admit("k1", limits, 10, now_);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("3 requests per minute")));
  EXPECT_THAT(RetryAfterOf(refused.status()), Optional(absl::Seconds(15)));
  std::optional<RateLimitStatus> standing = RateLimitStatusOf(refused.status());
  ASSERT_TRUE(standing.has_value());
  EXPECT_EQ(standing->remaining_requests, 0);
  // Another key has its own counter; the next minute starts afresh.
  EXPECT_THAT(quotas_.Admit("k2", limits, 10, now_), IsOk());
  EXPECT_THAT(quotas_.Admit("k1", limits, 10, now_ + absl::Seconds(15)),
              IsOk());
}

TEST_F(KeyQuotasTest, AChargedRequestSharesTheTurnsCounterAndNoTokens) {
  store::KeyLimits limits;
  limits.requests_per_minute = 2;
  limits.tokens_per_minute = 100;
  limits.budget_tokens = 100;
  limits.budget_period = store::BudgetPeriod::kDay;
  absl::StatusOr<RateLimitStatus> charged =
      quotas_.ChargeRequest("k1", limits, now_);
  ASSERT_THAT(charged, IsOk());
  // Where the key's requests stand, for the answer's headers; the tokens
  // are not its business.
  EXPECT_EQ(charged->limit_requests, 2);
  EXPECT_EQ(charged->remaining_requests, 1);
  EXPECT_EQ(charged->reset_requests, absl::Seconds(15));
  EXPECT_EQ(charged->limit_tokens, 0);
  absl::StatusOr<QuotaAdmission> turn = quotas_.Admit("k1", limits, 100, now_);
  ASSERT_THAT(turn, IsOk());
  // One request left before the turn, none after; all the tokens were left.
  EXPECT_EQ(turn->status.remaining_requests, 0);
  EXPECT_EQ(turn->status.remaining_tokens, 0);
  absl::Status refused = quotas_.ChargeRequest("k1", limits, now_).status();
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("2 requests per minute")));
  EXPECT_THAT(RetryAfterOf(refused), Optional(absl::Seconds(15)));
  // A key without a request limit is never refused, and spends no tokens.
  store::KeyLimits tokens_only;
  tokens_only.tokens_per_minute = 1;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RateLimitStatus> free =
        quotas_.ChargeRequest("k2", tokens_only, now_);
    ASSERT_THAT(free, IsOk());
    EXPECT_EQ(free->limit_requests, 0);  // No headers to send.
  }
  EXPECT_THAT(quotas_.Admit("k2", tokens_only, 1, now_), IsOk());
}

TEST_F(KeyQuotasTest, AChargedRequestIgnoresTokensAlreadyOverTheLimit) {
  store::KeyLimits limits;
  limits.requests_per_minute = 5;
  limits.tokens_per_minute = 100;
  // A turn that used more than it reserved leaves the minute's tokens over
  // the limit: the next turn is refused, a session write is not.
  absl::StatusOr<QuotaAdmission> turn = quotas_.Admit("k1", limits, 100, now_);
  ASSERT_THAT(turn, IsOk());
  ASSERT_THAT(quotas_.Settle(*turn, 150), IsOk());
  EXPECT_THAT(quotas_.Admit("k1", limits, 1, now_),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(quotas_.ChargeRequest("k1", limits, now_), IsOk());
}

TEST_F(KeyQuotasTest, TokensPerMinuteRefusalUndoesTheRequestCharge) {
  store::KeyLimits limits;
  limits.requests_per_minute = 10;
  limits.tokens_per_minute = 100;
  ASSERT_THAT(quotas_.Admit("k1", limits, 80, now_), IsOk());
  absl::StatusOr<QuotaAdmission> refused =
      quotas_.Admit("k1", limits, 30, now_);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("100 tokens per minute")));
  absl::StatusOr<QuotaAdmission> next = quotas_.Admit("k1", limits, 20, now_);
  ASSERT_THAT(next, IsOk());
  // Two requests charged, not three: the refused one was undone.
  EXPECT_EQ(next->status.remaining_requests, 8);
  EXPECT_EQ(next->status.remaining_tokens, 0);
}

TEST_F(KeyQuotasTest, ATurnLargerThanTheLimitSaysItCanNeverFit) {
  store::KeyLimits limits;
  limits.tokens_per_minute = 100;
  EXPECT_THAT(quotas_.Admit("k1", limits, 101, now_),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr("smaller max_tokens")));
}

TEST_F(KeyQuotasTest, SettleReplacesTheReservationWithTheTokensUsed) {
  store::KeyLimits limits;
  limits.tokens_per_minute = 1000;
  absl::StatusOr<QuotaAdmission> admitted =
      quotas_.Admit("k1", limits, 600, now_);
  ASSERT_THAT(admitted, IsOk());
  ASSERT_THAT(quotas_.Settle(*admitted, 150), IsOk());
  absl::StatusOr<QuotaAdmission> next = quotas_.Admit("k1", limits, 850, now_);
  ASSERT_THAT(next, IsOk());
  EXPECT_EQ(next->status.remaining_tokens, 0);
}

TEST_F(KeyQuotasTest, BudgetRefusalNamesTheBudgetAndWhenItResets) {
  store::KeyLimits limits;
  limits.budget_tokens = 1000;
  limits.budget_period = store::BudgetPeriod::kDay;
  absl::StatusOr<QuotaAdmission> admitted =
      quotas_.Admit("k1", limits, 900, now_);
  ASSERT_THAT(admitted, IsOk());
  absl::StatusOr<QuotaAdmission> refused =
      quotas_.Admit("k1", limits, 200, now_);
  EXPECT_THAT(
      refused,
      StatusIs(absl::StatusCode::kResourceExhausted,
               HasSubstr("budget is 1000 tokens per day, 900 are used and "
                         "this turn may use up to 200; the budget resets at "
                         "2026-12-01T00:00:00")));
  EXPECT_THAT(RetryAfterOf(refused.status()),
              Optional(At(2026, 12, 1, 0, 0, 0) - now_));
  // The next day has a budget of its own.
  EXPECT_THAT(quotas_.Admit("k1", limits, 200, At(2026, 12, 1, 0, 0, 1)),
              IsOk());
}

TEST_F(KeyQuotasTest, MonthlyBudgetResetsOnTheFirstOfTheMonth) {
  store::KeyLimits limits;
  limits.budget_tokens = 100;
  limits.budget_period = store::BudgetPeriod::kMonth;
  ASSERT_THAT(quotas_.Admit("k1", limits, 100, At(2026, 11, 1, 0, 0, 0)),
              IsOk());
  absl::StatusOr<QuotaAdmission> refused = quotas_.Admit("k1", limits, 1, now_);
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted,
                                HasSubstr("per month")));
  EXPECT_THAT(refused.status().message(), HasSubstr("2026-12-01T00:00:00"));
}

TEST_F(KeyQuotasTest, ModelsAndMaxTokensAreCheckedAgainstTheKey) {
  ChatTurnRequest request;
  request.key_limits.allowed_models = {"claude-small"};
  request.key_limits.max_tokens = 500;
  request.model = "claude-large";
  EXPECT_THAT(
      KeyQuotas::CheckRequest(request),
      StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("claude-large")));
  request.model = "claude-small";
  EXPECT_THAT(KeyQuotas::CheckRequest(request), IsOk());
  request.model.reset();  // The server's default.
  EXPECT_THAT(KeyQuotas::CheckRequest(request), IsOk());
  request.max_tokens = 501;
  EXPECT_THAT(KeyQuotas::CheckRequest(request),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("500")));
}

TEST_F(KeyQuotasTest, StreamSlotsAreCountedPerKey) {
  ASSERT_THAT(quotas_.AcquireStream("k1", 2), IsOk());
  ASSERT_THAT(quotas_.AcquireStream("k1", 2), IsOk());
  EXPECT_THAT(
      quotas_.AcquireStream("k1", 2),
      StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("max_streams")));
  EXPECT_THAT(quotas_.AcquireStream("k2", 2), IsOk());
  quotas_.ReleaseStream("k1");
  EXPECT_THAT(quotas_.AcquireStream("k1", 2), IsOk());
}

TEST_F(KeyQuotasTest, FinishedWindowsAreDeletedAndBudgetsKept) {
  store::KeyLimits limits;
  limits.requests_per_minute = 5;
  limits.budget_tokens = 1000;
  limits.budget_period = store::BudgetPeriod::kMonth;
  ASSERT_THAT(quotas_.Admit("k1", limits, 10, now_), IsOk());
  ASSERT_EQ(store_.Read({"rpm/k1", At(2026, 11, 30, 15, 0, 0)}).value_or(-1),
            1);
  // The minute is not over yet: nothing goes.
  ASSERT_THAT(quotas_.DeleteFinishedWindows(now_), IsOk());
  ASSERT_EQ(store_.Read({"rpm/k1", At(2026, 11, 30, 15, 0, 0)}).value_or(-1),
            1);
  ASSERT_THAT(quotas_.DeleteFinishedWindows(now_ + absl::Minutes(3)), IsOk());
  EXPECT_EQ(store_.Read({"rpm/k1", At(2026, 11, 30, 15, 0, 0)}).value_or(-1),
            0);
  EXPECT_EQ(
      store_.Read({"budget-month/k1", At(2026, 11, 1, 0, 0, 0)}).value_or(-1),
      10);
}

}  // namespace
}  // namespace chat
