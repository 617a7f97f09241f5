// The pure pieces of the HTTP provider: backoff, retry-after and error
// bodies. The transfers themselves are tested end to end against the fake
// upstream (tests/integration/llm_provider_test.cc).

#include "server/llm/http_streaming_provider.h"

#include "gtest/gtest.h"

namespace chat::llm {
namespace {

TEST(RetryDelayTest, DoublesWithJitterAndCap) {
  HttpProviderOptions options;
  options.retry_base_delay = absl::Milliseconds(100);
  options.retry_max_delay = absl::Milliseconds(350);
  EXPECT_EQ(RetryDelay(1, options, 0.0, std::nullopt), absl::Milliseconds(50));
  EXPECT_EQ(RetryDelay(1, options, 1.0, std::nullopt), absl::Milliseconds(100));
  EXPECT_EQ(RetryDelay(2, options, 1.0, std::nullopt), absl::Milliseconds(200));
  EXPECT_EQ(RetryDelay(3, options, 1.0, std::nullopt), absl::Milliseconds(350));
  EXPECT_EQ(RetryDelay(30, options, 1.0, std::nullopt),
            absl::Milliseconds(350));
}

TEST(RetryDelayTest, HonoursRetryAfter) {
  HttpProviderOptions options;
  options.retry_base_delay = absl::Milliseconds(100);
  EXPECT_EQ(RetryDelay(1, options, 0.5, absl::Seconds(2)), absl::Seconds(2));
  EXPECT_EQ(RetryDelay(1, options, 1.0, absl::Milliseconds(10)),
            absl::Milliseconds(100));
}

TEST(ParseRetryAfterTest, SecondsMillisecondsAndDates) {
  EXPECT_EQ(ParseRetryAfter({{"retry-after", "3"}}), absl::Seconds(3));
  EXPECT_EQ(ParseRetryAfter({{"retry-after", "0.5"}}), absl::Milliseconds(500));
  EXPECT_EQ(ParseRetryAfter({{"retry-after-ms", "250"}, {"retry-after", "1"}}),
            absl::Milliseconds(250));
  EXPECT_EQ(ParseRetryAfter({{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}),
            std::nullopt);
  EXPECT_EQ(ParseRetryAfter({}), std::nullopt);
}

TEST(ParseErrorBodyTest, AnthropicOpenAiAndPlainShapes) {
  std::string type, message;
  ParseErrorBody(
      R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})",
      &type, &message);
  EXPECT_EQ(type, "overloaded_error");
  EXPECT_EQ(message, "Overloaded");

  type.clear();
  message.clear();
  ParseErrorBody(
      R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})",
      &type, &message);
  EXPECT_EQ(type, "rate_limit_exceeded");
  EXPECT_EQ(message, "Rate limit reached");

  type.clear();
  message.clear();
  ParseErrorBody(R"({"error":"model 'x' not found"})", &type, &message);
  EXPECT_EQ(type, "");
  EXPECT_EQ(message, "model 'x' not found");

  type.clear();
  message.clear();
  ParseErrorBody("<html>Bad Gateway</html>", &type, &message);
  EXPECT_EQ(type, "");
  EXPECT_EQ(message, "");
}

}  // namespace
}  // namespace chat::llm
