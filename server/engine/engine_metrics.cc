#include "server/engine/engine_metrics.h"

namespace chat {

EngineMetrics& EngineMetrics::Get() {
  static EngineMetrics* metrics = [] {
    MetricsRegistry& r = MetricsRegistry::Default();
    return new EngineMetrics{
        r.AddGauge("chatd_turns_queued",
                   "Turns accepted and waiting for an earlier turn of their "
                   "session (or a worker) to start."),
        r.AddHistogram(
            "chatd_time_to_first_token_seconds",
            "Time from a turn's acceptance to the first text of "
            "its answer.",
            {0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60}),
        r.AddHistogram(
            "chatd_output_tokens_per_second",
            "Output tokens of an answer over the time from its "
            "first text to its end.",
            {1, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000}),
        r.AddCounterFamily("chatd_tokens_total",
                           "Tokens of stored turns, by direction "
                           "(input|output), model and tenant.",
                           {"direction", "model", "tenant"}),
        r.AddCounterFamily("chatd_cost_usd_total",
                           "Cost in US dollars of answered turns whose model "
                           "has a price, by tenant.",
                           {"tenant"}),
    };
  }();
  return *metrics;
}

}  // namespace chat
