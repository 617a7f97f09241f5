#include "server/service/grpc_metrics_interceptor.h"

#include "gtest/gtest.h"

// The interceptor's counting is checked end to end, through the real
// binary, in tests/integration/metrics_test.cc; here, the label that keeps
// invented method names from growing the series.

namespace chat {
namespace {

TEST(MethodLabelTest, OurServicesAndGrpcsOwnKeepTheirNames) {
  EXPECT_EQ(MethodLabel("/chat.v1.ChatService/Chat"),
            "/chat.v1.ChatService/Chat");
  EXPECT_EQ(MethodLabel("/chat.admin.v1.AdminService/CreateKey"),
            "/chat.admin.v1.AdminService/CreateKey");
  EXPECT_EQ(MethodLabel("/grpc.health.v1.Health/Check"),
            "/grpc.health.v1.Health/Check");
}

TEST(MethodLabelTest, AnythingElseIsOther) {
  EXPECT_EQ(MethodLabel("/x.Y/Z"), "other");
  EXPECT_EQ(MethodLabel(""), "other");
}

TEST(GrpcMetricsTest, RegistersItsSeriesOnce) {
  EXPECT_EQ(&GrpcMetrics::Get(), &GrpcMetrics::Get());
  const std::string text = MetricsRegistry::Default().Render();
  EXPECT_NE(text.find("# TYPE chatd_grpc_requests_total counter"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE chatd_open_streams gauge"), std::string::npos);
}

}  // namespace
}  // namespace chat
