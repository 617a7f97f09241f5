#include "server/llm/provider_metrics.h"

#include "gtest/gtest.h"

// Attempts are counted end to end against the fake upstream in
// tests/integration/metrics_test.cc; here, the status label.

namespace chat::llm {
namespace {

TEST(ProviderMetricsTest, StatusLabelIsTheHttpStatusOrError) {
  EXPECT_EQ(ProviderStatusLabel(200), "200");
  EXPECT_EQ(ProviderStatusLabel(529), "529");
  EXPECT_EQ(ProviderStatusLabel(0), "error");
}

TEST(ProviderMetricsTest, RegistersItsSeriesOnce) {
  EXPECT_EQ(&ProviderMetrics::Get(), &ProviderMetrics::Get());
  EXPECT_NE(MetricsRegistry::Default().Render().find(
                "# TYPE chatd_provider_requests_total counter"),
            std::string::npos);
}

}  // namespace
}  // namespace chat::llm
