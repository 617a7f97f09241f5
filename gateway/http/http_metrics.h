#ifndef CHAT_GATEWAY_HTTP_HTTP_METRICS_H_
#define CHAT_GATEWAY_HTTP_HTTP_METRICS_H_

// Every metric chat-gateway exposes, on MetricsRegistry::Default(). They
// live in the lowest gateway layer that updates them (the HTTP server counts
// connections, streams and requests); the app layer names each request's
// route with HttpExchange::SetRoute and serves the text.

#include "common/metrics.h"

namespace chat::gateway {

struct GatewayHttpMetrics {
  // chatd_gateway_http_requests_total{route,code}: route is the route's
  // template ("POST /v1/chat"), or one of a few fixed names, never the raw
  // path; code the HTTP status, 499 when the client left first.
  CounterFamily& requests;
  // chatd_gateway_http_request_duration_seconds{route}: from the request's
  // head to its answer's last byte (a stream's end).
  HistogramFamily& duration;
  Gauge& open_connections;  // chatd_gateway_open_connections
  Gauge& open_streams;      // chatd_gateway_open_streams (streamed answers)

  // Registered on first use.
  static GatewayHttpMetrics& Get();
};

// The route label of a request the handler did not name (no route matched,
// or the server answered it alone: 400, 408, 413, 431, 503 while draining).
inline constexpr char kUnmatchedRoute[] = "unmatched";

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_HTTP_HTTP_METRICS_H_
