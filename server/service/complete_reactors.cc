#include "server/service/complete_reactors.h"

#include <utility>

#include "server/service/grpc_status.h"
#include "server/service/rate_limit_metadata.h"

namespace chat {
namespace {

// CompleteRequest and CompleteStreamRequest carry the same fields.
template <typename Request>
ChatTurnRequest StatelessTurnFrom(const Request& request,
                                  const std::string& tenant) {
  ChatTurnRequest turn;
  turn.tenant = tenant;
  turn.stateless = true;
  turn.messages.reserve(request.messages_size());
  for (const chat::v1::CompletionMessage& m : request.messages()) {
    turn.messages.push_back({m.role(), m.content(), std::nullopt});
  }
  if (request.has_system_prompt()) turn.system_prompt = request.system_prompt();
  if (request.has_model()) turn.model = request.model();
  if (request.has_max_tokens()) turn.max_tokens = request.max_tokens();
  if (request.has_temperature()) turn.temperature = request.temperature();
  turn.stop.assign(request.stop().begin(), request.stop().end());
  turn.user = request.user();
  return turn;
}

}  // namespace

ChatTurnRequest ToStatelessTurnRequest(const chat::v1::CompleteRequest& request,
                                       const std::string& tenant) {
  return StatelessTurnFrom(request, tenant);
}

ChatTurnRequest ToStatelessTurnRequest(
    const chat::v1::CompleteStreamRequest& request, const std::string& tenant) {
  return StatelessTurnFrom(request, tenant);
}

void FillCompleteResponse(const ChatTurnResult& result,
                          chat::v1::CompleteResponse* response) {
  response->set_response(result.response);
  response->set_model(result.model);
  response->set_stop_reason(result.stop_reason);
  response->mutable_usage()->set_input_tokens(
      static_cast<int32_t>(result.input_tokens));
  response->mutable_usage()->set_output_tokens(
      static_cast<int32_t>(result.output_tokens));
  // Left unset for a model without a price: absent, not 0.
  if (result.cost_usd.has_value()) response->set_cost_usd(*result.cost_usd);
}

// CompleteUnaryReactor

CompleteUnaryReactor::CompleteUnaryReactor(grpc::CallbackServerContext* context,
                                           ChatEngine* engine,
                                           chat::v1::CompleteResponse* response)
    : context_(context),
      engine_(engine),
      response_(response),
      call_log_(StartCallLog(*context, "Complete")) {}

void CompleteUnaryReactor::Start(absl::StatusOr<ChatTurnRequest> request) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) refused = absl::CancelledError("the call was cancelled");
  }
  if (refused.ok() && !request.ok()) refused = request.status();
  if (refused.ok()) {
    request->traceparent = ProviderTraceparent(call_log_);
    call_log_.SetTurn(*request);
    absl::StatusOr<std::shared_ptr<TurnHandle>> turn =
        engine_->StartTurn(*std::move(request), this);
    if (turn.ok()) {
      bool cancel;
      bool all_done;
      {
        absl::MutexLock lock(&mu_);
        turn_ = *turn;
        cancel = cancelled_;
        start_done_ = true;
        all_done = grpc_done_ && engine_done_;
      }
      if (cancel) (*turn)->Cancel();
      if (all_done) delete this;
      return;
    }
    refused = turn.status();
  }
  LogTurnCall(call_log_, refused);
  {
    absl::MutexLock lock(&mu_);
    start_done_ = true;
  }
  FinishWithError(refused);
  Release(/*grpc_side=*/false);
}

void CompleteUnaryReactor::OnAdmitted(const RateLimitStatus& status) {
  for (const auto& [key, value] : RateLimitMetadata(status)) {
    context_->AddInitialMetadata(key, value);
  }
}

void CompleteUnaryReactor::OnComplete(absl::StatusOr<ChatTurnResult> result) {
  LogTurnCall(call_log_, result);
  if (result.ok()) {
    FillCompleteResponse(*result, response_);
    Finish(grpc::Status::OK);
  } else {
    FinishWithError(result.status());
  }
  Release(/*grpc_side=*/false);
}

void CompleteUnaryReactor::OnCancel() {
  std::shared_ptr<TurnHandle> turn;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    turn = turn_;
  }
  if (turn != nullptr) turn->Cancel();
}

void CompleteUnaryReactor::OnDone() { Release(/*grpc_side=*/true); }

void CompleteUnaryReactor::FinishWithError(const absl::Status& status) {
  for (const auto& [key, value] : RefusalMetadata(status)) {
    context_->AddTrailingMetadata(key, value);
  }
  Finish(ToGrpcStatus(status));
}

void CompleteUnaryReactor::Release(bool grpc_side) {
  bool both;
  {
    absl::MutexLock lock(&mu_);
    (grpc_side ? grpc_done_ : engine_done_) = true;
    both = grpc_done_ && engine_done_ && start_done_;
  }
  if (both) delete this;
}

// CompleteStreamReactor

CompleteStreamReactor::CompleteStreamReactor(
    grpc::CallbackServerContext* context, ChatEngine* engine)
    : context_(context),
      engine_(engine),
      call_log_(StartCallLog(*context, "CompleteStream")) {}

void CompleteStreamReactor::Start(absl::StatusOr<ChatTurnRequest> request) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) refused = absl::CancelledError("the call was cancelled");
  }
  if (refused.ok() && !request.ok()) refused = request.status();
  std::shared_ptr<TurnHandle> handle;
  if (refused.ok()) {
    request->streamed = true;
    request->traceparent = ProviderTraceparent(call_log_);
    call_log_.SetTurn(*request);
    // Not under mu_: the engine may call OnDelta from its threads at once.
    absl::StatusOr<std::shared_ptr<TurnHandle>> turn =
        engine_->StartTurn(*std::move(request), this);
    if (turn.ok()) {
      handle = *std::move(turn);
    } else {
      refused = turn.status();
    }
  }
  bool cancel = false;
  bool all_done = false;
  if (!refused.ok()) LogTurnCall(call_log_, refused);
  {
    absl::MutexLock lock(&mu_);
    start_done_ = true;
    if (!refused.ok()) {
      engine_done_ = true;  // The engine will never call back.
      SetFinalErrorLocked(refused);
      WriteOrFinishLocked();
      return;
    }
    turn_ = handle;
    cancel = cancelled_;
    all_done = grpc_done_ && engine_done_;
  }
  if (cancel) handle->Cancel();
  if (all_done) delete this;
}

void CompleteStreamReactor::OnAdmitted(const RateLimitStatus& status) {
  // Before the first delta, so these go out with the stream's headers.
  absl::MutexLock lock(&mu_);
  for (const auto& [key, value] : RateLimitMetadata(status)) {
    context_->AddInitialMetadata(key, value);
  }
}

void CompleteStreamReactor::SetFinalErrorLocked(const absl::Status& status) {
  for (const auto& [key, value] : RefusalMetadata(status)) {
    context_->AddTrailingMetadata(key, value);
  }
  events_.SetEnd(status);
}

void CompleteStreamReactor::OnDelta(absl::string_view text) {
  absl::MutexLock lock(&mu_);
  if (events_.client_gone()) return;
  chat::v1::CompleteStreamResponse event;
  event.mutable_delta()->set_text(std::string(text));
  events_.Push(std::move(event));
  WriteOrFinishLocked();
}

void CompleteStreamReactor::OnComplete(absl::StatusOr<ChatTurnResult> result) {
  LogTurnCall(call_log_, result);
  {
    absl::MutexLock lock(&mu_);
    if (result.ok()) {
      chat::v1::CompleteStreamResponse event;
      FillCompleteResponse(*result, event.mutable_done());
      events_.Push(std::move(event));
      events_.SetEnd(absl::OkStatus());
    } else {
      SetFinalErrorLocked(result.status());
    }
    WriteOrFinishLocked();
  }
  Release(/*grpc_side=*/false);
}

void CompleteStreamReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  // A failed write is the client gone; the turn is cancelled through
  // OnCancel.
  events_.WriteDone(ok);
  WriteOrFinishLocked();
}

void CompleteStreamReactor::OnCancel() {
  std::shared_ptr<TurnHandle> turn;
  {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    turn = turn_;
  }
  if (turn != nullptr) turn->Cancel();
}

void CompleteStreamReactor::OnDone() { Release(/*grpc_side=*/true); }

void CompleteStreamReactor::WriteOrFinishLocked() {
  // Under the lock: gRPC's StartWrite and Finish only queue the operation.
  OutgoingEvents<chat::v1::CompleteStreamResponse>::Step step = events_.Next();
  if (step.send != nullptr) {
    StartWrite(step.send);
  } else if (step.end.has_value()) {
    Finish(ToGrpcStatus(*step.end));
  }
}

void CompleteStreamReactor::Release(bool grpc_side) {
  bool both;
  {
    absl::MutexLock lock(&mu_);
    (grpc_side ? grpc_done_ : engine_done_) = true;
    both = grpc_done_ && engine_done_ && start_done_;
  }
  if (both) delete this;
}

}  // namespace chat
