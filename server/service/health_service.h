#ifndef CHAT_SERVER_SERVICE_HEALTH_SERVICE_H_
#define CHAT_SERVER_SERVICE_HEALTH_SERVICE_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace chat {

// grpc.health.v1.Health, served from code generated out of Debian's
// grpc-proto (gRPC's built-in health service does not register its
// descriptor, so reflection could list it but not describe it). Reports
// SERVING for the whole server ("") and for chat.v1.ChatService until
// SetNotServing(). Thread-safe.
class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  HealthService() = default;
  ~HealthService() override;

  // From now on every check answers NOT_SERVING, and open Watch streams are
  // told so and finished, so that shutdown does not wait on them.
  void SetNotServing();

  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  class Watcher;
  friend class Watcher;

  // SERVING / NOT_SERVING for a known service, SERVICE_UNKNOWN otherwise.
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(
      const std::string& service) ABSL_LOCKS_EXCLUDED(mu_);
  void Forget(Watcher* watcher) ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = true;
  absl::flat_hash_set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_HEALTH_SERVICE_H_
