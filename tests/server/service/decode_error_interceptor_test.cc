// LogRateLimiter with explicit times (no clock, no sleeping). The
// interceptor itself is tested through the real binary in
// tests/integration/undecodable_request_test.cc.

#include "server/service/decode_error_interceptor.h"

#include <cstdint>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace chat {
namespace {

TEST(LogRateLimiterTest, OnePerIntervalCountingTheRest) {
  LogRateLimiter limiter(absl::Seconds(1));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  int64_t suppressed = -1;
  ASSERT_TRUE(limiter.Allow(t0, &suppressed));
  EXPECT_EQ(suppressed, 0);
  for (int i = 0; i < 999; ++i) {
    EXPECT_FALSE(limiter.Allow(t0 + absl::Milliseconds(i), &suppressed));
  }
  ASSERT_TRUE(limiter.Allow(t0 + absl::Seconds(1), &suppressed));
  EXPECT_EQ(suppressed, 999);
  ASSERT_TRUE(limiter.Allow(t0 + absl::Seconds(5), &suppressed));
  EXPECT_EQ(suppressed, 0);
}

}  // namespace
}  // namespace chat
