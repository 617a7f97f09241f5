// The gRPC -> HTTP table, one row per code, as docs/ARCHITECTURE.md lists it.

#include "gateway/transcode/status_mapping.h"

#include <string>

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

struct Row {
  grpc::StatusCode code;
  int http_status;
  std::string name;
};

class StatusMappingTest : public ::testing::TestWithParam<Row> {};

TEST_P(StatusMappingTest, MapsToHttpStatus) {
  EXPECT_EQ(HttpStatusFromGrpc(static_cast<int>(GetParam().code)),
            GetParam().http_status);
  HttpError error = ToHttpError(grpc::Status(GetParam().code, "why"));
  EXPECT_EQ(error.http_status, GetParam().http_status);
  EXPECT_EQ(error.grpc_code, static_cast<int>(GetParam().code));
  EXPECT_EQ(error.message, "why");
}

INSTANTIATE_TEST_SUITE_P(
    AllCodes, StatusMappingTest,
    ::testing::Values(
        Row{grpc::StatusCode::OK, 200, "Ok"},
        Row{grpc::StatusCode::INVALID_ARGUMENT, 400, "InvalidArgument"},
        Row{grpc::StatusCode::FAILED_PRECONDITION, 400, "FailedPrecondition"},
        Row{grpc::StatusCode::OUT_OF_RANGE, 400, "OutOfRange"},
        Row{grpc::StatusCode::UNAUTHENTICATED, 401, "Unauthenticated"},
        Row{grpc::StatusCode::PERMISSION_DENIED, 403, "PermissionDenied"},
        Row{grpc::StatusCode::NOT_FOUND, 404, "NotFound"},
        Row{grpc::StatusCode::ABORTED, 409, "Aborted"},
        Row{grpc::StatusCode::ALREADY_EXISTS, 409, "AlreadyExists"},
        Row{grpc::StatusCode::RESOURCE_EXHAUSTED, 429, "ResourceExhausted"},
        Row{grpc::StatusCode::CANCELLED, 499, "Cancelled"},
        Row{grpc::StatusCode::UNKNOWN, 500, "Unknown"},
        Row{grpc::StatusCode::INTERNAL, 500, "Internal"},
        Row{grpc::StatusCode::DATA_LOSS, 500, "DataLoss"},
        Row{grpc::StatusCode::UNIMPLEMENTED, 501, "Unimplemented"},
        Row{grpc::StatusCode::UNAVAILABLE, 503, "Unavailable"},
        Row{grpc::StatusCode::DEADLINE_EXCEEDED, 504, "DeadlineExceeded"}),
    [](const ::testing::TestParamInfo<Row>& info) { return info.param.name; });

TEST(ToHttpErrorTest, ChannelFailuresHideInternalAddresses) {
  HttpError error = ToHttpError(
      grpc::Status(grpc::StatusCode::UNAVAILABLE,
                   "connections to all backends failing; last error: UNKNOWN: "
                   "ipv4:10.1.2.3:50051: Failed to connect to remote host: "
                   "Connection refused"));
  EXPECT_EQ(error.http_status, 503);
  EXPECT_EQ(error.grpc_code, 14);
  EXPECT_EQ(error.message, "chat-server is unavailable; retry later");
  // chat-server's own UNAVAILABLE messages are meant for clients and pass.
  HttpError own =
      ToHttpError(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                               "postgres: cannot connect: server closed"));
  EXPECT_EQ(own.message, "postgres: cannot connect: server closed");
  EXPECT_FALSE(IsChannelFailure(grpc::Status(
      grpc::StatusCode::INTERNAL, "connections to all backends failing")));
}

TEST(StatusMappingTest, UndefinedCodeIs500) {
  EXPECT_EQ(HttpStatusFromGrpc(99), 500);
}

TEST(ErrorBodyTest, IsGoogleRpcStatusShaped) {
  EXPECT_EQ(ErrorBody(ToHttpError(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                               "session \"x\" not found"))),
            R"({"code":5,"message":"session \"x\" not found","details":[]})");
}

TEST(ErrorBodyTest, InvalidUtf8DoesNotThrow) {
  HttpError error =
      MakeHttpError(500, grpc::StatusCode::INTERNAL, "bad \xff byte");
  EXPECT_THAT(ErrorBody(error), ::testing::HasSubstr("\"code\":13"));
}

// A status as chat-server sends one with google.rpc.ErrorInfo `reason`.
grpc::Status WithErrorInfo(grpc::StatusCode code, const std::string& message,
                           const std::string& reason) {
  google::rpc::ErrorInfo info;
  info.set_reason(reason);
  info.set_domain("chatd");
  google::rpc::Status details;
  details.set_code(static_cast<int>(code));
  details.set_message(message);
  details.add_details()->PackFrom(google::rpc::RetryInfo());
  details.add_details()->PackFrom(info);
  return grpc::Status(code, message, details.SerializeAsString());
}

TEST(ErrorInfoTest, ReusedIdempotencyKeyIsAConflict) {
  HttpError error =
      ToHttpError(WithErrorInfo(grpc::StatusCode::FAILED_PRECONDITION, "reused",
                                "IDEMPOTENCY_KEY_REUSED"));
  EXPECT_EQ(error.http_status, 409);
  EXPECT_EQ(error.grpc_code, 9);
  EXPECT_EQ(ErrorBody(error),
            R"({"code":9,"message":"reused","details":[{"@type":)"
            R"("type.googleapis.com/google.rpc.ErrorInfo","reason":)"
            R"("IDEMPOTENCY_KEY_REUSED","domain":"chatd"}]})");
}

TEST(ErrorInfoTest, OtherReasonsKeepTheCodesRow) {
  HttpError error = ToHttpError(WithErrorInfo(
      grpc::StatusCode::FAILED_PRECONDITION, "no", "SOMETHING_ELSE"));
  EXPECT_EQ(error.http_status, 400);
  EXPECT_EQ(error.reason, "SOMETHING_ELSE");
  // The reason alone, with another code, changes nothing either.
  EXPECT_EQ(ToHttpError(WithErrorInfo(grpc::StatusCode::INVALID_ARGUMENT, "x",
                                      "IDEMPOTENCY_KEY_REUSED"))
                .http_status,
            400);
}

TEST(ErrorInfoTest, UnparsableDetailsAreIgnored) {
  HttpError error = ToHttpError(grpc::Status(
      grpc::StatusCode::FAILED_PRECONDITION, "x", "\xff not a proto"));
  EXPECT_EQ(error.http_status, 400);
  EXPECT_EQ(error.reason, "");
  EXPECT_EQ(ErrorBody(error), R"({"code":9,"message":"x","details":[]})");
}

// RFC 9110 section 15.5.2: a 401 says how to authenticate; nothing else
// gets extra headers.
TEST(ErrorHeadersTest, UnauthenticatedAsksForABearerKey) {
  EXPECT_THAT(
      ErrorHeaders(ToHttpError(
          grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing API key"))),
      ::testing::ElementsAre(::testing::Pair("WWW-Authenticate", "Bearer")));
  EXPECT_THAT(ErrorHeaders(ToHttpError(
                  grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"))),
              ::testing::IsEmpty());
  EXPECT_THAT(ErrorHeaders(ToHttpError(grpc::Status(
                  grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down"))),
              ::testing::IsEmpty());
}

}  // namespace
}  // namespace chat::gateway
