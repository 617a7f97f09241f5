#include "server/llm/provider_metrics.h"

#include "absl/strings/str_cat.h"

namespace chat::llm {

ProviderMetrics& ProviderMetrics::Get() {
  static ProviderMetrics* metrics = [] {
    MetricsRegistry& r = MetricsRegistry::Default();
    return new ProviderMetrics{
        r.AddCounterFamily("chatd_provider_requests_total",
                           "HTTP attempts to an LLM provider, by provider and "
                           "HTTP status (\"error\": no response).",
                           {"provider", "status"}),
        r.AddCounterFamily("chatd_provider_retries_total",
                           "Attempts to an LLM provider that were retries.",
                           {"provider"}),
        r.AddHistogramFamily("chatd_provider_request_duration_seconds",
                             "Duration of one HTTP attempt to an LLM "
                             "provider, to the end of its stream.",
                             {"provider"}, LatencySecondsBuckets()),
        r.AddGaugeFamily("chatd_provider_connections_open",
                         "Connections open to an LLM provider, idle or not, "
                         "and connection attempts.",
                         {"provider"}),
        r.AddGaugeFamily("chatd_provider_requests_held",
                         "Requests to an HTTPS provider held until a "
                         "connection has room for them.",
                         {"provider"}),
    };
  }();
  return *metrics;
}

std::string ProviderStatusLabel(int http_status) {
  if (http_status <= 0) return "error";
  return absl::StrCat(http_status);
}

}  // namespace chat::llm
