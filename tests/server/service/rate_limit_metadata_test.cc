// The rate-limit metadata: OpenAI's header names and value shapes, and what a
// refusal adds.

#include "server/service/rate_limit_metadata.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(FormatResetDurationTest, RoundsUpInTheShapeOfGoDurations) {
  EXPECT_EQ(FormatResetDuration(absl::ZeroDuration()), "0ms");
  EXPECT_EQ(FormatResetDuration(absl::Microseconds(16500)), "17ms");
  EXPECT_EQ(FormatResetDuration(absl::Seconds(1)), "1s");
  EXPECT_EQ(FormatResetDuration(absl::Milliseconds(1001)), "2s");
  EXPECT_EQ(FormatResetDuration(absl::Seconds(59)), "59s");
  EXPECT_EQ(FormatResetDuration(absl::Minutes(6)), "6m0s");
  EXPECT_EQ(FormatResetDuration(absl::Seconds(3725)), "62m5s");
}

TEST(RateLimitMetadataTest, NamesOnlyTheKindsOfLimitTheKeyHas) {
  RateLimitStatus requests_only;
  requests_only.limit_requests = 60;
  requests_only.remaining_requests = 59;
  requests_only.reset_requests = absl::Seconds(31);
  EXPECT_THAT(RateLimitMetadata(requests_only),
              ElementsAre(Pair("x-ratelimit-limit-requests", "60"),
                          Pair("x-ratelimit-remaining-requests", "59"),
                          Pair("x-ratelimit-reset-requests", "31s")));
  RateLimitStatus tokens_only;
  tokens_only.limit_tokens = 1000;
  tokens_only.remaining_tokens = 0;
  tokens_only.reset_tokens = absl::Milliseconds(250);
  EXPECT_THAT(RateLimitMetadata(tokens_only),
              ElementsAre(Pair("x-ratelimit-limit-tokens", "1000"),
                          Pair("x-ratelimit-remaining-tokens", "0"),
                          Pair("x-ratelimit-reset-tokens", "250ms")));
  EXPECT_THAT(RateLimitMetadata(RateLimitStatus{}), IsEmpty());
}

TEST(RefusalMetadataTest, AddsRetryAfterInWholeSecondsAtLeastOne) {
  RateLimitStatus standing;
  standing.limit_requests = 2;
  standing.reset_requests = absl::Milliseconds(1500);
  EXPECT_THAT(RefusalMetadata(RateLimitedError(
                  "slow down", absl::Milliseconds(1500), standing)),
              ElementsAre(Pair("x-ratelimit-limit-requests", "2"),
                          Pair("x-ratelimit-remaining-requests", "0"),
                          Pair("x-ratelimit-reset-requests", "2s"),
                          Pair("retry-after", "2")));
  EXPECT_THAT(RefusalMetadata(RateLimitedError("now", absl::ZeroDuration(),
                                               RateLimitStatus{})),
              ElementsAre(Pair("retry-after", "1")));
}

TEST(RefusalMetadataTest, OtherStatusesCarryNone) {
  EXPECT_THAT(RefusalMetadata(absl::ResourceExhaustedError("too big")),
              IsEmpty());
  EXPECT_THAT(RefusalMetadata(absl::NotFoundError("no")), IsEmpty());
}

}  // namespace
}  // namespace chat
