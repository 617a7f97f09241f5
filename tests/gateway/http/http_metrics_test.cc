#include "gateway/http/http_metrics.h"

#include <string>

#include "gtest/gtest.h"

// The server's updates (requests by route, streams, connections) are
// checked through the real binary in tests/integration/metrics_test.cc;
// here, the registration.

namespace chat::gateway {
namespace {

TEST(GatewayHttpMetricsTest, RegistersItsSeriesOnce) {
  EXPECT_EQ(&GatewayHttpMetrics::Get(), &GatewayHttpMetrics::Get());
  const std::string text = MetricsRegistry::Default().Render();
  for (const char* type :
       {"# TYPE chatd_gateway_http_requests_total counter",
        "# TYPE chatd_gateway_http_request_duration_seconds histogram",
        "# TYPE chatd_gateway_open_connections gauge",
        "# TYPE chatd_gateway_open_streams gauge"}) {
    EXPECT_NE(text.find(type), std::string::npos) << type;
  }
}

}  // namespace
}  // namespace chat::gateway
