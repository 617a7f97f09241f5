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
  absl::Status s = MapProviderHttpError("anthropic", c.http_status, "some_error",
                                        "detail from upstream");
  EXPECT_THAT(s, StatusIs(c.code, AllOf(HasSubstr("anthropic"),
                                        HasSubstr(std::to_string(c.http_status)))));
  EXPECT_EQ(IsRetryableHttpStatus(c.http_status), c.retryable);
}

INSTANTIATE_TEST_SUITE_P(
    Table, MapProviderHttpErrorTest,
    ::testing::Values(
        HttpCase{400, absl::StatusCode::kInvalidArgument, false},
        HttpCase{401, absl::StatusCode::kInternal, false},
        HttpCase{403, absl::StatusCode::kInternal, false},
        HttpCase{404, absl::StatusCode::kFailedPrecondition, false},
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
  absl::Status s = MapProviderHttpError(
      "openai", 401, "invalid_api_key", "Incorrect API key provided: sk-abc***xyz");
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

TEST(MapTransportErrorTest, TimeoutsAreDeadlinesAndTheRestUnavailable) {
  EXPECT_THAT(MapTransportError("openai", CURLE_OPERATION_TIMEDOUT, ""),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("openai")));
  EXPECT_THAT(MapTransportError("openai", CURLE_COULDNT_CONNECT, "refused"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("refused")));
  EXPECT_TRUE(IsRetryableTransportError(CURLE_COULDNT_CONNECT));
  EXPECT_TRUE(IsRetryableTransportError(CURLE_COULDNT_RESOLVE_HOST));
  EXPECT_FALSE(IsRetryableTransportError(CURLE_OPERATION_TIMEDOUT));
  EXPECT_FALSE(IsRetryableTransportError(CURLE_WRITE_ERROR));
}

}  // namespace
}  // namespace chat::llm
