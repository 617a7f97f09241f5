#ifndef CHAT_SERVER_SERVICE_HEALTH_SERVICE_H_
#define CHAT_SERVER_SERVICE_HEALTH_SERVICE_H_

#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/store/conversation_store.h"

namespace chat {

// grpc.health.v1.Health, served from code generated out of Debian's
// grpc-proto (gRPC's built-in health service does not register its
// descriptor, so reflection could list it but not describe it). Reports
// SERVING for the whole server ("") and for chat.v1.ChatService while the
// store is reachable (SetStoreReachable) and until SetNotServing().
// Thread-safe.
class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  HealthService() = default;
  ~HealthService() override;

  // From now on every check answers NOT_SERVING, and open Watch streams are
  // told so and finished, so that shutdown does not wait on them.
  void SetNotServing();

  // Whether the store answers (StoreHealthProbe says). While it does not,
  // checks answer NOT_SERVING and open Watch streams are told so, and told
  // SERVING again when it answers: the gateway's health checks then route
  // around a replica that lost its database, and back to it.
  void SetStoreReachable(bool reachable);

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
  bool store_reachable_ ABSL_GUARDED_BY(mu_) = true;
  absl::flat_hash_set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

// Asks the store a cheap question (GetSession of a reserved tenant's
// session, one indexed lookup on PostgreSQL) every `interval` on a thread
// of its own, so a store that hangs holds no pool thread, and tells
// `health` whether the store is reachable: UNAVAILABLE (the database is
// down, or no connection came within the pool's wait) means not; any other
// answer, NOT_FOUND included, means it is. Logs each change. The first
// probe runs at once. Stops (and joins) on destruction.
class StoreHealthProbe {
 public:
  StoreHealthProbe(store::ConversationStore* store, HealthService* health,
                   absl::Duration interval = absl::Seconds(1));
  StoreHealthProbe(const StoreHealthProbe&) = delete;
  StoreHealthProbe& operator=(const StoreHealthProbe&) = delete;
  ~StoreHealthProbe();

  // One probe: true if the store is reachable.
  static bool Probe(store::ConversationStore& store, std::string* error);

 private:
  void Run();

  store::ConversationStore* const store_;
  HealthService* const health_;
  const absl::Duration interval_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_HEALTH_SERVICE_H_
