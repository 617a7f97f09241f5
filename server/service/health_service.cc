#include "server/service/health_service.h"

#include "absl/status/status.h"
#include "common/logging.h"

namespace chat {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

namespace {
constexpr const char* kServices[] = {"", "chat.v1.ChatService",
                                     "grpc.health.v1.Health"};
}  // namespace

// One Watch stream: sends the current status, then each change (the store
// lost or back), and stays open until the client leaves or the server stops
// serving (then it sends NOT_SERVING and finishes). One write at a time, as
// the callback API requires: a change that comes during a write is sent
// after it, and only the latest status is.
class HealthService::Watcher final
    : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, HealthCheckResponse::ServingStatus status)
      : service_(service),
        known_(status != HealthCheckResponse::SERVICE_UNKNOWN),
        wanted_(status) {
    absl::MutexLock lock(&mu_);
    response_.set_status(status);
    writing_ = true;
    StartWrite(&response_);
  }

  // Sends `status` unless it is what the client saw last. A watch of an
  // unknown service stays SERVICE_UNKNOWN.
  void Update(HealthCheckResponse::ServingStatus status) {
    absl::MutexLock lock(&mu_);
    if (!known_) return;
    wanted_ = status;
    AdvanceLocked();
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
    if (stop_) wanted_ = HealthCheckResponse::NOT_SERVING;
    if (response_.status() != wanted_) {
      response_.set_status(wanted_);
      writing_ = true;
      StartWrite(&response_);
      return;
    }
    if (!stop_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }

  HealthService* const service_;
  const bool known_;
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  HealthCheckResponse::ServingStatus wanted_ ABSL_GUARDED_BY(mu_);
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
  return serving_ && store_reachable_ ? HealthCheckResponse::SERVING
                                      : HealthCheckResponse::NOT_SERVING;
}

void HealthService::SetNotServing() {
  // Held while stopping the watchers: a watcher deletes itself in OnDone only
  // after Forget(), which waits for this lock, so none can vanish under us.
  absl::MutexLock lock(&mu_);
  serving_ = false;
  for (Watcher* watcher : watchers_) watcher->Stop();
}

void HealthService::SetStoreReachable(bool reachable) {
  // Held while updating the watchers, as in SetNotServing.
  absl::MutexLock lock(&mu_);
  if (store_reachable_ == reachable) return;
  store_reachable_ = reachable;
  if (!serving_) return;  // Shutting down: the watchers are finishing.
  const HealthCheckResponse::ServingStatus status =
      reachable ? HealthCheckResponse::SERVING
                : HealthCheckResponse::NOT_SERVING;
  for (Watcher* watcher : watchers_) watcher->Update(status);
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
    // The store may have come or gone since StatusOf: send what holds now.
    if (serving) {
      watcher->Update(store_reachable_ ? HealthCheckResponse::SERVING
                                       : HealthCheckResponse::NOT_SERVING);
    }
  }
  if (!serving) watcher->Stop();
  return watcher;
}

StoreHealthProbe::StoreHealthProbe(store::ConversationStore* store,
                                   HealthService* health,
                                   absl::Duration interval)
    : store_(store),
      health_(health),
      interval_(interval),
      thread_([this] { Run(); }) {}

StoreHealthProbe::~StoreHealthProbe() {
  stop_.Notify();
  thread_.join();
}

bool StoreHealthProbe::Probe(store::ConversationStore& store,
                             std::string* error) {
  // A read of one row by primary key: it changes nothing, and whether the
  // session exists does not matter.
  absl::StatusOr<store::SessionInfo> session =
      store.GetSession({"chatd.health", "probe"});
  if (session.ok() || !absl::IsUnavailable(session.status())) return true;
  *error = std::string(session.status().message());
  return false;
}

void StoreHealthProbe::Run() {
  bool reachable = true;
  do {
    std::string error;
    const bool now = Probe(*store_, &error);
    if (now != reachable) {
      if (now) {
        LogInfo("the store answers again: health SERVING");
      } else {
        LogWarning("the store is unreachable (", error,
                   "): health NOT_SERVING until it answers");
      }
      reachable = now;
    }
    health_->SetStoreReachable(now);
  } while (!stop_.WaitForNotificationWithTimeout(interval_));
}

}  // namespace chat
