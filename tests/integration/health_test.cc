// Liveness, readiness and recovery through the real binaries: chat-gateway's
// /healthz and /readyz as chat-server comes and goes, calls that arrive while
// the only backend restarts (they wait for it within their deadline, and it
// is used again within about a second), a stream cut by the gateway's
// shutdown (UNAVAILABLE, not CANCELLED), and chat-server's gRPC health while
// its PostgreSQL is down. HTTP goes through curl; skips without it.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/curl.h"
#include "tests/testing/eventually.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::Curl;
using ::chat::testing::Eventually;
using ::chat::testing::HaveCurl;
using ::chat::testing::HttpResult;
using ::chat::testing::kCurlBinary;
using ::chat::testing::MakeTempDir;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<ServerProcess> MakeServer(const std::string& listen,
                                          const std::string& store,
                                          std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {
      absl::StrCat("--listen=", listen), absl::StrCat("--store=", store),
      "--provider=echo", "--echo_delay=1ms", "--shutdown_grace=2s"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args);
}

std::unique_ptr<ServerProcess> MakeGateway(
    const std::string& backend, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--listen=127.0.0.1:0",
                                   absl::StrCat("--backend=", backend)};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<ServerProcess>(CHAT_GATEWAY_BINARY, args);
}

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCurl()) GTEST_SKIP() << "no " << kCurlBinary;
    dir_ = MakeTempDir();
    store_ = absl::StrCat("sqlite:", dir_, "/chat.db");
  }

  // Polls /readyz until it answers `status`.
  bool ReadyzBecomes(int status) {
    return Eventually(
        [&] { return Curl({base_ + "/readyz"}).status == status; },
        absl::Seconds(20), absl::Milliseconds(50));
  }

  HttpResult PostChat(const std::string& session, const std::string& message,
                      absl::string_view timeout = "30S") {
    return Curl({"--max-time", "60", "-X", "POST", base_ + "/v1/chat", "-H",
                 "Content-Type: application/json", "-H",
                 absl::StrCat("grpc-timeout: ", timeout), "-d",
                 absl::StrCat(R"({"session_id":")", session, R"(","message":")",
                              message, R"("})")});
  }

  std::string dir_;
  std::string store_;
  std::string base_;
};

TEST_F(HealthTest, HealthzAndReadyzFollowTheBackend) {
  std::unique_ptr<ServerProcess> server = MakeServer("127.0.0.1:0", store_);
  ASSERT_TRUE(server->Start().ok()) << server->Log();
  const std::string backend = server->address();
  std::unique_ptr<ServerProcess> gateway = MakeGateway(backend);
  ASSERT_TRUE(gateway->Start().ok()) << gateway->Log();
  base_ = absl::StrCat("http://127.0.0.1:", gateway->port());

  HttpResult healthz = Curl({base_ + "/healthz"});
  EXPECT_EQ(healthz.status, 200) << healthz.body;
  EXPECT_EQ(healthz.body, R"({"status":"ok"})");
  EXPECT_TRUE(ReadyzBecomes(200)) << gateway->Log();
  EXPECT_EQ(Curl({"-X", "POST", base_ + "/readyz"}).status, 405);
  EXPECT_EQ(Curl({"-X", "OPTIONS", base_ + "/healthz"}).status, 204);

  ASSERT_TRUE(server->Stop(SIGTERM).ok());
  EXPECT_TRUE(ReadyzBecomes(503));
  HttpResult readyz = Curl({base_ + "/readyz"});
  EXPECT_THAT(readyz.body, HasSubstr("no backend is serving"));
  EXPECT_EQ(Curl({base_ + "/healthz"}).status, 200) << "the process is up";

  server = MakeServer(backend, store_);
  ASSERT_TRUE(server->Start().ok()) << server->Log();
  EXPECT_TRUE(ReadyzBecomes(200)) << gateway->Log();
}

// The scenario of issue 10: the only chat-server restarts (same port) while
// clients call. Each call waits for the backend within its deadline, and the
// backend is used within about a second of listening again, however long it
// was gone.
TEST_F(HealthTest, CallsDuringARestartWaitAndTheBackendIsUsedAtOnce) {
  std::unique_ptr<ServerProcess> server = MakeServer("127.0.0.1:0", store_);
  ASSERT_TRUE(server->Start().ok()) << server->Log();
  const std::string backend = server->address();
  std::unique_ptr<ServerProcess> gateway = MakeGateway(backend);
  ASSERT_TRUE(gateway->Start().ok()) << gateway->Log();
  base_ = absl::StrCat("http://127.0.0.1:", gateway->port());
  ASSERT_EQ(PostChat("before", "hello").status, 200) << gateway->Log();

  ASSERT_TRUE(server->Stop(SIGTERM).ok());
  // The gateway has seen the backend go (its connection failed, so gRPC's
  // reconnect backoff runs from here).
  ASSERT_TRUE(ReadyzBecomes(503));

  constexpr int kClients = 3;
  struct Outcome {
    absl::Mutex mu;
    std::vector<std::string> failures ABSL_GUARDED_BY(mu);
    std::vector<absl::Time> answered ABSL_GUARDED_BY(mu);
  } outcome;
  std::atomic<int> started{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      ++started;
      HttpResult r = PostChat(absl::StrCat("restart-", c), "while down");
      absl::MutexLock lock(&outcome.mu);
      if (r.status == 200) {
        outcome.answered.push_back(absl::Now());
      } else {
        outcome.failures.push_back(absl::StrCat(r.status, " ", r.body));
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return started.load() == kClients; }));
  // The length of the outage is the scenario (issue 10's), not a wait for
  // an event: with gRPC's default backoff (1 s growing by 1.6x, attempts
  // about 9.4 s and 16 s after the loss) the backend back after 10 s would
  // be tried again only ~5 s later; capped at 1 s it is tried within a
  // second.
  absl::SleepFor(absl::Seconds(10));
  server = MakeServer(backend, store_);
  ASSERT_TRUE(server->Start().ok()) << server->Log();
  // The first call after the backend is back.
  const absl::Time back = absl::Now();
  HttpResult after = PostChat("after", "back");
  const absl::Duration first_call = absl::Now() - back;
  EXPECT_EQ(after.status, 200) << after.body;
  for (std::thread& t : clients) t.join();

  absl::MutexLock lock(&outcome.mu);
  EXPECT_THAT(outcome.failures, ::testing::IsEmpty()) << gateway->Log();
  EXPECT_EQ(outcome.answered.size(), static_cast<size_t>(kClients));
  std::fprintf(stderr, "first call after the restart answered in %s\n",
               absl::FormatDuration(first_call).c_str());
  // A correctness bound on the reconnect backoff (about 1 s), with room for
  // a loaded machine; not a performance figure. Uncapped, this call waited
  // about 6 s.
  EXPECT_LT(first_call, absl::Seconds(3));
}

// A call that finds no backend waits only until its deadline.
TEST_F(HealthTest, ACallWithNoBackendFailsAtItsDeadline) {
  std::unique_ptr<ServerProcess> server = MakeServer("127.0.0.1:0", store_);
  ASSERT_TRUE(server->Start().ok()) << server->Log();
  std::unique_ptr<ServerProcess> gateway = MakeGateway(server->address());
  ASSERT_TRUE(gateway->Start().ok()) << gateway->Log();
  base_ = absl::StrCat("http://127.0.0.1:", gateway->port());
  ASSERT_TRUE(server->Stop(SIGTERM).ok());
  ASSERT_TRUE(ReadyzBecomes(503));

  const absl::Time start = absl::Now();
  HttpResult r = PostChat("nobody", "hello", "1S");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(900));
}

// A stream still running when the gateway stops (past its grace) is cut
// with UNAVAILABLE (retry: another gateway will serve it), not CANCELLED,
// which would say the client left.
TEST_F(HealthTest, AStreamCutByTheGatewaysShutdownGetsUnavailable) {
  std::unique_ptr<ServerProcess> server =
      MakeServer("127.0.0.1:0", store_, {"--echo_delay=200ms"});
  ASSERT_TRUE(server->Start().ok()) << server->Log();
  std::unique_ptr<ServerProcess> gateway =
      MakeGateway(server->address(), {"--shutdown_grace=0s"});
  ASSERT_TRUE(gateway->Start().ok()) << gateway->Log();
  base_ = absl::StrCat("http://127.0.0.1:", gateway->port());

  std::string words;
  for (int i = 0; i < 200; ++i) absl::StrAppend(&words, "word", i, " ");
  const std::string out = dir_ + "/stream.txt";
  HttpResult result;
  std::thread client([&] {
    result = Curl(
        {"-N", "--max-time", "60", "-o", out, "-X", "POST",
         base_ + "/v1/chat:stream", "-H", "Content-Type: application/json",
         "-d",
         absl::StrCat(R"({"session_id":"cut","message":")", words, R"("})")});
  });
  auto contents = [&] {
    std::ifstream in(out);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  // The stream is under way: the client has an event.
  EXPECT_TRUE(
      Eventually([&] { return contents().find("data:") != std::string::npos; },
                 absl::Seconds(20)));
  absl::StatusOr<int> code = gateway->Stop(SIGTERM);
  client.join();
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << gateway->Log();
  EXPECT_EQ(result.status, 200) << result.body;  // Sent with the first event.
  const std::string stream = contents();
  EXPECT_THAT(stream, HasSubstr("event: error"));
  EXPECT_THAT(stream, HasSubstr(R"("code":14)"));
  EXPECT_THAT(stream, HasSubstr("shutting down"));
  EXPECT_THAT(stream, Not(HasSubstr(R"("code":1,)")));
}

// chat-server answers NOT_SERVING while PostgreSQL is down and SERVING once
// it is back, on Check and on an open Watch; the gateway's readiness
// follows.
TEST(StoreHealthTest, NotServingWhilePostgresIsDown) {
  const char* script = std::getenv("CHAT_TEST_PG_CLUSTER_SCRIPT");
  if (script == nullptr) {
    if (std::getenv("CHAT_TEST_REQUIRE_POSTGRES") != nullptr &&
        std::string(std::getenv("CHAT_TEST_REQUIRE_POSTGRES")) == "1") {
      GTEST_FAIL() << "CHAT_TEST_PG_CLUSTER_SCRIPT unset";
    }
    GTEST_SKIP() << "set CHAT_TEST_PG_CLUSTER_SCRIPT (scripts/test.sh does)";
  }
  if (!HaveCurl()) GTEST_SKIP() << "no " << kCurlBinary;
  // A private cluster: stopping the shared one would break other tests.
  const std::string parent = MakeTempDir();
  chmod(parent.c_str(), 0755);  // The server runs as `postgres` under root.
  const std::string dir = parent + "/pg";
  std::string dsn;
  absl::StatusOr<int> started =
      RunCommand({"/bin/bash", script, "start", dir}, &dsn);
  ASSERT_TRUE(started.ok() && *started == 0) << dsn;
  while (!dsn.empty() && dsn.back() == '\n') dsn.pop_back();
  struct StopCluster {
    std::string script, dir;
    ~StopCluster() {
      std::string ignored;
      (void)RunCommand({"/bin/bash", script, "stop", dir}, &ignored);
    }
  } stop_cluster{script, dir};

  std::unique_ptr<ServerProcess> server = MakeServer(
      "127.0.0.1:0", absl::StrCat("postgres:", dsn), {"--store_connections=2"});
  ASSERT_TRUE(server->Start().ok()) << server->Log();
  std::unique_ptr<ServerProcess> gateway = MakeGateway(server->address());
  ASSERT_TRUE(gateway->Start().ok()) << gateway->Log();
  const std::string base = absl::StrCat("http://127.0.0.1:", gateway->port());

  std::unique_ptr<Health::Stub> health = Health::NewStub(grpc::CreateChannel(
      server->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext watch_context;
  watch_context.set_deadline(
      absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
  HealthCheckRequest request;
  request.set_service("chat.v1.ChatService");
  auto watch = health->Watch(&watch_context, request);
  HealthCheckResponse seen;
  ASSERT_TRUE(watch->Read(&seen));
  EXPECT_EQ(seen.status(), HealthCheckResponse::SERVING);
  EXPECT_TRUE(Eventually([&] { return Curl({base + "/readyz"}).status == 200; },
                         absl::Seconds(20), absl::Milliseconds(50)));

  std::string output;
  ASSERT_EQ(*RunCommand({"/bin/bash", script, "kill", dir}, &output), 0)
      << output;
  // The Watch stream is told: the event itself, no polling.
  ASSERT_TRUE(watch->Read(&seen)) << server->Log();
  EXPECT_EQ(seen.status(), HealthCheckResponse::NOT_SERVING);
  {
    grpc::ClientContext context;
    HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  }
  EXPECT_TRUE(Eventually([&] { return Curl({base + "/readyz"}).status == 503; },
                         absl::Seconds(20), absl::Milliseconds(50)));
  EXPECT_THAT(server->Log(), HasSubstr("health NOT_SERVING"));

  ASSERT_EQ(*RunCommand({"/bin/bash", script, "start", dir}, &output), 0)
      << output;
  ASSERT_TRUE(watch->Read(&seen)) << server->Log();
  EXPECT_EQ(seen.status(), HealthCheckResponse::SERVING);
  EXPECT_TRUE(Eventually([&] { return Curl({base + "/readyz"}).status == 200; },
                         absl::Seconds(20), absl::Milliseconds(50)));
  HttpResult chat = Curl({"-X", "POST", base + "/v1/chat", "-H",
                          "Content-Type: application/json", "-d",
                          R"({"session_id":"back","message":"hello"})"});
  EXPECT_EQ(chat.status, 200) << chat.body;

  watch_context.TryCancel();
  (void)watch->Finish();
}

}  // namespace
}  // namespace chat
