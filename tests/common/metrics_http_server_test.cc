#include "common/metrics_http_server.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/status_matchers.h"

// Strategy: the request-to-answer mapping is a pure function, checked as a
// table; a real listener on a port the OS picks is then scraped with curl,
// as Prometheus would.

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const MetricsHttpServer::Render kRender = [] {
  return std::string("chatd_x 1\n");
};

TEST(MetricsHttpResponseTest, AnswersMetricsAndNothingElse) {
  EXPECT_EQ(MetricsHttpResponse("GET /metrics HTTP/1.1", kRender),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: 10\r\nConnection: close\r\n\r\nchatd_x 1\n");
  EXPECT_THAT(MetricsHttpResponse("GET /metrics?x=1 HTTP/1.0", kRender),
              StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(MetricsHttpResponse("HEAD /metrics HTTP/1.1", kRender),
              HasSubstr("Content-Length: 10\r\nConnection: close\r\n\r\n"));
  EXPECT_THAT(MetricsHttpResponse("HEAD /metrics HTTP/1.1", kRender),
              Not(HasSubstr("chatd_x")));
  EXPECT_THAT(MetricsHttpResponse("GET / HTTP/1.1", kRender),
              StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(MetricsHttpResponse("POST /metrics HTTP/1.1", kRender),
              StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(MetricsHttpResponse("garbage", kRender),
              StartsWith("HTTP/1.1 400 Bad Request\r\n"));
}

TEST(MetricsHttpServerTest, ServesMetricsOverHttp) {
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start("127.0.0.1", 0, kRender);
  ASSERT_THAT(server, IsOk());
  ASSERT_GT((*server)->port(), 0);
  absl::StatusOr<std::string> body =
      testing::HttpGetBody((*server)->port(), "/metrics");
  ASSERT_THAT(body, IsOk());
  EXPECT_EQ(*body, "chatd_x 1\n");
  // A second request: the listener keeps accepting.
  EXPECT_THAT(testing::HttpGetBody((*server)->port(), "/other"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(MetricsHttpServerTest, BusyPortIsUnavailable) {
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> first =
      MetricsHttpServer::Start("127.0.0.1", 0, kRender);
  ASSERT_THAT(first, IsOk());
  EXPECT_THAT(MetricsHttpServer::Start("127.0.0.1", (*first)->port(), kRender),
              StatusIs(absl::StatusCode::kUnavailable));
}

}  // namespace
}  // namespace chat
