// CircuitBreaker on a fake clock: closed until the threshold, open for the
// cooldown, then exactly one probe whose outcome closes or reopens it.

#include "server/llm/circuit_breaker.h"

#include <memory>

#include "gtest/gtest.h"

namespace chat::llm {
namespace {

using Admission = CircuitBreaker::Admission;
using Outcome = CircuitBreaker::Outcome;

class CircuitBreakerTest : public ::testing::Test {
 protected:
  CircuitBreakerTest() {
    CircuitBreakerOptions options;
    options.failure_threshold = 3;
    options.cooldown = absl::Seconds(30);
    options.now = [this] { return now_; };
    breaker_ = std::make_unique<CircuitBreaker>(std::move(options));
  }

  // Fails `n` calls admitted while closed.
  void Fail(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(breaker_->TryAdmit(), Admission::kClosed);
      breaker_->Record(Admission::kClosed, Outcome::kFailure);
    }
  }

  absl::Time now_ = absl::FromUnixSeconds(1700000000);
  std::unique_ptr<CircuitBreaker> breaker_;
};

TEST_F(CircuitBreakerTest, OpensAfterThresholdConsecutiveFailures) {
  Fail(2);
  EXPECT_FALSE(breaker_->IsOpen());
  Fail(1);
  EXPECT_TRUE(breaker_->IsOpen());
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kRefused);
  now_ += absl::Seconds(29);
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kRefused);
}

TEST_F(CircuitBreakerTest, ASuccessResetsTheCount) {
  Fail(2);
  breaker_->Record(Admission::kClosed, Outcome::kSuccess);
  Fail(2);
  EXPECT_FALSE(breaker_->IsOpen());
}

TEST_F(CircuitBreakerTest, NeutralOutcomesNeitherCountNorReset) {
  Fail(2);
  breaker_->Record(Admission::kClosed, Outcome::kNeutral);
  EXPECT_FALSE(breaker_->IsOpen());
  Fail(1);
  EXPECT_TRUE(breaker_->IsOpen());
}

TEST_F(CircuitBreakerTest,
       AfterTheCooldownOneProbeGoesThroughAndSuccessCloses) {
  Fail(3);
  now_ += absl::Seconds(30);
  EXPECT_FALSE(breaker_->IsOpen());
  ASSERT_EQ(breaker_->TryAdmit(), Admission::kProbe);
  // Only one probe at a time.
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kRefused);
  breaker_->Record(Admission::kProbe, Outcome::kSuccess);
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kClosed);
  // Closed afresh: the threshold counts from zero again.
  Fail(2);
  EXPECT_FALSE(breaker_->IsOpen());
}

TEST_F(CircuitBreakerTest, AFailedProbeReopensForAnotherCooldown) {
  Fail(3);
  now_ += absl::Seconds(31);
  ASSERT_EQ(breaker_->TryAdmit(), Admission::kProbe);
  breaker_->Record(Admission::kProbe, Outcome::kFailure);
  EXPECT_TRUE(breaker_->IsOpen());
  now_ += absl::Seconds(29);
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kRefused);
  now_ += absl::Seconds(1);
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kProbe);
}

TEST_F(CircuitBreakerTest, ANeutralProbeLetsTheNextCallProbe) {
  Fail(3);
  now_ += absl::Seconds(30);
  ASSERT_EQ(breaker_->TryAdmit(), Admission::kProbe);
  breaker_->Record(Admission::kProbe, Outcome::kNeutral);
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kProbe);
}

TEST_F(CircuitBreakerTest, ForcedCallsNeverExtendTheCooldownButSuccessCloses) {
  Fail(3);
  ASSERT_EQ(breaker_->Force(), Admission::kForced);
  now_ += absl::Seconds(10);
  breaker_->Record(Admission::kForced, Outcome::kFailure);
  now_ += absl::Seconds(20);
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kProbe);
  breaker_->Record(Admission::kProbe, Outcome::kFailure);
  ASSERT_EQ(breaker_->Force(), Admission::kForced);
  breaker_->Record(Admission::kForced, Outcome::kSuccess);
  EXPECT_FALSE(breaker_->IsOpen());
  EXPECT_EQ(breaker_->Force(), Admission::kClosed);
}

TEST_F(CircuitBreakerTest, LateFailuresOfCallsAdmittedBeforeOpeningAreIgnored) {
  // Five calls admitted while closed; all fail, the last two after the
  // third opened the breaker.
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(breaker_->TryAdmit(), Admission::kClosed);
  for (int i = 0; i < 3; ++i)
    breaker_->Record(Admission::kClosed, Outcome::kFailure);
  now_ += absl::Seconds(20);
  for (int i = 0; i < 2; ++i)
    breaker_->Record(Admission::kClosed, Outcome::kFailure);
  now_ += absl::Seconds(10);
  EXPECT_EQ(breaker_->TryAdmit(), Admission::kProbe);
}

}  // namespace
}  // namespace chat::llm
