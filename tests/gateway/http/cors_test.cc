// Which origins get CORS headers, and what a preflight answer carries.

#include "gateway/http/cors.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::Contains;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(CorsPolicyTest, NoOriginsConfiguredMeansNoHeaders) {
  CorsPolicy policy("");
  EXPECT_THAT(policy.ResponseHeaders("http://a.example"), IsEmpty());
  EXPECT_THAT(policy.PreflightHeaders("http://a.example", {"GET"}, ""),
              IsEmpty());
}

TEST(CorsPolicyTest, ListedOriginsOnly) {
  CorsPolicy policy(" http://a.example ,http://b.example");
  EXPECT_THAT(
      policy.ResponseHeaders("http://a.example"),
      Contains(Pair("Access-Control-Allow-Origin", "http://a.example")));
  EXPECT_THAT(policy.ResponseHeaders("http://b.example"),
              Contains(Pair("Access-Control-Expose-Headers", "x-request-id")));
  EXPECT_THAT(policy.ResponseHeaders("http://c.example"), IsEmpty());
  EXPECT_THAT(policy.ResponseHeaders(""), IsEmpty());
}

TEST(CorsPolicyTest, StarAllowsAnyOriginAndEchoesIt) {
  CorsPolicy policy("*");
  EXPECT_THAT(
      policy.ResponseHeaders("http://z.example"),
      Contains(Pair("Access-Control-Allow-Origin", "http://z.example")));
  EXPECT_THAT(policy.ResponseHeaders("http://z.example"),
              Contains(Pair("Vary", "Origin")));
}

TEST(CorsPolicyTest, PreflightListsMethodsAndHeaders) {
  CorsPolicy policy("*");
  HttpHeaders asked = policy.PreflightHeaders(
      "http://z.example", {"GET", "DELETE"}, "authorization, content-type");
  EXPECT_THAT(asked, Contains(Pair("Access-Control-Allow-Methods",
                                   "GET, DELETE, OPTIONS")));
  EXPECT_THAT(asked, Contains(Pair("Access-Control-Allow-Headers",
                                   "authorization, content-type")));
  HttpHeaders defaults =
      policy.PreflightHeaders("http://z.example", {"POST"}, "");
  EXPECT_THAT(defaults, Contains(Pair("Access-Control-Allow-Headers",
                                      ::testing::HasSubstr("Authorization"))));
}

// Browsers send x-api-key cross-origin only if the preflight allows it, and
// it is the other header a key can travel in.
TEST(CorsPolicyTest, DefaultPreflightAllowsTheApiKeyHeader) {
  CorsPolicy policy("*");
  EXPECT_THAT(policy.PreflightHeaders("http://z.example", {"POST"}, ""),
              Contains(Pair("Access-Control-Allow-Headers",
                            ::testing::HasSubstr("X-Api-Key"))));
}

}  // namespace
}  // namespace chat::gateway
