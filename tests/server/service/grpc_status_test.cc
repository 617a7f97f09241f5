// ToGrpcStatus, the one conversion at the gRPC edge: one row per
// absl::StatusCode, written out against grpc::StatusCode by name so the table
// does not restate the implementation's cast.

#include "server/service/grpc_status.h"

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"
#include "gtest/gtest.h"

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

}  // namespace
}  // namespace chat
