#ifndef CHAT_SERVER_SERVICE_COMPLETE_REACTORS_H_
#define CHAT_SERVER_SERVICE_COMPLETE_REACTORS_H_

// The reactors of Complete and CompleteStream: stateless completions (the
// caller sends the whole conversation, nothing is stored) run as engine
// turns with ChatTurnRequest::stateless, so keys, limits, budgets, metrics
// and the provider's fallback apply as they do to Chat. Kept apart from
// ChatStreamReactor: these events are CompleteStreamResponse, and a
// stateless stream has nothing to resume.

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "chat/v1/chat.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/chat_engine.h"
#include "server/service/call_log.h"
#include "server/service/outgoing_events.h"

namespace chat {

// The engine's request for a Complete or CompleteStream call (the two
// messages have the same fields), for `tenant`; the caller adds the key.
ChatTurnRequest ToStatelessTurnRequest(const chat::v1::CompleteRequest& request,
                                       const std::string& tenant);
ChatTurnRequest ToStatelessTurnRequest(
    const chat::v1::CompleteStreamRequest& request, const std::string& tenant);

// The answer of a stateless turn.
void FillCompleteResponse(const ChatTurnResult& result,
                          chat::v1::CompleteResponse* response);

// Serves one Complete call. Start() begins the turn once the caller is
// known. Deletes itself once gRPC has called OnDone and the engine has
// called OnComplete (or Start refused the call), whichever comes last.
class CompleteUnaryReactor final : public grpc::ServerUnaryReactor,
                                   public TurnObserver {
 public:
  CompleteUnaryReactor(grpc::CallbackServerContext* context, ChatEngine* engine,
                       chat::v1::CompleteResponse* response);

  // Starts the turn, or finishes the call with `request`'s error. Called
  // once, from any thread.
  void Start(absl::StatusOr<ChatTurnRequest> request);

  void OnAdmitted(const RateLimitStatus& status) override;
  void OnDelta(absl::string_view /*text*/) override {}
  void OnComplete(absl::StatusOr<ChatTurnResult> result) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  void FinishWithError(const absl::Status& status);
  void Release(bool grpc_side);

  grpc::CallbackServerContext* const context_;
  ChatEngine* const engine_;
  chat::v1::CompleteResponse* const response_;
  CallLog call_log_;
  absl::Mutex mu_;
  std::shared_ptr<TurnHandle> turn_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool grpc_done_ ABSL_GUARDED_BY(mu_) = false;
  bool engine_done_ ABSL_GUARDED_BY(mu_) = false;
  // Start has returned from the engine (see ChatStreamReactor).
  bool start_done_ ABSL_GUARDED_BY(mu_) = false;
};

// Serves one CompleteStream call, as ChatStreamReactor serves ChatStream:
// deltas are queued and written one at a time, the outcome becomes a final
// `done` event and the call's status, and a cancelled call (the client
// left) cancels the provider request. Deletes itself once gRPC has called
// OnDone and the engine has called OnComplete, whichever comes last.
class CompleteStreamReactor final
    : public grpc::ServerWriteReactor<chat::v1::CompleteStreamResponse>,
      public TurnObserver {
 public:
  // `context` is the call's; it outlives the reactor. Waits for Start().
  CompleteStreamReactor(grpc::CallbackServerContext* context,
                        ChatEngine* engine);

  // Starts the turn, or finishes the call with `request`'s error. Called
  // once, from any thread.
  void Start(absl::StatusOr<ChatTurnRequest> request);

  // grpc::ServerWriteReactor
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // TurnObserver
  void OnAdmitted(const RateLimitStatus& status) override;
  void OnDelta(absl::string_view text) override;
  void OnComplete(absl::StatusOr<ChatTurnResult> result) override;

 private:
  void WriteOrFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(bool grpc_side);
  void SetFinalErrorLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::CallbackServerContext* const context_;
  ChatEngine* const engine_;
  CallLog call_log_;
  absl::Mutex mu_;
  std::shared_ptr<TurnHandle> turn_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  OutgoingEvents<chat::v1::CompleteStreamResponse> events_ ABSL_GUARDED_BY(mu_);
  bool grpc_done_ ABSL_GUARDED_BY(mu_) = false;
  bool engine_done_ ABSL_GUARDED_BY(mu_) = false;
  bool start_done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_COMPLETE_REACTORS_H_
