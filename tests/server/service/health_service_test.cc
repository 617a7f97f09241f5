#include "server/service/health_service.h"

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/store/memory_store.h"

namespace chat {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

// A memory store whose GetSession fails with UNAVAILABLE while `down`, as
// PostgreSQL's does while the database is gone. The rest delegates.
class SwitchableStore final : public store::ConversationStore {
 public:
  void set_down(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }

  absl::StatusOr<store::SessionInfo> GetSession(
      const store::SessionKey& key) override {
    {
      absl::MutexLock lock(&mu_);
      if (down_) return absl::UnavailableError("postgres: connection refused");
    }
    return memory_.GetSession(key);
  }
  absl::StatusOr<std::vector<store::StoredMessage>> LoadHistory(
      const store::SessionKey& key) override {
    return memory_.LoadHistory(key);
  }
  absl::StatusOr<store::StoredTurn> AppendTurn(
      const store::SessionKey& key, int expected_turn_count,
      absl::string_view system_prompt, const store::Turn& turn) override {
    return memory_.AppendTurn(key, expected_turn_count, system_prompt, turn);
  }
  absl::StatusOr<int> ResetSession(const store::SessionKey& key,
                                   absl::Time now) override {
    return memory_.ResetSession(key, now);
  }
  absl::StatusOr<bool> DeleteSession(const store::SessionKey& key) override {
    return memory_.DeleteSession(key);
  }
  absl::StatusOr<store::SessionPage> ListSessions(
      absl::string_view tenant, int page_size,
      absl::string_view page_token) override {
    return memory_.ListSessions(tenant, page_size, page_token);
  }
  absl::StatusOr<store::StoreStats> GetStats(
      absl::string_view tenant) override {
    return memory_.GetStats(tenant);
  }
  absl::StatusOr<int64_t> DeleteSessionsIdleSince(absl::Time cutoff) override {
    return memory_.DeleteSessionsIdleSince(cutoff);
  }
  store::KeyStore& keys() override { return memory_.keys(); }
  store::QuotaStore& quotas() override { return memory_.quotas(); }

 private:
  store::MemoryConversationStore memory_;
  absl::Mutex mu_;
  bool down_ ABSL_GUARDED_BY(mu_) = false;
};

class HealthServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&health_);
    server_ = builder.BuildAndStart();
    stub_ = Health::NewStub(server_->InProcessChannel({}));
  }
  void TearDown() override {
    health_.SetNotServing();
    server_->Shutdown();
  }

  HealthCheckResponse::ServingStatus Check(const std::string& service) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status = stub_->Check(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }

  HealthService health_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Health::Stub> stub_;
};

TEST_F(HealthServiceTest, CheckFollowsTheStore) {
  EXPECT_EQ(Check("chat.v1.ChatService"), HealthCheckResponse::SERVING);
  health_.SetStoreReachable(false);
  EXPECT_EQ(Check("chat.v1.ChatService"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Check(""), HealthCheckResponse::NOT_SERVING);
  health_.SetStoreReachable(true);
  EXPECT_EQ(Check("chat.v1.ChatService"), HealthCheckResponse::SERVING);
}

TEST_F(HealthServiceTest, ShutdownWinsOverAStoreThatComesBack) {
  health_.SetNotServing();
  health_.SetStoreReachable(false);
  health_.SetStoreReachable(true);
  EXPECT_EQ(Check("chat.v1.ChatService"), HealthCheckResponse::NOT_SERVING);
}

TEST_F(HealthServiceTest, WatchIsToldEachChangeAndFinishesOnShutdown) {
  grpc::ClientContext context;
  HealthCheckRequest request;
  request.set_service("chat.v1.ChatService");
  auto watch = stub_->Watch(&context, request);
  HealthCheckResponse seen;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::SERVING);

  health_.SetStoreReachable(false);
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::NOT_SERVING);
  health_.SetStoreReachable(true);
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::SERVING);

  health_.SetNotServing();
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&seen));
  EXPECT_TRUE(watch->Finish().ok());
}

TEST_F(HealthServiceTest, AWatchOfAnUnknownServiceStaysUnknown) {
  grpc::ClientContext context;
  HealthCheckRequest request;
  request.set_service("no.such.Service");
  auto watch = stub_->Watch(&context, request);
  HealthCheckResponse seen;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  health_.SetStoreReachable(false);
  health_.SetNotServing();
  // Shutdown is the next thing it hears, not the store.
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&seen));
}

TEST(StoreHealthProbeTest, ProbeSaysWhetherTheStoreAnswers) {
  SwitchableStore store;
  std::string error;
  EXPECT_TRUE(StoreHealthProbe::Probe(store, &error));  // NOT_FOUND is fine.
  store.set_down(true);
  EXPECT_FALSE(StoreHealthProbe::Probe(store, &error));
  EXPECT_EQ(error, "postgres: connection refused");
}

TEST_F(HealthServiceTest, TheProbeDrivesTheHealthOfARunningServer) {
  SwitchableStore store;
  grpc::ClientContext context;
  HealthCheckRequest request;
  request.set_service("chat.v1.ChatService");
  auto watch = stub_->Watch(&context, request);
  HealthCheckResponse seen;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::SERVING);

  StoreHealthProbe probe(&store, &health_, absl::Milliseconds(10));
  store.set_down(true);
  // Each Read returns on the change the probe made: no polling here.
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::NOT_SERVING);
  store.set_down(false);
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::SERVING);
  context.TryCancel();
  (void)watch->Finish();
}

}  // namespace
}  // namespace chat
