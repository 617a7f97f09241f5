#include "gateway/http/http_metrics.h"

namespace chat::gateway {

GatewayHttpMetrics& GatewayHttpMetrics::Get() {
  static GatewayHttpMetrics* metrics = [] {
    MetricsRegistry& r = MetricsRegistry::Default();
    return new GatewayHttpMetrics{
        r.AddCounterFamily("chatd_gateway_http_requests_total",
                           "HTTP requests answered, by route template and "
                           "status code (499: the client left first).",
                           {"route", "code"}),
        r.AddHistogramFamily(
            "chatd_gateway_http_request_duration_seconds",
            "Time from a request's head to the end of its answer, by route.",
            {"route"}, LatencySecondsBuckets()),
        r.AddGauge("chatd_gateway_open_connections",
                   "Client connections open now."),
        r.AddGauge("chatd_gateway_open_streams",
                   "Streamed answers (server-sent events) in progress."),
    };
  }();
  return *metrics;
}

}  // namespace chat::gateway
