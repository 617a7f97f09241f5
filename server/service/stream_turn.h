#ifndef CHAT_SERVER_SERVICE_STREAM_TURN_H_
#define CHAT_SERVER_SERVICE_STREAM_TURN_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "chat/v1/chat.pb.h"
#include "server/engine/chat_engine.h"
#include "server/engine/resumable_streams.h"
#include "server/service/call_log.h"
#include "server/service/outgoing_events.h"

namespace chat {

// One ChatStream or ResumeStream call apart from how it arrived. Start()
// starts the turn (or Resume() attaches to a running or ended answer) once
// the caller is known; the answer's deltas are queued and sent one at a time
// (OutgoingEvents), each with its event id; the answer's outcome becomes a
// final `done` event and the call's status. A client that leaves (Cancel)
// detaches from the answer, which runs on (see ResumableStreams). Subclasses
// carry the call (a gRPC reactor, or a call from chat-server's own HTTP port)
// and are Disposed once the transport (TransportDone) and the answer (OnEnd, or
// a refusal) are both done with them.
class StreamTurn : public StreamSubscriber {
 public:
  // `streams` must outlive the object.
  explicit StreamTurn(ResumableStreams* streams);

  // Starts the turn, or ends the call with `request`'s error. Call once (or
  // Resume), from any thread.
  void Start(absl::StatusOr<ChatTurnRequest> request);
  // Attaches to `session`'s answer after `last_event_id` (see
  // ResumableStreams::Resume), or ends the call with `session`'s error.
  void Resume(absl::StatusOr<store::SessionKey> session,
              std::string last_event_id);

  // The call's log record (StartCallLog); before Start.
  void set_call_log(CallLog log) { call_log_ = std::move(log); }

  // StreamSubscriber
  void OnAdmitted(const RateLimitStatus& status) override;
  void OnDelta(absl::string_view event_id, absl::string_view text) override;
  void OnEnd(absl::string_view event_id,
             absl::StatusOr<ChatTurnResult> result) override;

 protected:
  // The transport's events, from any thread.
  // The event Send was given is written (`ok`), or the client is gone.
  void WriteDone(bool ok);
  // The client left or the call was cancelled; `expired`: its deadline
  // passed, which bounds the answer too. Unless the answer already ended,
  // events not yet written are dropped and the call ends CANCELLED.
  void Cancel(bool expired);
  // The transport will not touch this object again.
  void TransportDone();

  // What the transport does. The two metadata calls come before the first
  // Send (initial) or End (trailing), under the object's lock.
  virtual void AddInitialMetadata(const std::string& key,
                                  const std::string& value) = 0;
  virtual void AddTrailingMetadata(const std::string& key,
                                   const std::string& value) = 0;
  // Writes `event`, which stays untouched until WriteDone. One at a time.
  virtual void Send(const chat::v1::ChatStreamResponse& event) = 0;
  // Ends the call with `status`, after the last WriteDone. Once.
  virtual void End(const absl::Status& status) = 0;
  // Both sides are done: by default the object deletes itself.
  virtual void Dispose() { delete this; }

 private:
  // What the transport is to do next: decided under mu_, done outside it
  // (the transport may answer inside, and dispose of this object).
  using NextStep = OutgoingEvents<chat::v1::ChatStreamResponse>::Step;

  // Records the attachment Start or Resume got, or that there is none.
  void Attached(std::shared_ptr<StreamAttachment> attachment,
                const absl::Status& refused);
  void Take(NextStep step);
  // Records that one of the two owners is done; disposes on the second.
  void Release(bool transport_side);
  // Ends the call with `status`, its rate-limit refusal metadata attached.
  void SetFinalErrorLocked(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ResumableStreams* const streams_;
  // Completed by Start, logged when the call ends; the engine's callbacks
  // order the accesses.
  CallLog call_log_;

  absl::Mutex mu_;
  // Set once the answer accepted this subscriber.
  std::shared_ptr<StreamAttachment> attachment_ ABSL_GUARDED_BY(mu_);
  // Cancel came; an attachment made later is detached at once.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // The cancel was the call's deadline passing.
  bool expired_ ABSL_GUARDED_BY(mu_) = false;
  // The end is set by OnEnd (or a refusal). The client is gone once a
  // write failed or the call was cancelled.
  OutgoingEvents<chat::v1::ChatStreamResponse> events_ ABSL_GUARDED_BY(mu_);
  bool transport_done_ ABSL_GUARDED_BY(mu_) = false;
  bool engine_done_ ABSL_GUARDED_BY(mu_) = false;
  // Start has returned from the engine: until then the turn may end (and
  // the transport finish the call) on other threads while Start still needs
  // `this`.
  bool start_done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_STREAM_TURN_H_
