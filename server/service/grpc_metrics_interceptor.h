#ifndef CHAT_SERVER_SERVICE_GRPC_METRICS_INTERCEPTOR_H_
#define CHAT_SERVER_SERVICE_GRPC_METRICS_INTERCEPTOR_H_

// The gRPC edge's metrics: calls by method and status code, their
// duration, and the calls and streams open now. A server interceptor sees
// every call, whatever service or reactor answers it, so no handler has to
// remember to count. Metrics go to MetricsRegistry::Default().

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"

namespace chat {

// The metrics the interceptor updates, registered on first use.
struct GrpcMetrics {
  CounterFamily& requests;    // chatd_grpc_requests_total{method,code}
  HistogramFamily& duration;  // chatd_grpc_request_duration_seconds{method}
  Gauge& open_calls;          // chatd_grpc_open_calls
  Gauge& open_streams;        // chatd_open_streams

  static GrpcMetrics& Get();
};

// The method label for `method` ("/chat.v1.ChatService/Chat"): itself for
// our services and gRPC's own (health, reflection), else "other", so a
// client inventing method names cannot grow the label set.
absl::string_view MethodLabel(absl::string_view method);

// One call in GrpcMetrics: open from construction to destruction, and
// counted once, by the first status given to Count, or as CANCELLED if it
// ends without one (the client went away first). Not thread-safe: one
// caller at a time.
class GrpcCallCounter {
 public:
  // `method`: a MethodLabel, which must outlive the counter.
  GrpcCallCounter(absl::string_view method, bool streaming);
  GrpcCallCounter(const GrpcCallCounter&) = delete;
  GrpcCallCounter& operator=(const GrpcCallCounter&) = delete;
  ~GrpcCallCounter();

  void Count(grpc::StatusCode code);

 private:
  GrpcMetrics& metrics_;
  const absl::string_view method_;
  const bool streaming_;
  const absl::Time start_;
  bool counted_ = false;
};

// Makes one interceptor per call. Register with
// ServerBuilder::experimental().SetInterceptorCreators, after
// DecodeErrorInterceptorFactory so that the code counted is the one sent.
class GrpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_GRPC_METRICS_INTERCEPTOR_H_
