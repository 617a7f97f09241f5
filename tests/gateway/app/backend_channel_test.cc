// --backend values and the gRPC targets they become.

#include "gateway/app/backend_channel.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace chat::gateway {
namespace {

TEST(BackendTargetTest, OneAddress) {
  EXPECT_EQ(*BackendTarget("127.0.0.1:50051"), "ipv4:127.0.0.1:50051");
  EXPECT_EQ(*BackendTarget("localhost:50051"), "dns:///localhost:50051");
  EXPECT_EQ(*BackendTarget("[::1]:50051"), "ipv6:[::1]:50051");
  EXPECT_EQ(*BackendTarget("dns:///chat:50051"), "dns:///chat:50051");
}

TEST(BackendTargetTest, SeveralAddresses) {
  EXPECT_EQ(*BackendTarget("127.0.0.1:1, 127.0.0.1:2"),
            "ipv4:127.0.0.1:1,127.0.0.1:2");
  EXPECT_FALSE(BackendTarget("a:1,b:2").ok());
  EXPECT_FALSE(BackendTarget("").ok());
}

TEST(BackendServiceConfigTest, RoundRobinWithHealthChecks) {
  auto config = nlohmann::json::parse(
      BackendServiceConfig("chat.v1.ChatService"), nullptr, false);
  ASSERT_FALSE(config.is_discarded());
  EXPECT_EQ(config["loadBalancingConfig"][0].count("round_robin"), 1u);
  EXPECT_EQ(config["healthCheckConfig"]["serviceName"], "chat.v1.ChatService");
}

}  // namespace
}  // namespace chat::gateway
