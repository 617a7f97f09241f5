#ifndef CHAT_SERVER_SERVICE_DECODE_ERROR_INTERCEPTOR_H_
#define CHAT_SERVER_SERVICE_DECODE_ERROR_INTERCEPTOR_H_

// What a request that does not decode gets: INVALID_ARGUMENT with a message,
// and at most one log line a second however many arrive.
//
// gRPC 1.51's callback handlers answer a request message that fails to parse
// (truncated, or a string field that is not valid UTF-8) with UNIMPLEMENTED
// and an empty message, and protobuf logs an error line for each invalid
// string: a cheap way to flood the log. The handler never sees such a call,
// so the fix sits around it: a server interceptor notices the failed decode
// (POST_RECV_MESSAGE with no message) and rewrites the status before it is
// sent (PRE_SEND_STATUS); protobuf's own log goes through a rate limit.

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/support/server_interceptor.h"

namespace chat {

// Lets at most one event through per `interval`, counting the others.
// Thread-safe.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(absl::Duration interval) : interval_(interval) {}

  // True if an event at `now` may be logged; then `*suppressed` is the number
  // of events refused since the last one allowed.
  bool Allow(absl::Time now, int64_t* suppressed);

 private:
  const absl::Duration interval_;
  absl::Mutex mu_;
  absl::Time last_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

// Makes one DecodeErrorInterceptor per call. Register with
// ServerBuilder::experimental().SetInterceptorCreators.
class DecodeErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  DecodeErrorInterceptorFactory();

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  // Calls answered INVALID_ARGUMENT because their request did not decode.
  int64_t rejected() const;

 private:
  friend class DecodeErrorInterceptor;
  void OnRejected(const char* method);

  LogRateLimiter log_limit_;
  mutable absl::Mutex mu_;
  int64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
};

// Sends protobuf's log lines (such as "String field ... contains invalid
// UTF-8 data") to chat's log, at most one a second, saying how many were
// dropped. Call once at start-up.
void RateLimitProtobufLog();

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_DECODE_ERROR_INTERCEPTOR_H_
