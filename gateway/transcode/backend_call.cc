#include "gateway/transcode/backend_call.h"

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace chat::gateway {

bool NoBackendTookCall(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  // round_robin (the backend channels' policy) with every backend down or
  // NOT_SERVING; pick_first's; a resolver that returned no address; a
  // resolver that failed before any address was known.
  static constexpr absl::string_view kPickFailures[] = {
      "connections to all backends failing",
      "failed to connect to all addresses",
      "empty address list",
      "DNS resolution failed",
  };
  for (absl::string_view prefix : kPickFailures) {
    if (absl::StartsWith(status.error_message(), prefix)) return true;
  }
  return false;
}

BackendCall::BackendCall(absl::Time deadline, Metadata metadata)
    : deadline_(deadline), metadata_(std::move(metadata)) {}

std::shared_ptr<grpc::ClientContext> BackendCall::NewAttempt() {
  auto context = std::make_shared<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(deadline_));
  for (const auto& [key, value] : metadata_) context->AddMetadata(key, value);
  {
    absl::MutexLock lock(&mu_);
    current_ = context;
    ++attempts_;
  }
  // After current_ is set: a ClientGone() in between cancels it there.
  if (client_gone_->load()) context->TryCancel();
  return context;
}

void BackendCall::ClientGone() {
  client_gone_->store(true);
  std::shared_ptr<grpc::ClientContext> current;
  std::function<void()> cancel_local;
  {
    absl::MutexLock lock(&mu_);
    current = current_.lock();
    cancel_local = cancel_local_;
  }
  if (current != nullptr) current->TryCancel();
  if (cancel_local) cancel_local();
}

void BackendCall::CancelOnClientGone(std::function<void()> cancel) {
  {
    absl::MutexLock lock(&mu_);
    cancel_local_ = cancel;
  }
  // After cancel_local_ is set: a ClientGone() in between runs it there
  // (a cancel may run twice).
  if (client_gone_->load()) cancel();
}

std::shared_ptr<grpc::ClientContext> BackendCall::Resend() {
  {
    absl::MutexLock lock(&mu_);
    ++resends_;
  }
  return NewAttempt();
}

int BackendCall::resends() const {
  absl::MutexLock lock(&mu_);
  return resends_;
}

int BackendCall::attempts() const {
  absl::MutexLock lock(&mu_);
  return attempts_;
}

}  // namespace chat::gateway
