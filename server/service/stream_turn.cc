#include "server/service/stream_turn.h"

#include <utility>

#include "server/service/proto_convert.h"
#include "server/service/rate_limit_metadata.h"

namespace chat {

StreamTurn::StreamTurn(ResumableStreams* streams) : streams_(streams) {}

void StreamTurn::Start(absl::StatusOr<ChatTurnRequest> request) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) refused = absl::CancelledError("the call was cancelled");
  }
  if (refused.ok() && !request.ok()) refused = request.status();
  std::shared_ptr<StreamAttachment> attachment;
  if (refused.ok()) {
    request->streamed = true;
    request->traceparent = ProviderTraceparent(call_log_);
    call_log_.SetTurn(*request);
    // Not under mu_: the answer may call OnDelta from its threads at once.
    absl::StatusOr<std::shared_ptr<StreamAttachment>> started =
        streams_->Start(*std::move(request), this);
    if (started.ok()) {
      attachment = *std::move(started);
    } else {
      refused = started.status();
    }
  }
  if (!refused.ok()) LogTurnCall(call_log_, refused);
  Attached(std::move(attachment), refused);
}

void StreamTurn::Resume(absl::StatusOr<store::SessionKey> session,
                        std::string last_event_id) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) refused = absl::CancelledError("the call was cancelled");
  }
  if (refused.ok() && !session.ok()) refused = session.status();
  std::shared_ptr<StreamAttachment> attachment;
  if (refused.ok()) {
    attachment =
        streams_->Resume(*std::move(session), std::move(last_event_id), this);
  } else {
    LogCall(call_log_, refused);
  }
  Attached(std::move(attachment), refused);
}

void StreamTurn::Attached(std::shared_ptr<StreamAttachment> attachment,
                          const absl::Status& refused) {
  bool detach = false;
  bool expired = false;
  bool all_done = false;
  NextStep step;
  {
    absl::MutexLock lock(&mu_);
    start_done_ = true;
    if (!refused.ok()) {
      // The answer will never call back: it is done already.
      engine_done_ = true;
      SetFinalErrorLocked(refused);
      step = events_.Next();
    } else {
      attachment_ = attachment;
      detach = cancelled_;  // Cancel ran while the answer was attaching.
      expired = expired_;
      // The answer may already have ended and the transport be done: this
      // object lived on only because start_done_ was false.
      all_done = transport_done_ && engine_done_;
    }
  }
  if (!refused.ok()) {
    Take(step);  // Last: the call may end, and this object go, inside.
    return;
  }
  if (detach && expired) {
    attachment->Expire();
  } else if (detach) {
    attachment->Detach();
  }
  if (all_done) Dispose();
}

void StreamTurn::OnAdmitted(const RateLimitStatus& status) {
  // Before the first delta, so these go out with the stream's headers.
  absl::MutexLock lock(&mu_);
  for (const auto& [key, value] : RateLimitMetadata(status)) {
    AddInitialMetadata(key, value);
  }
}

void StreamTurn::SetFinalErrorLocked(const absl::Status& status) {
  for (const auto& [key, value] : RefusalMetadata(status)) {
    AddTrailingMetadata(key, value);
  }
  events_.SetEnd(status);
}

void StreamTurn::OnDelta(absl::string_view event_id, absl::string_view text) {
  NextStep step;
  {
    absl::MutexLock lock(&mu_);
    if (events_.client_gone()) return;
    chat::v1::ChatStreamResponse event;
    event.mutable_delta()->set_text(std::string(text));
    event.set_event_id(std::string(event_id));
    events_.Push(std::move(event));
    step = events_.Next();
  }
  Take(step);
}

void StreamTurn::OnEnd(absl::string_view event_id,
                       absl::StatusOr<ChatTurnResult> result) {
  LogTurnCall(call_log_, result);
  NextStep step;
  {
    absl::MutexLock lock(&mu_);
    if (result.ok() && events_.client_gone()) {
      // Cancelled as the answer ended: some deltas were dropped, so the
      // client must not see a `done` (the answer is stored; a resume reads
      // it).
      SetFinalErrorLocked(absl::CancelledError("the call was cancelled"));
    } else if (result.ok()) {
      chat::v1::ChatStreamResponse event;
      FillChatResponse(*result, event.mutable_done());
      event.set_event_id(std::string(event_id));
      events_.Push(std::move(event));
      events_.SetEnd(absl::OkStatus());
    } else {
      SetFinalErrorLocked(result.status());
    }
    step = events_.Next();
  }
  Take(step);
  Release(/*transport_side=*/false);
}

void StreamTurn::WriteDone(bool ok) {
  NextStep step;
  {
    absl::MutexLock lock(&mu_);
    // A failed write is the client gone; the transport cancels the call
    // (Cancel).
    events_.WriteDone(ok);
    step = events_.Next();
  }
  Take(step);
}

void StreamTurn::Cancel(bool expired) {
  // The client left (or cancelled the call): the answer runs on without it,
  // for a resume; CancelStream is what stops it. A call whose deadline
  // passed bounded its answer as well.
  std::shared_ptr<StreamAttachment> attachment;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    // A later cancel (the client leaving after the deadline) does not
    // turn an expiry back into a detach.
    expired = expired_ = expired_ || expired;
    // Events not yet written are dropped, as gRPC fails the writes of a
    // cancelled call; the end still goes out (an error event where the
    // client is still there). An answer that already ended keeps its
    // `done`.
    if (!events_.has_end()) events_.ClientGone();
    attachment = attachment_;  // Null until attached, and when refused.
  }
  if (attachment == nullptr) return;
  if (expired) {
    attachment->Expire();
  } else {
    attachment->Detach();
  }
}

void StreamTurn::TransportDone() { Release(/*transport_side=*/true); }

void StreamTurn::Take(NextStep step) {
  // The event being written is not touched again before WriteDone, so it
  // is read here without the lock.
  if (step.send != nullptr) {
    Send(*step.send);
  } else if (step.end.has_value()) {
    End(*step.end);
  }
}

void StreamTurn::Release(bool transport_side) {
  bool all_done;
  {
    absl::MutexLock lock(&mu_);
    (transport_side ? transport_done_ : engine_done_) = true;
    all_done = transport_done_ && engine_done_ && start_done_;
  }
  if (all_done) Dispose();
}

}  // namespace chat
