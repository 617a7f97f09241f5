// The gateway's safe default. Strategy: a fake chat.admin.v1.AdminService on
// a loopback port answers GetAuthPolicy as scripted (anonymous allowed or
// not, UNAVAILABLE a few times first), and CheckBackendAuthPolicy is run
// against it over the channel chat-gateway uses; a backend with no
// AdminService, a port nobody listens on, and one that comes up while the
// check waits cover the rest.

#include "gateway/app/auth_policy.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "chat/admin/v1/admin.grpc.pb.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gateway/app/backend_channel.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::gateway {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

class FakeAdminService final : public chat::admin::v1::AdminService::Service {
 public:
  grpc::Status GetAuthPolicy(
      grpc::ServerContext* /*context*/,
      const chat::admin::v1::GetAuthPolicyRequest* /*request*/,
      chat::admin::v1::GetAuthPolicyResponse* response) override {
    ++calls;
    if (unavailable_answers.fetch_sub(1) > 0) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "starting");
    }
    response->set_anonymous_remote_allowed(anonymous_remote_allowed.load());
    return grpc::Status::OK;
  }

  std::atomic<bool> anonymous_remote_allowed{false};
  std::atomic<int> unavailable_answers{0};
  std::atomic<int> calls{0};
};

// A chat-server without AdminService: it predates API keys.
class OldChatService final : public chat::v1::ChatService::Service {};

// A backend on 127.0.0.1:`port` (0: any) serving `service`, healthy for
// the gateway's channel.
std::unique_ptr<grpc::Server> StartBackend(grpc::Service* service, int* port) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", *port),
                           grpc::InsecureServerCredentials(), port);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server != nullptr) {
    server->GetHealthCheckService()->SetServingStatus("chat.v1.ChatService",
                                                      true);
  }
  return server;
}

std::shared_ptr<BackendSet> BackendsAt(int port) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeBackendChannel(absl::StrCat("127.0.0.1:", port));
  EXPECT_THAT(channel, IsOk());
  return std::make_shared<BackendSet>(*channel);
}

TEST(AuthPolicyTest, BackendThatRequiresKeysPasses) {
  FakeAdminService admin;
  int port = 0;
  std::unique_ptr<grpc::Server> backend = StartBackend(&admin, &port);
  ASSERT_NE(backend, nullptr);
  EXPECT_THAT(CheckBackendAuthPolicy(*BackendsAt(port), absl::Seconds(10)),
              IsOk());
  backend->Shutdown();
}

TEST(AuthPolicyTest, BackendServingAnonymousCallersIsRefused) {
  FakeAdminService admin;
  admin.anonymous_remote_allowed = true;
  int port = 0;
  std::unique_ptr<grpc::Server> backend = StartBackend(&admin, &port);
  ASSERT_NE(backend, nullptr);
  EXPECT_THAT(CheckBackendAuthPolicy(*BackendsAt(port), absl::Seconds(10)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("create an API key on chat-server"),
                             HasSubstr("--allow_anonymous"))));
  backend->Shutdown();
}

TEST(AuthPolicyTest, BackendWithoutAdminServiceIsRefused) {
  OldChatService chat;
  int port = 0;
  std::unique_ptr<grpc::Server> backend = StartBackend(&chat, &port);
  ASSERT_NE(backend, nullptr);
  EXPECT_THAT(CheckBackendAuthPolicy(*BackendsAt(port), absl::Seconds(10)),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("--allow_anonymous")));
  backend->Shutdown();
}

TEST(AuthPolicyTest, UnavailableAnswersAreRetried) {
  FakeAdminService admin;
  admin.unavailable_answers = 2;
  int port = 0;
  std::unique_ptr<grpc::Server> backend = StartBackend(&admin, &port);
  ASSERT_NE(backend, nullptr);
  EXPECT_THAT(CheckBackendAuthPolicy(*BackendsAt(port), absl::Seconds(10)),
              IsOk());
  EXPECT_EQ(admin.calls.load(), 3);
  backend->Shutdown();
}

TEST(AuthPolicyTest, UnreachableBackendFailsAfterTheWait) {
  // A port that was just free: nothing listens there any more.
  FakeAdminService admin;
  int port = 0;
  std::unique_ptr<grpc::Server> gone = StartBackend(&admin, &port);
  ASSERT_NE(gone, nullptr);
  gone->Shutdown();
  gone.reset();
  const absl::Time start = absl::Now();
  EXPECT_THAT(
      CheckBackendAuthPolicy(*BackendsAt(port), absl::Milliseconds(500)),
      StatusIs(absl::StatusCode::kUnavailable,
               HasSubstr("--backend_wait=500ms")));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
}

// main's stop signals are blocked, so the wait asks whether to stop.
TEST(AuthPolicyTest, StopRequestEndsTheWait) {
  FakeAdminService admin;
  int port = 0;
  std::unique_ptr<grpc::Server> gone = StartBackend(&admin, &port);
  ASSERT_NE(gone, nullptr);
  gone->Shutdown();
  gone.reset();
  int asked = 0;
  EXPECT_THAT(CheckBackendAuthPolicy(*BackendsAt(port), absl::Hours(1),
                                     [&asked] { return ++asked == 2; }),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(asked, 2);
}

// Start-up order does not matter: the check waits for chat-server to come
// up, within --backend_wait.
TEST(AuthPolicyTest, WaitsForABackendThatComesUpLater) {
  FakeAdminService admin;
  int port = 0;
  std::unique_ptr<grpc::Server> first = StartBackend(&admin, &port);
  ASSERT_NE(first, nullptr);
  first->Shutdown();
  first.reset();
  std::shared_ptr<BackendSet> backends = BackendsAt(port);
  absl::Status result = absl::UnknownError("not run");
  std::thread check(
      [&] { result = CheckBackendAuthPolicy(*backends, absl::Seconds(30)); });
  std::unique_ptr<grpc::Server> backend = StartBackend(&admin, &port);
  ASSERT_NE(backend, nullptr);
  check.join();
  EXPECT_THAT(result, IsOk());
  backend->Shutdown();
}

// With several backends (--backend by names), one that is down does not
// hold the check up: each attempt goes to a READY one.
TEST(AuthPolicyTest, SeveralBackendsOneDownAsksTheOneUp) {
  FakeAdminService admin;
  int port = 0;
  std::unique_ptr<grpc::Server> backend = StartBackend(&admin, &port);
  ASSERT_NE(backend, nullptr);
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
      MakeBackendChannels(absl::StrCat("localhost:1,127.0.0.1:", port));
  ASSERT_THAT(channels.status(), IsOk());
  ASSERT_EQ(channels->size(), 2u);
  BackendSet backends(*std::move(channels));
  EXPECT_THAT(CheckBackendAuthPolicy(backends, absl::Seconds(10)), IsOk());
  backend->Shutdown();
}

TEST(KeysCrossNetworkInClearTest, OnlyPlaintextToAHostOffLoopback) {
  EXPECT_FALSE(KeysCrossNetworkInClear("127.0.0.1:50051", false));
  EXPECT_FALSE(KeysCrossNetworkInClear("localhost:50051", false));
  EXPECT_FALSE(KeysCrossNetworkInClear("[::1]:50051", false));
  EXPECT_FALSE(
      KeysCrossNetworkInClear("127.0.0.1:50051, 127.0.0.2:50052", false));
  EXPECT_TRUE(KeysCrossNetworkInClear("10.0.0.5:50051", false));
  EXPECT_TRUE(KeysCrossNetworkInClear("chat.internal:50051", false));
  EXPECT_TRUE(KeysCrossNetworkInClear("[2001:db8::1]:50051", false));
  // One replica off loopback is enough for keys to cross in clear.
  EXPECT_TRUE(KeysCrossNetworkInClear("127.0.0.1:50051,10.0.0.6:50051", false));
  // --backend_ca set: TLS to every address.
  EXPECT_FALSE(KeysCrossNetworkInClear("10.0.0.5:50051", true));
  EXPECT_FALSE(KeysCrossNetworkInClear("chat.internal:50051", true));
}

}  // namespace
}  // namespace chat::gateway
