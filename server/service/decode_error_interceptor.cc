#include "server/service/decode_error_interceptor.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/status.h"

namespace chat {

bool LogRateLimiter::Allow(absl::Time now, int64_t* suppressed) {
  absl::MutexLock lock(&mu_);
  if (now - last_ < interval_) {
    ++suppressed_;
    return false;
  }
  last_ = now;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

namespace {

using ::grpc::experimental::InterceptionHookPoints;

// Says how many lines were dropped before this one, if any.
std::string SuppressedNote(int64_t suppressed) {
  if (suppressed == 0) return "";
  return absl::StrCat(" (", suppressed, " similar lines suppressed)");
}

}  // namespace

// One call. gRPC runs a call's interceptor hooks one batch at a time, so the
// flag needs no lock.
class DecodeErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  DecodeErrorInterceptor(grpc::experimental::ServerRpcInfo* info,
                         DecodeErrorInterceptorFactory* factory)
      : info_(info), factory_(factory) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      // Unary and server-streaming requests arrive with the call; no message
      // here means it failed to parse.
      undecodable_ = true;
    }
    if (undecodable_ && methods->QueryInterceptionHookPoint(
                            InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      // What gRPC's handler answers when it could not parse the request;
      // any other status came from our own code and stays.
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            absl::StrCat("the request message of ", info_->method(),
                         " does not decode: it is truncated or malformed, "
                         "or a string field is not valid UTF-8")));
        factory_->OnRejected(info_->method());
      }
    }
    methods->Proceed();
  }

 private:
  grpc::experimental::ServerRpcInfo* const info_;
  DecodeErrorInterceptorFactory* const factory_;
  bool undecodable_ = false;
};

DecodeErrorInterceptorFactory::DecodeErrorInterceptorFactory()
    : log_limit_(absl::Seconds(1)) {}

grpc::experimental::Interceptor*
DecodeErrorInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new DecodeErrorInterceptor(info, this);
}

int64_t DecodeErrorInterceptorFactory::rejected() const {
  absl::MutexLock lock(&mu_);
  return rejected_;
}

void DecodeErrorInterceptorFactory::OnRejected(const char* method) {
  {
    absl::MutexLock lock(&mu_);
    ++rejected_;
  }
  int64_t suppressed = 0;
  if (log_limit_.Allow(absl::Now(), &suppressed)) {
    LogWarning("answered INVALID_ARGUMENT to a request to ", method,
               " that does not decode", SuppressedNote(suppressed));
  }
}

namespace {

void ProtobufLogHandler(google::protobuf::LogLevel level,
                        const char* /*filename*/, int /*line*/,
                        const std::string& message) {
  // Leaked: used by every thread until exit.
  static auto* const limit = new LogRateLimiter(absl::Seconds(1));
  int64_t suppressed = 0;
  if (level != google::protobuf::LOGLEVEL_FATAL &&
      !limit->Allow(absl::Now(), &suppressed)) {
    return;
  }
  const std::string line =
      absl::StrCat("protobuf: ", message, SuppressedNote(suppressed));
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      LogInfo(line);
      break;
    case google::protobuf::LOGLEVEL_WARNING:
      LogWarning(line);
      break;
    default:
      LogError(line);
      break;
  }
}

}  // namespace

void RateLimitProtobufLog() {
  google::protobuf::SetLogHandler(&ProtobufLogHandler);
}

}  // namespace chat
