// ToGrpcStatus, the one conversion at the gRPC edge: one row per
// absl::StatusCode, written out against grpc::StatusCode by name so the table
// does not restate the implementation's cast.

#include "server/service/grpc_status.h"

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/support/status.h"
#include "gtest/gtest.h"
#include "server/engine/error_reason.h"
#include "server/engine/key_quotas.h"

namespace chat {
namespace {

struct Row {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
};

class ToGrpcStatusTest : public ::testing::TestWithParam<Row> {};

TEST_P(ToGrpcStatusTest, KeepsTheCodeAndTheMessage) {
  const Row& row = GetParam();
  const absl::Status in(row.absl_code, "what went wrong: \xe2\x9c\x97");
  const grpc::Status out = ToGrpcStatus(in);
  EXPECT_EQ(out.error_code(), row.grpc_code);
  // An OK status carries no message, in either library.
  EXPECT_EQ(out.error_message(),
            in.ok() ? "" : "what went wrong: \xe2\x9c\x97");
  EXPECT_EQ(out.ok(), in.ok());
}

INSTANTIATE_TEST_SUITE_P(
    EveryCode, ToGrpcStatusTest,
    ::testing::Values(
        Row{absl::StatusCode::kOk, grpc::StatusCode::OK},
        Row{absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
        Row{absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
        Row{absl::StatusCode::kInvalidArgument,
            grpc::StatusCode::INVALID_ARGUMENT},
        Row{absl::StatusCode::kDeadlineExceeded,
            grpc::StatusCode::DEADLINE_EXCEEDED},
        Row{absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
        Row{absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
        Row{absl::StatusCode::kPermissionDenied,
            grpc::StatusCode::PERMISSION_DENIED},
        Row{absl::StatusCode::kResourceExhausted,
            grpc::StatusCode::RESOURCE_EXHAUSTED},
        Row{absl::StatusCode::kFailedPrecondition,
            grpc::StatusCode::FAILED_PRECONDITION},
        Row{absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
        Row{absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
        Row{absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
        Row{absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
        Row{absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
        Row{absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
        Row{absl::StatusCode::kUnauthenticated,
            grpc::StatusCode::UNAUTHENTICATED}),
    [](const ::testing::TestParamInfo<Row>& info) {
      return absl::StatusCodeToString(info.param.absl_code);
    });

// The table above is every code there is: a new one in Abseil must get a row.
TEST(ToGrpcStatusTableTest, CoversEveryAbslCode) {
  for (int code = 0; code <= 16; ++code) {
    EXPECT_NE(absl::StatusCodeToString(static_cast<absl::StatusCode>(code)), "")
        << code;
  }
  EXPECT_EQ(absl::StatusCodeToString(static_cast<absl::StatusCode>(17)), "");
}

// A code outside google.rpc.Code reads as kUnknown in Abseil, and so reaches
// the client as UNKNOWN rather than as a number gRPC does not define.
TEST(ToGrpcStatusOutOfTableTest, ANonCanonicalCodeBecomesUnknown) {
  const absl::Status odd(static_cast<absl::StatusCode>(42), "odd");
  EXPECT_EQ(ToGrpcStatus(odd).error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_EQ(ToGrpcStatus(odd).error_message(), "odd");
}

// The status-details trailer of `status`, parsed; fails the test if absent.
google::rpc::Status DetailsOf(const grpc::Status& status) {
  google::rpc::Status details;
  EXPECT_TRUE(details.ParseFromString(status.error_details()));
  return details;
}

TEST(ToGrpcStatusDetailsTest, PlainStatusHasNoDetails) {
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("x")).error_details(),
            "");
}

TEST(ToGrpcStatusDetailsTest, ReasonBecomesErrorInfo) {
  const grpc::Status out = ToGrpcStatus(WithErrorReason(
      absl::FailedPreconditionError("reused"), "IDEMPOTENCY_KEY_REUSED"));
  EXPECT_EQ(out.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(out.error_message(), "reused");
  google::rpc::Status details = DetailsOf(out);
  EXPECT_EQ(details.code(), 9);
  EXPECT_EQ(details.message(), "reused");
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(info.domain(), "chatd");
}

TEST(ToGrpcStatusDetailsTest, RetryInfoAndErrorInfoTogether) {
  const grpc::Status out = ToGrpcStatus(WithErrorReason(
      RateLimitedError("slow down", absl::Milliseconds(1500), {}),
      "SOME_LIMIT"));
  google::rpc::Status details = DetailsOf(out);
  ASSERT_EQ(details.details_size(), 2);
  google::rpc::RetryInfo retry;
  ASSERT_TRUE(details.details(0).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 1);
  EXPECT_EQ(retry.retry_delay().nanos(), 500000000);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(1).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "SOME_LIMIT");
}

}  // namespace
}  // namespace chat
