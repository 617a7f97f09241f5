// Which headers become gRPC metadata, and Grpc-Timeout parsing.

#include "gateway/transcode/metadata.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::Contains;
using ::testing::Not;
using ::testing::Pair;

TEST(MetadataTest, ForwardsAuthorizationRequestIdAndGrpcMetadata) {
  HttpRequest request;
  request.set("Authorization", "Bearer k");
  request.set("Grpc-Metadata-Tenant", "acme");
  request.set("Grpc-Metadata-Grpc-Internal", "no");
  request.set("Grpc-Metadata-Blob-Bin", "no");
  request.set("Grpc-Metadata-Bad", "a\x01z");
  request.set("Cookie", "secret");
  auto md = ForwardedMetadata(request, "rid-1");
  EXPECT_THAT(md, Contains(Pair("authorization", "Bearer k")));
  EXPECT_THAT(md, Contains(Pair("x-request-id", "rid-1")));
  EXPECT_THAT(md, Contains(Pair("tenant", "acme")));
  EXPECT_EQ(md.size(), 3u);
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
