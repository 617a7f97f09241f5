#include "server/service/health_service.h"

namespace chat {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

namespace {
constexpr const char* kServices[] = {"", "chat.v1.ChatService",
                                     "grpc.health.v1.Health"};
}  // namespace

// One Watch stream: sends the current status, then stays open until the
// client leaves or the server stops serving (then it sends NOT_SERVING and
// finishes). One write at a time, as the callback API requires.
class HealthService::Watcher final
    : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, HealthCheckResponse::ServingStatus status)
      : service_(service) {
    absl::MutexLock lock(&mu_);
    response_.set_status(status);
    writing_ = true;
    StartWrite(&response_);
  }

  // Sends NOT_SERVING and finishes, once the write in flight (if any) is
  // done.
  void Stop() {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    AdvanceLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) stop_ = true;
    AdvanceLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    AdvanceLocked();
  }

  void OnDone() override {
    service_->Forget(this);
    delete this;
  }

 private:
  void AdvanceLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || finished_) return;
    if (cancelled_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
      return;
    }
    if (!stop_) return;
    if (response_.status() != HealthCheckResponse::NOT_SERVING) {
      response_.set_status(HealthCheckResponse::NOT_SERVING);
      writing_ = true;
      StartWrite(&response_);
      return;
    }
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  HealthService* const service_;
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

HealthService::~HealthService() = default;

HealthCheckResponse::ServingStatus HealthService::StatusOf(
    const std::string& service) {
  bool known = false;
  for (const char* name : kServices) known = known || service == name;
  if (!known) return HealthCheckResponse::SERVICE_UNKNOWN;
  absl::MutexLock lock(&mu_);
  return serving_ ? HealthCheckResponse::SERVING
                  : HealthCheckResponse::NOT_SERVING;
}

void HealthService::SetNotServing() {
  // Held while stopping the watchers: a watcher deletes itself in OnDone only
  // after Forget(), which waits for this lock, so none can vanish under us.
  absl::MutexLock lock(&mu_);
  serving_ = false;
  for (Watcher* watcher : watchers_) watcher->Stop();
}

void HealthService::Forget(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

grpc::ServerUnaryReactor* HealthService::Check(
    grpc::CallbackServerContext* context, const HealthCheckRequest* request,
    HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  HealthCheckResponse::ServingStatus status = StatusOf(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "unknown service: " + request->service()));
  } else {
    response->set_status(status);
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* /*context*/,
    const HealthCheckRequest* request) {
  auto* watcher = new Watcher(this, StatusOf(request->service()));
  bool serving;
  {
    absl::MutexLock lock(&mu_);
    watchers_.insert(watcher);
    serving = serving_;
  }
  if (!serving) watcher->Stop();
  return watcher;
}

}  // namespace chat
