// LocalCancel, a local call's cancel as the gateway holds it: cancels that
// come before the call's own cancel is known are replayed to it, in order,
// and a deadline cancel is recorded before the call hears of it.

#include "gateway/app/local_method.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::ElementsAre;

TEST(LocalCancelTest, CancelsBeforeTheCallStartedAreReplayedInOrder) {
  LocalCancel cancel;
  cancel.Cancel(LocalCancelReason::kClientGone);
  cancel.Cancel(LocalCancelReason::kDeadline);
  std::vector<LocalCancelReason> heard;
  cancel.Set([&heard](LocalCancelReason reason) { heard.push_back(reason); });
  EXPECT_THAT(heard, ElementsAre(LocalCancelReason::kClientGone,
                                 LocalCancelReason::kDeadline));
  // Later ones reach the call at once.
  cancel.Cancel(LocalCancelReason::kShutdown);
  EXPECT_THAT(heard, ElementsAre(LocalCancelReason::kClientGone,
                                 LocalCancelReason::kDeadline,
                                 LocalCancelReason::kShutdown));
}

TEST(LocalCancelTest, TheDeadlineIsRecordedBeforeTheCallHearsOfIt) {
  LocalCancel cancel;
  std::vector<bool> recorded;
  cancel.Set([&](LocalCancelReason) {
    // The call may answer inside its cancel; its answer is mapped then.
    recorded.push_back(cancel.deadline_passed());
  });
  cancel.Cancel(LocalCancelReason::kClientGone);
  EXPECT_FALSE(cancel.deadline_passed());
  cancel.Cancel(LocalCancelReason::kDeadline);
  EXPECT_TRUE(cancel.deadline_passed());
  EXPECT_THAT(recorded, ElementsAre(false, true));
}

TEST(LocalCancelTest, AShutdownIsNotADeadline) {
  LocalCancel cancel;
  cancel.Cancel(LocalCancelReason::kShutdown);
  int heard = 0;
  cancel.Set([&heard](LocalCancelReason) { ++heard; });
  EXPECT_EQ(heard, 1);
  EXPECT_FALSE(cancel.deadline_passed());
}

TEST(LocalCancelTest, ACallWithoutACancelIsLeftAlone) {
  LocalCancel cancel;
  cancel.Cancel(LocalCancelReason::kClientGone);
  cancel.Set(nullptr);
  cancel.Cancel(LocalCancelReason::kDeadline);
  EXPECT_TRUE(cancel.deadline_passed());
}

}  // namespace
}  // namespace chat::gateway
