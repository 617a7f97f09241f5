// MapProviderHttpError is the one place upstream answers become our codes.
// Strategy: one table row per upstream status, checking the code and that
// the message names the provider and status but never the key.

#include "server/llm/provider_error.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::llm {
namespace {

using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

struct HttpCase {
  int http_status;
  absl::StatusCode code;
  bool retryable;
};

class MapProviderHttpErrorTest : public ::testing::TestWithParam<HttpCase> {};

TEST_P(MapProviderHttpErrorTest, MapsStatusAndNamesProvider) {
  const HttpCase& c = GetParam();
  absl::Status s = MapProviderHttpError("anthropic", c.http_status,
                                        "some_error", "detail from upstream");
  EXPECT_THAT(
      s, StatusIs(c.code, AllOf(HasSubstr("anthropic"),
                                HasSubstr(std::to_string(c.http_status)))));
  EXPECT_EQ(IsRetryableHttpStatus(c.http_status), c.retryable);
}

INSTANTIATE_TEST_SUITE_P(
    Table, MapProviderHttpErrorTest,
    ::testing::Values(HttpCase{400, absl::StatusCode::kInvalidArgument, false},
                      HttpCase{401, absl::StatusCode::kInternal, false},
                      HttpCase{403, absl::StatusCode::kInternal, false},
                      HttpCase{404, absl::StatusCode::kFailedPrecondition,
                               false},
                      HttpCase{408, absl::StatusCode::kDeadlineExceeded, false},
                      HttpCase{413, absl::StatusCode::kInvalidArgument, false},
                      HttpCase{422, absl::StatusCode::kInvalidArgument, false},
                      HttpCase{429, absl::StatusCode::kResourceExhausted, true},
                      HttpCase{500, absl::StatusCode::kUnavailable, true},
                      HttpCase{502, absl::StatusCode::kUnavailable, true},
                      HttpCase{503, absl::StatusCode::kUnavailable, true},
                      HttpCase{504, absl::StatusCode::kDeadlineExceeded, false},
                      HttpCase{529, absl::StatusCode::kUnavailable, true},
                      HttpCase{599, absl::StatusCode::kUnavailable, false},
                      HttpCase{302, absl::StatusCode::kUnknown, false}),
    [](const ::testing::TestParamInfo<HttpCase>& info) {
      return "Http" + std::to_string(info.param.http_status);
    });

TEST(MapProviderHttpErrorTest, CredentialErrorsNeverQuoteTheUpstreamMessage) {
  // OpenAI's 401 message quotes part of the key.
  absl::Status s =
      MapProviderHttpError("openai", 401, "invalid_api_key",
                           "Incorrect API key provided: sk-abc***xyz");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInternal,
                          AllOf(HasSubstr("openai credentials"),
                                Not(HasSubstr("sk-abc")))));
}

TEST(MapProviderHttpErrorTest, BadRequestsSayWhatToFix) {
  EXPECT_THAT(MapProviderHttpError("anthropic", 400, "invalid_request_error",
                                   "max_tokens: 100000 > 64000"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_tokens: 100000 > 64000")));
}

TEST(HttpStatusForErrorTypeTest, KnowsBothProvidersTypes) {
  EXPECT_EQ(HttpStatusForErrorType("overloaded_error"), 529);
  EXPECT_EQ(HttpStatusForErrorType("api_error"), 500);
  EXPECT_EQ(HttpStatusForErrorType("rate_limit_error"), 429);
  EXPECT_EQ(HttpStatusForErrorType("invalid_request_error"), 400);
  EXPECT_EQ(HttpStatusForErrorType("authentication_error"), 401);
  EXPECT_EQ(HttpStatusForErrorType("rate_limit_exceeded"), 429);
  EXPECT_EQ(HttpStatusForErrorType("something_new"), 500);
}

struct TransportCase {
  std::string name;
  TransportFailure failure;
  absl::StatusCode code;
  bool retryable;
};

TransportFailure Failure(CURLcode code, bool got_response = false,
                         bool stalled = false, bool deadline_passed = false) {
  TransportFailure f;
  f.code = code;
  f.message = curl_easy_strerror(code);
  f.got_response = got_response;
  f.stalled = stalled;
  f.deadline_passed = deadline_passed;
  return f;
}

class MapTransportErrorTest : public ::testing::TestWithParam<TransportCase> {};

TEST_P(MapTransportErrorTest, MapsAndClassifies) {
  const TransportCase& c = GetParam();
  EXPECT_THAT(MapTransportError("openai", c.failure),
              StatusIs(c.code, HasSubstr("openai request failed")));
  EXPECT_EQ(IsRetryableTransportFailure(c.failure), c.retryable);
}

INSTANTIATE_TEST_SUITE_P(
    Table, MapTransportErrorTest,
    ::testing::Values(
        TransportCase{"Refused", Failure(CURLE_COULDNT_CONNECT),
                      absl::StatusCode::kUnavailable, true},
        TransportCase{"Unresolved", Failure(CURLE_COULDNT_RESOLVE_HOST),
                      absl::StatusCode::kUnavailable, true},
        TransportCase{"TlsHandshake", Failure(CURLE_SSL_CONNECT_ERROR),
                      absl::StatusCode::kUnavailable, true},
        TransportCase{"StaleKeepAlive", Failure(CURLE_GOT_NOTHING),
                      absl::StatusCode::kUnavailable, true},
        TransportCase{"ConnectTimeout", Failure(CURLE_OPERATION_TIMEDOUT),
                      absl::StatusCode::kUnavailable, true},
        TransportCase{
            "FirstByteTimeout",
            Failure(CURLE_OPERATION_TIMEDOUT, false, /*stalled=*/true),
            absl::StatusCode::kDeadlineExceeded, false},
        TransportCase{"IdleTimeout",
                      Failure(CURLE_OPERATION_TIMEDOUT, true, /*stalled=*/true),
                      absl::StatusCode::kDeadlineExceeded, false},
        TransportCase{"CallDeadline",
                      Failure(CURLE_OPERATION_TIMEDOUT, false, false,
                              /*deadline_passed=*/true),
                      absl::StatusCode::kDeadlineExceeded, false},
        TransportCase{"ResetMidResponse",
                      Failure(CURLE_RECV_ERROR, /*got_response=*/true),
                      absl::StatusCode::kUnavailable, false},
        TransportCase{"SendErrorAfterResponse",
                      Failure(CURLE_SEND_ERROR, /*got_response=*/true),
                      absl::StatusCode::kUnavailable, false}),
    [](const ::testing::TestParamInfo<TransportCase>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace chat::llm
