// Idempotent turns (ChatRequest.request_id, the `idempotency-key` metadata
// the gateway makes of REST's Idempotency-Key) through the real chat-server,
// on SQLite and, across two replicas, on PostgreSQL.
//
// Strategy: a repeat must not store a second turn nor ask the model again.
// The echo provider answers "Echo: <message>", so each check reads the
// session's history (one turn, not two) and the replicas' /metrics:
// chatd_idempotent_replays_total counts the repeats answered from the store,
// chatd_tokens_total the turns a provider answered. The replica test starts
// two replicas on one PostgreSQL database with a slow echo (so the two
// requests overlap), releases one request at each from two threads with one
// notification, and expects both answers equal, one turn stored, and between
// the replicas exactly one provider answer and one replay. No sleeps: calls
// are waited on, and the metrics are read after both calls returned.

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::CallChatStream;
using ::chat::testing::CallGetHistory;
using ::chat::testing::HttpGetBody;
using ::chat::testing::MakeChatRequest;
using ::chat::testing::SampleValue;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatRequest;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::testing::HasSubstr;

const bool kFastClientPolling = ::chat::testing::PollIdleChannelsOften();

struct Replica {
  std::unique_ptr<ServerProcess> process;
  std::unique_ptr<ChatService::Stub> stub;
  int metrics_port = 0;
};

// The port of "metrics on http://HOST:PORT/" in the server's log; 0 if none.
int MetricsPort(const std::string& log) {
  const std::string marker = "metrics on http://";
  size_t at = log.find(marker);
  if (at == std::string::npos) return 0;
  size_t colon = log.find(':', at + marker.size());
  size_t slash = log.find('/', colon);
  int port = 0;
  if (colon == std::string::npos || slash == std::string::npos ||
      !absl::SimpleAtoi(log.substr(colon + 1, slash - colon - 1), &port)) {
    return 0;
  }
  return port;
}

absl::StatusOr<Replica> StartReplica(const std::string& store,
                                     const std::string& echo_delay) {
  Replica replica;
  replica.process = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{
          "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
          absl::StrCat("--store=", store), "--provider=echo",
          absl::StrCat("--echo_delay=", echo_delay), "--shutdown_grace=5s"});
  if (absl::Status s = replica.process->Start(); !s.ok()) return s;
  replica.metrics_port = MetricsPort(replica.process->Log());
  if (replica.metrics_port == 0) {
    return absl::InternalError("no metrics port in the log");
  }
  auto channel = grpc::CreateChannel(replica.process->address(),
                                     grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + absl::Seconds(10)))) {
    return absl::UnavailableError("replica did not accept a connection");
  }
  replica.stub = ChatService::NewStub(channel);
  return replica;
}

// A metric's value on `replica` (0 if it has no such sample yet).
double Metric(const Replica& replica, const std::string& series) {
  absl::StatusOr<std::string> body =
      HttpGetBody(replica.metrics_port, "/metrics");
  EXPECT_TRUE(body.ok()) << body.status();
  if (!body.ok()) return -1;
  return SampleValue(*body, series).value_or(0);
}

const char kReplays[] = "chatd_idempotent_replays_total";
const char kAnswered[] =
    "chatd_tokens_total{direction=\"output\",model=\"echo\","
    "tenant=\"default\"}";

grpc::Status Chat(ChatService::Stub& stub, const ChatRequest& request,
                  ChatResponse* response,
                  const std::string& idempotency_key = "") {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  if (!idempotency_key.empty()) {
    context.AddMetadata("idempotency-key", idempotency_key);
  }
  return stub.Chat(&context, request, response);
}

ChatRequest WithId(ChatRequest request, const std::string& id) {
  request.set_request_id(id);
  return request;
}

class IdempotencySqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Replica> replica = StartReplica(
        absl::StrCat("sqlite:", ::chat::testing::MakeTempDir(), "/chat.db"),
        "0s");
    ASSERT_TRUE(replica.ok()) << replica.status();
    replica_ = *std::move(replica);
  }

  Replica replica_;
};

TEST_F(IdempotencySqliteTest, RepeatGetsTheStoredAnswerAndStoresNoTurn) {
  const ChatRequest request = WithId(MakeChatRequest("s1", "hello"), "req-1");
  ChatResponse first;
  ASSERT_TRUE(Chat(*replica_.stub, request, &first).ok());
  ChatResponse second;
  grpc::Status repeat = Chat(*replica_.stub, request, &second);
  ASSERT_TRUE(repeat.ok()) << repeat.error_message();
  EXPECT_EQ(second.response(), first.response());
  EXPECT_EQ(second.turn_count(), 1);
  EXPECT_EQ(second.timestamp(), first.timestamp());
  EXPECT_EQ(CallGetHistory(*replica_.stub, "s1").turn_count(), 1);
  EXPECT_EQ(Metric(replica_, kReplays), 1);
  EXPECT_EQ(Metric(replica_, kAnswered), first.usage().output_tokens());

  // A stream repeat replays the answer as one delta.
  std::vector<std::string> deltas;
  ChatResponse done;
  ASSERT_TRUE(CallChatStream(*replica_.stub, request, &deltas, &done).ok());
  EXPECT_THAT(deltas, ::testing::ElementsAre(first.response()));
  EXPECT_EQ(done.response(), first.response());
  EXPECT_EQ(CallGetHistory(*replica_.stub, "s1").turn_count(), 1);

  // Without an id, the same message is a new turn.
  ChatResponse fresh;
  ASSERT_TRUE(
      Chat(*replica_.stub, MakeChatRequest("s1", "hello"), &fresh).ok());
  EXPECT_EQ(fresh.turn_count(), 2);
}

TEST_F(IdempotencySqliteTest, ReuseWithAnotherMessageOrSessionIsRefused) {
  ChatResponse response;
  ASSERT_TRUE(
      Chat(*replica_.stub, WithId(MakeChatRequest("s1", "one"), "r"), &response)
          .ok());
  grpc::Status other_message = Chat(
      *replica_.stub, WithId(MakeChatRequest("s1", "two"), "r"), &response);
  EXPECT_EQ(other_message.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(other_message.error_message(), HasSubstr("request_id r"));
  // The standard detail tells this refusal from other FAILED_PRECONDITIONs
  // (the gateway answers it 409).
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(other_message.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(info.domain(), "chatd");
  grpc::Status other_session = Chat(
      *replica_.stub, WithId(MakeChatRequest("s2", "one"), "r"), &response);
  EXPECT_EQ(other_session.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // A stream is refused the same way, before any delta.
  std::vector<std::string> deltas;
  grpc::Status other_stream = CallChatStream(
      *replica_.stub, WithId(MakeChatRequest("s1", "three"), "r"), &deltas,
      &response);
  EXPECT_EQ(other_stream.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(deltas, ::testing::IsEmpty());
  ASSERT_TRUE(details.ParseFromString(other_stream.error_details()));
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "IDEMPOTENCY_KEY_REUSED");
  EXPECT_EQ(CallGetHistory(*replica_.stub, "s1").turn_count(), 1);
}

TEST_F(IdempotencySqliteTest, IdempotencyKeyMetadataActsAsRequestId) {
  const ChatRequest request = MakeChatRequest("s1", "hi");
  ChatResponse first;
  ASSERT_TRUE(Chat(*replica_.stub, request, &first, "key-1").ok());
  ChatResponse second;
  // The body's request_id, equal to the header: the same id.
  ASSERT_TRUE(
      Chat(*replica_.stub, WithId(request, "key-1"), &second, "key-1").ok());
  EXPECT_EQ(second.response(), first.response());
  EXPECT_EQ(CallGetHistory(*replica_.stub, "s1").turn_count(), 1);
  grpc::Status differ =
      Chat(*replica_.stub, WithId(request, "key-2"), &second, "key-1");
  EXPECT_EQ(differ.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status bad =
      Chat(*replica_.stub, WithId(request, "not valid!"), &second);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

std::string PostgresStoreOrSkip() {
  absl::StatusOr<std::string> conninfo =
      ::chat::testing::MakeFreshPostgresSchema();
  if (!conninfo.ok()) return "";
  return absl::StrCat("postgres:", *conninfo);
}

TEST(IdempotencyReplicasTest, SameRequestAtTwoReplicasAskesTheModelOnce) {
  std::string store = PostgresStoreOrSkip();
  if (store.empty()) {
    if (::chat::testing::PostgresRequired()) {
      GTEST_FAIL() << "PostgreSQL required (CHAT_TEST_REQUIRE_POSTGRES=1) "
                      "but CHAT_TEST_POSTGRES_DSN is unusable";
    }
    GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run";
  }
  // A slow echo, so the second request arrives while the first runs and
  // waits for it.
  absl::StatusOr<Replica> a = StartReplica(store, "50ms");
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Replica> b = StartReplica(store, "50ms");
  ASSERT_TRUE(b.ok()) << b.status();
  Replica* replicas[2] = {&*a, &*b};

  for (int round = 0; round < 3; ++round) {
    const std::string session = absl::StrCat("s", round);
    const ChatRequest request = WithId(
        MakeChatRequest(session, "same question"), absl::StrCat("r", round));
    absl::Notification go;
    grpc::Status status[2];
    ChatResponse response[2];
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        go.WaitForNotification();
        status[i] = Chat(*replicas[i]->stub, request, &response[i]);
      });
    }
    go.Notify();
    for (std::thread& t : threads) t.join();
    ASSERT_TRUE(status[0].ok()) << status[0].error_message();
    ASSERT_TRUE(status[1].ok()) << status[1].error_message();
    EXPECT_EQ(response[0].response(), response[1].response());
    EXPECT_EQ(response[0].timestamp(), response[1].timestamp());
    EXPECT_EQ(response[0].turn_count(), 1);
    EXPECT_EQ(CallGetHistory(*a->stub, session).turn_count(), 1);
  }
  // Per round: one provider answer and one replay, between the replicas.
  EXPECT_EQ(Metric(*a, kReplays) + Metric(*b, kReplays), 3);
  ChatResponse one;
  ASSERT_TRUE(
      Chat(*a->stub, MakeChatRequest("other", "same question"), &one).ok());
  const double tokens_per_answer = one.usage().output_tokens();
  EXPECT_EQ(Metric(*a, kAnswered) + Metric(*b, kAnswered),
            4 * tokens_per_answer);
}

}  // namespace
}  // namespace chat
