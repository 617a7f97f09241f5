// Which headers become gRPC metadata (credentials forwarded, the client's
// address set by the gateway and never by the client), which response
// metadata become headers, and Grpc-Timeout parsing.

#include "gateway/transcode/metadata.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Key;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

TEST(MetadataTest, ForwardsAuthorizationRequestIdAndGrpcMetadata) {
  HttpRequest request;
  request.set("Authorization", "Bearer k");
  request.set("Grpc-Metadata-Tenant", "acme");
  request.set("Grpc-Metadata-Grpc-Internal", "no");
  request.set("Grpc-Metadata-Blob-Bin", "no");
  request.set("Grpc-Metadata-Bad", "a\x01z");
  request.set("Cookie", "secret");
  auto md = ForwardedMetadata(request, "rid-1", "10.1.2.3");
  EXPECT_THAT(md, UnorderedElementsAre(Pair("authorization", "Bearer k"),
                                       Pair("x-request-id", "rid-1"),
                                       Pair("x-forwarded-for", "10.1.2.3"),
                                       Pair("tenant", "acme")));
}

TEST(MetadataTest, ForwardsTheGatewaysTraceparentNotTheClients) {
  HttpRequest request;
  request.set("Grpc-Metadata-Traceparent", "00-forged");
  auto md = ForwardedMetadata(
      request, "rid-1", "10.1.2.3",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  EXPECT_THAT(md, Contains(Pair("traceparent",
                                "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                "00f067aa0ba902b7-01")));
  EXPECT_THAT(md, Not(Contains(Pair("traceparent", "00-forged"))));
}

TEST(GatewayTraceForTest, KeepsAValidTraceWithANewSpan) {
  HttpRequest request;
  request.set("traceparent",
              "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  TraceContext trace = GatewayTraceFor(request);
  EXPECT_EQ(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(trace.flags, "00");
  EXPECT_EQ(trace.parent_id.size(), 16u);
  EXPECT_NE(trace.parent_id, "00f067aa0ba902b7");
}

TEST(GatewayTraceForTest, StartsANewTraceForAMissingOrInvalidOne) {
  HttpRequest none;
  HttpRequest invalid;
  invalid.set("traceparent",
              "00-00000000000000000000000000000000-00f067aa0ba902b7-01");
  HttpRequest twice;
  twice.insert("traceparent",
               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  twice.insert("traceparent",
               "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01");
  for (const HttpRequest* request : {&none, &invalid, &twice}) {
    TraceContext trace = GatewayTraceFor(*request);
    EXPECT_TRUE(ParseTraceparent(FormatTraceparent(trace)).has_value());
    EXPECT_NE(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_NE(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4737");
  }
}

TEST(MetadataTest, ForwardsXApiKey) {
  HttpRequest request;
  request.set("X-Api-Key", "chatd_abc_secret");
  auto md = ForwardedMetadata(request, "rid-1", "192.0.2.7");
  EXPECT_THAT(md, Contains(Pair("x-api-key", "chatd_abc_secret")));
  EXPECT_THAT(md, Not(Contains(Key("authorization"))));
}

// chat-server lets anonymous callers in from loopback only, judging the
// x-forwarded-for the gateway sends: a remote client claiming 127.0.0.1, by
// either header, is still its own address.
TEST(MetadataTest, ClientCannotClaimToBeLoopback) {
  HttpRequest request;
  request.set("X-Forwarded-For", "127.0.0.1");
  request.insert("Grpc-Metadata-X-Forwarded-For", "127.0.0.1");
  request.set("Forwarded", "for=127.0.0.1");
  auto md = ForwardedMetadata(request, "rid-1", "203.0.113.9");
  int forwarded_for = 0;
  for (const auto& [key, value] : md) {
    if (key == "x-forwarded-for") {
      ++forwarded_for;
      EXPECT_EQ(value, "203.0.113.9");
    }
    EXPECT_NE(key, "forwarded");
  }
  EXPECT_EQ(forwarded_for, 1);
}

TEST(MetadataTest, UnknownClientAddressIsNotLoopback) {
  HttpRequest request;
  EXPECT_THAT(ForwardedMetadata(request, "rid-1", ""),
              Contains(Pair("x-forwarded-for", "unknown")));
}

// Credentials and the request id come only from their own headers, so a
// Grpc-Metadata- header cannot add a second key behind the first.
TEST(MetadataTest, ReservedKeysAreNotSetThroughGrpcMetadata) {
  HttpRequest request;
  request.set("Grpc-Metadata-Authorization", "Bearer other");
  request.set("Grpc-Metadata-X-Api-Key", "other");
  request.set("Grpc-Metadata-X-Request-Id", "other");
  auto md = ForwardedMetadata(request, "rid-1", "10.0.0.1");
  EXPECT_THAT(md, UnorderedElementsAre(Pair("x-request-id", "rid-1"),
                                       Pair("x-forwarded-for", "10.0.0.1")));
}

TEST(ResponseHeadersTest, AllowListedKeysBecomeHeaders) {
  GrpcMetadata initial = {
      {"x-ratelimit-limit-requests", "60"},
      {"x-ratelimit-remaining-requests", "59"},
      {"x-ratelimit-reset-requests", "1s"},
      {"x-ratelimit-limit-tokens", "150000"},
      {"x-ratelimit-remaining-tokens", "149984"},
      {"x-ratelimit-reset-tokens", "6m0s"},
      {"x-internal-detail", "not for clients"},
      {"content-type", "application/grpc"},
  };
  GrpcMetadata trailing = {{"retry-after", "2"}};
  EXPECT_THAT(ResponseHeadersFromMetadata(&initial, &trailing),
              ElementsAre(Pair("x-ratelimit-limit-requests", "60"),
                          Pair("x-ratelimit-remaining-requests", "59"),
                          Pair("x-ratelimit-reset-requests", "1s"),
                          Pair("x-ratelimit-limit-tokens", "150000"),
                          Pair("x-ratelimit-remaining-tokens", "149984"),
                          Pair("x-ratelimit-reset-tokens", "6m0s"),
                          Pair("Retry-After", "2")));
}

TEST(ResponseHeadersTest, EachKeyOnceInitialFirst) {
  GrpcMetadata initial = {{"x-ratelimit-remaining-requests", "5"}};
  GrpcMetadata trailing = {{"x-ratelimit-remaining-requests", "4"},
                           {"retry-after", "1"}};
  EXPECT_THAT(ResponseHeadersFromMetadata(&initial, &trailing),
              ElementsAre(Pair("x-ratelimit-remaining-requests", "5"),
                          Pair("Retry-After", "1")));
  EXPECT_THAT(ResponseHeadersFromMetadata(nullptr, &trailing),
              ElementsAre(Pair("x-ratelimit-remaining-requests", "4"),
                          Pair("Retry-After", "1")));
  EXPECT_THAT(ResponseHeadersFromMetadata(nullptr, nullptr), IsEmpty());
}

// A value that could end the header block early (response splitting) or is
// not text is dropped, not passed on.
TEST(ResponseHeadersTest, UnsafeValuesAreDropped) {
  GrpcMetadata trailing = {{"retry-after", "1\r\nSet-Cookie: x=y"},
                           {"x-ratelimit-reset-tokens", ""}};
  EXPECT_THAT(ResponseHeadersFromMetadata(nullptr, &trailing), IsEmpty());
}

TEST(ResponseHeadersTest, AllowListIsOpenAisHeaders) {
  EXPECT_THAT(
      ResponseHeaderAllowList(),
      ElementsAre("x-ratelimit-limit-requests",
                  "x-ratelimit-remaining-requests",
                  "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens",
                  "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
                  "retry-after"));
}

TEST(MetadataTest, RequestIdIsKeptOrMade) {
  HttpRequest request;
  request.set("X-Request-Id", "abc-123");
  EXPECT_EQ(RequestIdFor(request), "abc-123");
  HttpRequest bare;
  std::string made = RequestIdFor(bare);
  EXPECT_EQ(made.size(), 32u);
  EXPECT_NE(made, RequestIdFor(bare));
}

TEST(MetadataTest, GrpcTimeout) {
  EXPECT_EQ(*ParseGrpcTimeout("10S"), absl::Seconds(10));
  EXPECT_EQ(*ParseGrpcTimeout("250m"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseGrpcTimeout("2H"), absl::Hours(2));
  EXPECT_EQ(*ParseGrpcTimeout("5u"), absl::Microseconds(5));
  EXPECT_FALSE(ParseGrpcTimeout("10").ok());
  EXPECT_FALSE(ParseGrpcTimeout("S").ok());
  EXPECT_FALSE(ParseGrpcTimeout("-1S").ok());
  EXPECT_FALSE(ParseGrpcTimeout("123456789S").ok());
  EXPECT_FALSE(ParseGrpcTimeout("10x").ok());
}

}  // namespace
}  // namespace chat::gateway
