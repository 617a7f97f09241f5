#ifndef CHAT_SERVER_SERVICE_CHAT_STREAM_REACTOR_H_
#define CHAT_SERVER_SERVICE_CHAT_STREAM_REACTOR_H_

#include <deque>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "chat/v1/chat.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/chat_engine.h"
#include "server/engine/resumable_streams.h"
#include "server/service/call_log.h"

namespace chat {

// Serves one ChatStream or ResumeStream call. Start() starts the turn (or
// Resume() attaches to a running or ended answer) once the caller is known;
// the answer's deltas are queued and written one at a time (the event being
// written stays untouched until OnWriteDone), each with its event id; the
// answer's outcome becomes a final `done` event and the call's status. A
// client that leaves detaches from the answer, which runs on (see
// ResumableStreams). The object deletes itself once gRPC has called OnDone
// and the answer has called OnEnd, whichever comes last.
class ChatStreamReactor final
    : public grpc::ServerWriteReactor<chat::v1::ChatStreamResponse>,
      public StreamSubscriber {
 public:
  // `context` is the call's; it outlives the reactor. Waits for Start() or
  // Resume(): the call is authenticated first (possibly on another thread).
  // A cancel before then is honoured by them.
  ChatStreamReactor(grpc::CallbackServerContext* context,
                    ResumableStreams* streams);

  // Starts the turn, or finishes the call with `request`'s error. Call once
  // (or Resume), from any thread.
  void Start(absl::StatusOr<ChatTurnRequest> request);
  // Attaches to `session`'s answer after `last_event_id` (see
  // ResumableStreams::Resume), or finishes the call with `session`'s error.
  void Resume(absl::StatusOr<store::SessionKey> session,
              std::string last_event_id);

  // The call's log record (StartCallLog); before Start.
  void set_call_log(CallLog log) { call_log_ = std::move(log); }

  // grpc::ServerWriteReactor
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // StreamSubscriber
  void OnAdmitted(const RateLimitStatus& status) override;
  void OnDelta(absl::string_view event_id, absl::string_view text) override;
  void OnEnd(absl::string_view event_id,
             absl::StatusOr<ChatTurnResult> result) override;

 private:
  // Records the attachment Start or Resume got, or that there is none.
  void Attached(std::shared_ptr<StreamAttachment> attachment,
                const absl::Status& refused);
  void WriteOrFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records that one of the two owners is done; deletes on the second.
  void Release(bool grpc_side);

  // Ends the call with `status`, its rate-limit refusal metadata attached.
  void SetFinalErrorLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::CallbackServerContext* const context_;
  ResumableStreams* const streams_;
  // Completed by Start, logged when the call ends; the engine's callbacks
  // order the accesses.
  CallLog call_log_;

  absl::Mutex mu_;
  // Set once the answer accepted this subscriber.
  std::shared_ptr<StreamAttachment> attachment_ ABSL_GUARDED_BY(mu_);
  // OnCancel came; an attachment made later is detached at once.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // The cancel was the call's deadline passing.
  bool expired_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<chat::v1::ChatStreamResponse> pending_ ABSL_GUARDED_BY(mu_);
  chat::v1::ChatStreamResponse in_flight_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  // A write failed: the client is gone, later events are dropped.
  bool client_gone_ ABSL_GUARDED_BY(mu_) = false;
  // Set by OnComplete; sent by Finish once the queue is written.
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool grpc_done_ ABSL_GUARDED_BY(mu_) = false;
  bool engine_done_ ABSL_GUARDED_BY(mu_) = false;
  // Start has returned from the engine: until then the turn may end (and
  // gRPC finish the call) on other threads while Start still needs `this`.
  bool start_done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_CHAT_STREAM_REACTOR_H_
