#include "server/service/chat_stream_reactor.h"

#include <chrono>
#include <utility>

#include "server/service/grpc_status.h"
#include "server/service/proto_convert.h"
#include "server/service/rate_limit_metadata.h"

namespace chat {

ChatStreamReactor::ChatStreamReactor(grpc::CallbackServerContext* context,
                                     ResumableStreams* streams)
    : context_(context), streams_(streams) {}

void ChatStreamReactor::Start(absl::StatusOr<ChatTurnRequest> request) {
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

void ChatStreamReactor::Resume(absl::StatusOr<store::SessionKey> session,
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

void ChatStreamReactor::Attached(std::shared_ptr<StreamAttachment> attachment,
                                 const absl::Status& refused) {
  bool detach = false;
  bool expired = false;
  bool all_done = false;
  {
    absl::MutexLock lock(&mu_);
    start_done_ = true;
    if (!refused.ok()) {
      // The answer will never call back: it is done already.
      engine_done_ = true;
      SetFinalErrorLocked(refused);
      WriteOrFinishLocked();
      return;
    }
    attachment_ = attachment;
    detach = cancelled_;  // OnCancel ran while the answer was attaching.
    expired = expired_;
    // The answer may already have ended and gRPC called OnDone: this object
    // lived on only because start_done_ was false.
    all_done = grpc_done_ && engine_done_;
  }
  if (detach && expired) {
    attachment->Expire();
  } else if (detach) {
    attachment->Detach();
  }
  if (all_done) delete this;
}

void ChatStreamReactor::OnAdmitted(const RateLimitStatus& status) {
  // Before the first delta, so these go out with the stream's headers.
  absl::MutexLock lock(&mu_);
  for (const auto& [key, value] : RateLimitMetadata(status)) {
    context_->AddInitialMetadata(key, value);
  }
}

void ChatStreamReactor::SetFinalErrorLocked(const absl::Status& status) {
  for (const auto& [key, value] : RefusalMetadata(status)) {
    context_->AddTrailingMetadata(key, value);
  }
  final_status_ = ToGrpcStatus(status);
}

void ChatStreamReactor::OnDelta(absl::string_view event_id,
                                absl::string_view text) {
  absl::MutexLock lock(&mu_);
  if (client_gone_) return;
  chat::v1::ChatStreamResponse event;
  event.mutable_delta()->set_text(std::string(text));
  event.set_event_id(std::string(event_id));
  pending_.push_back(std::move(event));
  WriteOrFinishLocked();
}

void ChatStreamReactor::OnEnd(absl::string_view event_id,
                              absl::StatusOr<ChatTurnResult> result) {
  LogTurnCall(call_log_, result);
  {
    absl::MutexLock lock(&mu_);
    if (result.ok()) {
      chat::v1::ChatStreamResponse event;
      FillChatResponse(*result, event.mutable_done());
      event.set_event_id(std::string(event_id));
      pending_.push_back(std::move(event));
      final_status_ = grpc::Status::OK;
    } else {
      SetFinalErrorLocked(result.status());
    }
    WriteOrFinishLocked();
  }
  Release(/*grpc_side=*/false);
}

void ChatStreamReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  write_in_flight_ = false;
  if (!ok) {
    // Client gone; the turn is cancelled through OnCancel.
    client_gone_ = true;
    pending_.clear();
  }
  WriteOrFinishLocked();
}

void ChatStreamReactor::OnCancel() {
  // The client left (or cancelled the call): the answer runs on without it,
  // for a resume; CancelStream is what stops it.
  // A call whose deadline passed bounded its answer as well.
  const bool expired = context_->deadline() <= std::chrono::system_clock::now();
  std::shared_ptr<StreamAttachment> attachment;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    expired_ = expired;
    attachment = attachment_;  // Null until attached, and when refused.
  }
  if (attachment == nullptr) return;
  if (expired) {
    attachment->Expire();
  } else {
    attachment->Detach();
  }
}

void ChatStreamReactor::OnDone() { Release(/*grpc_side=*/true); }

void ChatStreamReactor::WriteOrFinishLocked() {
  if (write_in_flight_ || finish_called_) return;
  if (!pending_.empty()) {
    in_flight_ = std::move(pending_.front());
    pending_.pop_front();
    // Deltas that queued up behind a slow write go out as one: the client
    // sees the same text in fewer, larger pieces, and a loaded server makes
    // fewer writes instead of a longer queue. The merged event carries the
    // last one's id: a resume after it skips them all.
    while (in_flight_.has_delta() && !pending_.empty() &&
           pending_.front().has_delta()) {
      in_flight_.mutable_delta()->mutable_text()->append(
          pending_.front().delta().text());
      in_flight_.set_event_id(pending_.front().event_id());
      pending_.pop_front();
    }
    write_in_flight_ = true;
    StartWrite(&in_flight_);
    return;
  }
  if (final_status_.has_value()) {
    finish_called_ = true;
    Finish(*final_status_);
  }
}

void ChatStreamReactor::Release(bool grpc_side) {
  bool both;
  {
    absl::MutexLock lock(&mu_);
    (grpc_side ? grpc_done_ : engine_done_) = true;
    both = grpc_done_ && engine_done_ && start_done_;
  }
  if (both) delete this;
}

}  // namespace chat
