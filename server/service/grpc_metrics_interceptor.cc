#include "server/service/grpc_metrics_interceptor.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "grpcpp/support/status.h"

namespace chat {
namespace {

using ::grpc::experimental::InterceptionHookPoints;
using ::grpc::experimental::ServerRpcInfo;

// One call, counted by its status as it is sent. gRPC runs a call's hooks
// one batch at a time, so the counter needs no lock.
class GrpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit GrpcMetricsInterceptor(ServerRpcInfo* info)
      : counter_(MethodLabel(info->method()),
                 info->type() != ServerRpcInfo::Type::UNARY) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      counter_.Count(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  GrpcCallCounter counter_;
};

}  // namespace

GrpcMetrics& GrpcMetrics::Get() {
  static GrpcMetrics* metrics = [] {
    MetricsRegistry& r = MetricsRegistry::Default();
    return new GrpcMetrics{
        r.AddCounterFamily("chatd_grpc_requests_total",
                           "gRPC calls answered, by method and status code.",
                           {"method", "code"}),
        r.AddHistogramFamily(
            "chatd_grpc_request_duration_seconds",
            "Time from a gRPC call's start to its status, by method.",
            {"method"}, LatencySecondsBuckets()),
        r.AddGauge("chatd_grpc_open_calls", "gRPC calls in progress."),
        r.AddGauge("chatd_open_streams",
                   "Streaming gRPC calls (ChatStream) in progress."),
    };
  }();
  return *metrics;
}

GrpcCallCounter::GrpcCallCounter(absl::string_view method, bool streaming)
    : metrics_(GrpcMetrics::Get()),
      method_(method),
      streaming_(streaming),
      start_(absl::Now()) {
  metrics_.open_calls.Increment();
  if (streaming_) metrics_.open_streams.Increment();
}

GrpcCallCounter::~GrpcCallCounter() {
  Count(grpc::StatusCode::CANCELLED);
  metrics_.open_calls.Decrement();
  if (streaming_) metrics_.open_streams.Decrement();
}

void GrpcCallCounter::Count(grpc::StatusCode code) {
  if (counted_) return;
  counted_ = true;
  // gRPC's codes are absl's, number for number.
  metrics_.requests
      .WithLabels({method_, absl::StatusCodeToString(
                                static_cast<absl::StatusCode>(code))})
      .Increment();
  metrics_.duration.WithLabels({method_}).Observe(
      absl::ToDoubleSeconds(absl::Now() - start_));
}

absl::string_view MethodLabel(absl::string_view method) {
  if (absl::StartsWith(method, "/chat.") ||
      absl::StartsWith(method, "/grpc.")) {
    return method;
  }
  return "other";
}

grpc::experimental::Interceptor*
GrpcMetricsInterceptorFactory::CreateServerInterceptor(ServerRpcInfo* info) {
  return new GrpcMetricsInterceptor(info);
}

}  // namespace chat
