#ifndef CHAT_GATEWAY_TRANSCODE_BACKEND_CALL_H_
#define CHAT_GATEWAY_TRANSCODE_BACKEND_CALL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace chat::gateway {

// Whether gRPC failed a call at its pick: no backend of the channel was
// reachable (the load balancer's or the name resolver's UNAVAILABLE), so
// the call was never sent, and sending it again cannot run a turn twice. A
// call that reached a backend and then lost its connection fails otherwise
// ("Socket closed", "Connection reset by peer"), and is not resent: the
// backend may have stored its turn. The messages are gRPC 1.51's (Debian
// 12's): backend_call_test makes round_robin's (the backend channels'
// policy, with a backend down or NOT_SERVING) and a lost call's on real
// channels; pick_first's and the resolver's are from the library's text.
bool NoBackendTookCall(const grpc::Status& status);

// One call to chat-server across its attempts. gRPC serves one call per
// ClientContext, so a call that no backend took is made again (see
// Gateway::Resends) with a fresh context carrying the same deadline and
// metadata. The HTTP client's leaving cancels whichever attempt is current.
// Thread-safe.
class BackendCall {
 public:
  using Metadata = std::vector<std::pair<std::string, std::string>>;

  BackendCall(absl::Time deadline, Metadata metadata);
  BackendCall(const BackendCall&) = delete;
  BackendCall& operator=(const BackendCall&) = delete;

  // The context of the next attempt (the first one included), from now on
  // the one ClientGone() cancels: cancelled already if the client is gone.
  std::shared_ptr<grpc::ClientContext> NewAttempt();

  // For HttpExchange::OnClientGone: the call is no longer wanted. Cancels
  // the current attempt; a later one starts cancelled.
  void ClientGone();

  // Set by ClientGone(); shared with a call waiting in BackendSet.
  const std::shared_ptr<std::atomic<bool>>& client_gone() const {
    return client_gone_;
  }
  absl::Time deadline() const { return deadline_; }
  const Metadata& metadata() const { return metadata_; }

  // For an attempt answered in this process (gateway/app/local_method.h),
  // which has no gRPC call for ClientGone() to cancel: ClientGone() runs
  // `cancel` too, at once if the client is gone already. One per call: a
  // later one replaces it.
  void CancelOnClientGone(std::function<void()> cancel);
  // The context of an attempt made because the last one was not taken by
  // any backend (NewAttempt, counted in resends()).
  std::shared_ptr<grpc::ClientContext> Resend();

  // Attempts made so far, and how many of them were Resend()s.
  int attempts() const;
  int resends() const;

 private:
  const absl::Time deadline_;
  const Metadata metadata_;
  const std::shared_ptr<std::atomic<bool>> client_gone_ =
      std::make_shared<std::atomic<bool>>(false);
  mutable absl::Mutex mu_;
  // Weak: the attempt's owner (a reactor, a unary call) holds it.
  std::weak_ptr<grpc::ClientContext> current_ ABSL_GUARDED_BY(mu_);
  std::function<void()> cancel_local_ ABSL_GUARDED_BY(mu_);
  int attempts_ ABSL_GUARDED_BY(mu_) = 0;
  int resends_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_BACKEND_CALL_H_
