#ifndef CHAT_SERVER_LLM_PROVIDER_METRICS_H_
#define CHAT_SERVER_LLM_PROVIDER_METRICS_H_

// The providers' metrics, on MetricsRegistry::Default(): every HTTP attempt
// by provider and status, the retries, how long attempts took, the
// connections they share, and the requests waiting for one.

#include <string>

#include "absl/strings/string_view.h"
#include "common/metrics.h"

namespace chat::llm {

struct ProviderMetrics {
  // chatd_provider_requests_total{provider,status}: status is the HTTP
  // status, or "error" when no response came (connection, timeout).
  CounterFamily& requests;
  CounterFamily& retries;  // chatd_provider_retries_total{provider}
  // chatd_provider_request_duration_seconds{provider}: one attempt, from
  // its start to its end (the whole stream).
  HistogramFamily& duration;
  // chatd_provider_connections_open{provider}: connections to the
  // provider, idle in curl's cache or not, and connection attempts (a
  // socket each).
  GaugeFamily& connections_open;
  // chatd_provider_requests_held{provider}: requests to an https://
  // provider that CurlMultiLoop's gate holds until a connection has room.
  GaugeFamily& requests_held;

  // Registered on first use.
  static ProviderMetrics& Get();
};

// The status label of an attempt: "200", "429", ..., or "error" for 0.
std::string ProviderStatusLabel(int http_status);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_PROVIDER_METRICS_H_
