#include "server/engine/engine_metrics.h"

#include <string>

#include "gtest/gtest.h"

// The engine's updates are checked through the real binary in
// tests/integration/metrics_test.cc (time to first token per turn, tokens
// by model, nothing left queued); here, the registration.

namespace chat {
namespace {

TEST(EngineMetricsTest, RegistersItsSeriesOnce) {
  EXPECT_EQ(&EngineMetrics::Get(), &EngineMetrics::Get());
  const std::string text = MetricsRegistry::Default().Render();
  for (const char* type : {"# TYPE chatd_turns_queued gauge",
                           "# TYPE chatd_time_to_first_token_seconds histogram",
                           "# TYPE chatd_output_tokens_per_second histogram",
                           "# TYPE chatd_tokens_total counter",
                           "# TYPE chatd_cost_usd_total counter"}) {
    EXPECT_NE(text.find(type), std::string::npos) << type;
  }
}

}  // namespace
}  // namespace chat
