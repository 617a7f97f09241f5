#include "server/engine/error_reason.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace chat {
namespace {

TEST(ErrorReasonTest, ReasonTravelsWithTheStatus) {
  absl::Status status = WithErrorReason(absl::FailedPreconditionError("used"),
                                        "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "used");
  EXPECT_EQ(ErrorReasonOf(status), "IDEMPOTENCY_KEY_REUSED");
  // A copy keeps it: statuses are passed along by value.
  absl::Status copy = status;
  EXPECT_EQ(ErrorReasonOf(copy), "IDEMPOTENCY_KEY_REUSED");
}

TEST(ErrorReasonTest, NoneWithoutOne) {
  EXPECT_EQ(ErrorReasonOf(absl::FailedPreconditionError("x")), std::nullopt);
  EXPECT_EQ(ErrorReasonOf(absl::OkStatus()), std::nullopt);
}

TEST(ErrorReasonTest, OkStatusStaysOk) {
  EXPECT_TRUE(WithErrorReason(absl::OkStatus(), "ANY").ok());
  EXPECT_EQ(ErrorReasonOf(WithErrorReason(absl::OkStatus(), "ANY")),
            std::nullopt);
}

}  // namespace
}  // namespace chat
