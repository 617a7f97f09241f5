#ifndef CHAT_SERVER_ENGINE_ENGINE_METRICS_H_
#define CHAT_SERVER_ENGINE_ENGINE_METRICS_H_

// The engine's metrics, on MetricsRegistry::Default(): turns waiting behind
// their session, time to first token, output speed, and tokens by model and
// tenant.

#include "common/metrics.h"

namespace chat {

struct EngineMetrics {
  Gauge& turns_queued;                  // chatd_turns_queued
  Histogram& time_to_first_token;       // chatd_time_to_first_token_seconds
  Histogram& output_tokens_per_second;  // chatd_output_tokens_per_second
  CounterFamily& tokens;  // chatd_tokens_total{direction,model,tenant}
  CounterFamily& cost;    // chatd_cost_usd_total{tenant}

  // Registered on first use.
  static EngineMetrics& Get();
};

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_ENGINE_METRICS_H_
