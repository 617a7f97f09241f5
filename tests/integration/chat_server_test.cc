// The real chat-server binary on a free loopback port, driven through the
// generated stubs (and, in one test, through buf curl, a client this project
// did not write, using server reflection). Strategy: each test starts its own
// server on its own SQLite file, calls RPCs as a client would, and checks what
// a later call (or a restarted server) reads back.

#include <signal.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::MakeTempDir;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatRequest;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::chat::v1::ChatStreamResponse;
using ::testing::HasSubstr;

const bool kFastClientPolling = ::chat::testing::PollIdleChannelsOften();

class ChatServerTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }

  // Starts chat-server on the test's SQLite file (the same file across
  // restarts within a test).
  void StartServer(std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0",
        absl::StrCat("--store=sqlite:", dir_, "/data/chat.db"),
        "--echo_delay=2ms", "--shutdown_grace=5s",
        // Whatever keys the environment holds, these tests use echo.
        "--provider=echo"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args);
    ASSERT_TRUE(server_->Start().ok()) << server_->Log();
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    stub_ = ChatService::NewStub(channel_);
  }

  void StopServer() {
    absl::StatusOr<int> code = server_->Stop(SIGTERM);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << server_->Log();
    stub_.reset();
    channel_.reset();
  }

  grpc::Status Chat(const std::string& session, const std::string& message,
                    ChatResponse* response) {
    return ::chat::testing::CallChat(
        *stub_, ::chat::testing::MakeChatRequest(session, message), response);
  }

  // Streams one turn; returns its deltas and final event.
  grpc::Status Stream(const std::string& session, const std::string& message,
                      std::vector<std::string>* deltas, ChatResponse* done) {
    return ::chat::testing::CallChatStream(
        *stub_, ::chat::testing::MakeChatRequest(session, message), deltas,
        done);
  }

  chat::v1::GetHistoryResponse History(const std::string& session,
                                       grpc::Status* status = nullptr) {
    return ::chat::testing::CallGetHistory(*stub_, session, status);
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ChatService::Stub> stub_;
};

TEST_F(ChatServerTest, StatusAnswersTheTemplatesHealthBody) {
  StartServer();
  grpc::ClientContext context;
  chat::v1::GetStatusResponse response;
  ASSERT_TRUE(stub_->GetStatus(&context, {}, &response).ok());
  EXPECT_EQ(response.status(), "ok");
  EXPECT_EQ(response.service(), "chat-api");
}

TEST_F(ChatServerTest, ChatThenStreamThenHistoryShowsBothTurnsInOrder) {
  StartServer();
  ChatResponse first;
  ASSERT_TRUE(Chat("test-1", "Hello! What can you do?", &first).ok());
  EXPECT_EQ(first.session_id(), "test-1");
  EXPECT_EQ(first.turn_count(), 1);
  EXPECT_THAT(first.response(), HasSubstr("Hello! What can you do?"));
  EXPECT_EQ(first.model(), "echo");
  EXPECT_EQ(first.stop_reason(), "end_turn");
  EXPECT_GT(first.usage().input_tokens(), 0);
  EXPECT_GT(first.usage().output_tokens(), 0);
  EXPECT_THAT(first.timestamp(),
              ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z"));

  std::vector<std::string> deltas;
  ChatResponse done;
  ASSERT_TRUE(Stream("test-1", "And what did I say?", &deltas, &done).ok());
  EXPECT_GT(deltas.size(), 3u) << "the reply should arrive in pieces";
  EXPECT_EQ(absl::StrJoin(deltas, ""), done.response());
  EXPECT_EQ(done.turn_count(), 2);
  // The echo provider quotes the previous user message: memory works.
  EXPECT_THAT(done.response(),
              HasSubstr("Before that you said: \"Hello! What can you do?\""));

  chat::v1::GetHistoryResponse history = History("test-1");
  EXPECT_EQ(history.turn_count(), 2);
  EXPECT_EQ(history.system_prompt(), "You are a helpful AI assistant.");
  ASSERT_EQ(history.messages_size(), 4);
  EXPECT_EQ(history.messages(0).role(), "user");
  EXPECT_EQ(history.messages(0).content(), "Hello! What can you do?");
  EXPECT_EQ(history.messages(1).role(), "assistant");
  EXPECT_EQ(history.messages(1).content(), first.response());
  EXPECT_EQ(history.messages(2).content(), "And what did I say?");
  EXPECT_EQ(history.messages(3).content(), done.response());
}

TEST_F(ChatServerTest, HistorySurvivesARestartWhole) {
  StartServer();
  std::vector<std::string> sent;
  for (int i = 0; i < 3; ++i) {
    ChatResponse response;
    sent.push_back(absl::StrCat("message ", i));
    ASSERT_TRUE(Chat("durable", sent.back(), &response).ok());
  }
  chat::v1::GetHistoryResponse before = History("durable");
  StopServer();

  StartServer();
  chat::v1::GetHistoryResponse after = History("durable");
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString());
  ASSERT_EQ(after.messages_size(), 6);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(after.messages(2 * i).content(), sent[i]);
  // The conversation continues where it stopped.
  ChatResponse next;
  ASSERT_TRUE(Chat("durable", "again", &next).ok());
  EXPECT_EQ(next.turn_count(), 4);
}

TEST_F(ChatServerTest, InvalidRequestsSayWhatIsWrong) {
  StartServer();
  struct Case {
    std::string session, message;
    std::string expected;
  } cases[] = {
      {"s", "", "message is required"},
      {"s", std::string(64 * 1024 + 1, 'x'), "limit is 65536"},
      {"", "hi", "session_id is required"},
      {std::string(129, 'a'), "hi", "limit is 128"},
      {"no/slashes", "hi", "may contain only"},
  };
  for (const Case& c : cases) {
    ChatResponse response;
    grpc::Status status = Chat(c.session, c.message, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.expected;
    EXPECT_THAT(status.error_message(), HasSubstr(c.expected));
  }
  ChatRequest request;
  request.set_session_id("s");
  request.set_message("hi");
  request.set_max_tokens(0);
  grpc::ClientContext c1;
  ChatResponse response;
  EXPECT_EQ(stub_->Chat(&c1, request, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  request.clear_max_tokens();
  request.set_temperature(2.5);
  grpc::ClientContext c2;
  grpc::Status status = stub_->Chat(&c2, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("temperature"));
  // The stream validates the same way, before sending anything.
  std::vector<std::string> deltas;
  ChatResponse done;
  EXPECT_EQ(Stream("s", "", &deltas, &done).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(deltas.empty());
  // Nothing was stored by any of them.
  grpc::Status history_status;
  History("s", &history_status);
  EXPECT_EQ(history_status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ChatServerTest, MessageLimitIsConfigurable) {
  StartServer({"--max_message_bytes=10"});
  ChatResponse response;
  EXPECT_EQ(Chat("s", "0123456789", &response).error_code(),
            grpc::StatusCode::OK);
  grpc::Status status = Chat("s", "0123456789a", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("limit is 10"));
}

TEST_F(ChatServerTest, HistoryRpcsKeepTheTemplatesSemantics) {
  StartServer();
  grpc::Status status;
  History("nobody", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  ChatRequest request;
  request.set_session_id("keep");
  request.set_message("hi");
  request.set_system_prompt("Answer in French.");
  ChatResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Chat(&context, request, &response).ok());
  }
  ASSERT_TRUE(Chat("keep", "again", &response).ok());

  chat::v1::ResetSessionRequest reset;
  reset.set_session_id("keep");
  chat::v1::ResetSessionResponse reset_response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ResetSession(&context, reset, &reset_response).ok());
  }
  EXPECT_EQ(reset_response.status(), "reset");
  EXPECT_EQ(reset_response.previous_turns(), 2);
  chat::v1::GetHistoryResponse history = History("keep", &status);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(history.messages_size(), 0);
  EXPECT_EQ(history.system_prompt(), "Answer in French.");

  reset.set_session_id("nobody");
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ResetSession(&context, reset, &reset_response).ok());
  }
  EXPECT_EQ(reset_response.status(), "not_found");
  EXPECT_EQ(reset_response.session_id(), "nobody");

  chat::v1::DeleteSessionRequest del;
  del.set_session_id("keep");
  chat::v1::DeleteSessionResponse del_response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->DeleteSession(&context, del, &del_response).ok());
  }
  EXPECT_EQ(del_response.status(), "cleared");
  History("keep", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->DeleteSession(&context, del, &del_response).ok());
  }
  EXPECT_EQ(del_response.status(), "not_found");
}

TEST_F(ChatServerTest, ListSessionsPagesNewestFirstAndStatsCount) {
  StartServer();
  for (int i = 0; i < 5; ++i) {
    ChatResponse response;
    ASSERT_TRUE(Chat(absl::StrCat("s", i), "hi", &response).ok());
  }
  ChatResponse response;
  ASSERT_TRUE(Chat("s0", "latest activity", &response).ok());

  std::vector<std::string> listed;
  std::string token;
  do {
    chat::v1::ListSessionsRequest request;
    request.set_page_size(2);
    request.set_page_token(token);
    chat::v1::ListSessionsResponse page;
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListSessions(&context, request, &page).ok());
    EXPECT_LE(page.sessions_size(), 2);
    for (const auto& s : page.sessions()) {
      listed.push_back(s.session_id());
      EXPECT_EQ(s.turns(), s.session_id() == "s0" ? 2 : 1);
      EXPECT_FALSE(s.created_at().empty());
    }
    token = page.next_page_token();
  } while (!token.empty());
  EXPECT_THAT(listed, ::testing::ElementsAre("s0", "s4", "s3", "s2", "s1"));

  chat::v1::ListSessionsRequest bad;
  bad.set_page_size(1001);
  chat::v1::ListSessionsResponse page;
  grpc::ClientContext c1;
  EXPECT_EQ(stub_->ListSessions(&c1, bad, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  bad.set_page_size(1);
  bad.set_page_token("not-a-token");
  grpc::ClientContext c2;
  EXPECT_EQ(stub_->ListSessions(&c2, bad, &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  chat::v1::GetStatsResponse stats;
  grpc::ClientContext c3;
  ASSERT_TRUE(stub_->GetStats(&c3, {}, &stats).ok());
  EXPECT_EQ(stats.total_sessions(), 5);
  EXPECT_EQ(stats.total_messages(), 12);
  EXPECT_DOUBLE_EQ(stats.avg_messages_per_session(), 12.0 / 5);
  EXPECT_GT(stats.total_input_tokens(), 0);
  EXPECT_GT(stats.total_output_tokens(), 0);
}

TEST_F(ChatServerTest, StatsAreZeroWithNoSessions) {
  StartServer();
  chat::v1::GetStatsResponse stats;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->GetStats(&context, {}, &stats).ok());
  EXPECT_EQ(stats.total_sessions(), 0);
  EXPECT_EQ(stats.avg_messages_per_session(), 0.0);
}

TEST_F(ChatServerTest, CancelledStreamStoresNothing) {
  StartServer({"--echo_delay=100ms"});
  ChatResponse response;
  ASSERT_TRUE(Chat("c", "kept", &response).ok());

  grpc::ClientContext context;
  chat::v1::ChatStreamRequest request;
  request.set_session_id("c");
  request.set_message("cancelled");
  std::unique_ptr<grpc::ClientReader<ChatStreamResponse>> reader =
      stub_->ChatStream(&context, request);
  ChatStreamResponse event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_TRUE(event.has_delta());
  // Dropping the call only detaches (the answer runs on for a resume);
  // CancelStream stops it.
  context.TryCancel();
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  grpc::ClientContext cancel_context;
  chat::v1::CancelStreamRequest cancel;
  cancel.set_session_id("c");
  chat::v1::CancelStreamResponse cancelled;
  EXPECT_TRUE(stub_->CancelStream(&cancel_context, cancel, &cancelled).ok());

  // The next turn is served (the session is not left busy) and sees only the
  // first turn.
  ASSERT_TRUE(Chat("c", "next", &response).ok());
  EXPECT_EQ(response.turn_count(), 2);
  chat::v1::GetHistoryResponse history = History("c");
  ASSERT_EQ(history.messages_size(), 4);
  EXPECT_EQ(history.messages(0).content(), "kept");
  EXPECT_EQ(history.messages(2).content(), "next");
}

TEST_F(ChatServerTest, ExpiredDeadlineStoresNothing) {
  StartServer({"--echo_delay=200ms"});
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(300));
  ChatRequest request;
  request.set_session_id("d");
  request.set_message("too slow");
  ChatResponse response;
  EXPECT_EQ(stub_->Chat(&context, request, &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  // Barrier: a turn on the same session is served only once the expired one
  // has ended, stored or not; then the history holds the new turn alone.
  ASSERT_TRUE(Chat("d", "after", &response).ok());
  EXPECT_EQ(response.turn_count(), 1);
  chat::v1::GetHistoryResponse history = History("d");
  ASSERT_EQ(history.messages_size(), 2);
  EXPECT_EQ(history.messages(0).content(), "after");
}

TEST_F(ChatServerTest, ConcurrentCallsOnOneSessionAreServedOneAfterAnother) {
  StartServer();
  constexpr int kCalls = 12;
  std::vector<std::thread> clients;
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<ChatResponse> responses(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    clients.emplace_back([&, i] {
      statuses[i] =
          Chat("shared", absl::StrCat("from client ", i), &responses[i]);
    });
  }
  for (std::thread& t : clients) t.join();
  std::set<int> turn_counts;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    turn_counts.insert(responses[i].turn_count());
  }
  EXPECT_EQ(turn_counts.size(), static_cast<size_t>(kCalls));
  EXPECT_EQ(*turn_counts.rbegin(), kCalls);
  chat::v1::GetHistoryResponse history = History("shared");
  ASSERT_EQ(history.messages_size(), 2 * kCalls);
  for (int t = 0; t < kCalls; ++t) {
    const std::string& user = history.messages(2 * t).content();
    const std::string& reply = history.messages(2 * t + 1).content();
    EXPECT_EQ(history.messages(2 * t).role(), "user");
    EXPECT_EQ(history.messages(2 * t + 1).role(), "assistant");
    // Each reply answers the message just before it: no interleaving.
    EXPECT_THAT(reply, HasSubstr(absl::StrCat("You said: \"", user, "\"")));
  }
}

TEST_F(ChatServerTest, HealthCheckServesAndWatchEndsOnShutdown) {
  StartServer();
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const std::string service : {"", "chat.v1.ChatService"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status(),
              grpc::health::v1::HealthCheckResponse::SERVING);
  }
  grpc::ClientContext unknown_context;
  grpc::health::v1::HealthCheckRequest unknown;
  unknown.set_service("no.such.Service");
  grpc::health::v1::HealthCheckResponse response;
  EXPECT_EQ(health->Check(&unknown_context, unknown, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A Watch stream sees SERVING, then NOT_SERVING when the server stops, and
  // does not hold the shutdown up.
  grpc::ClientContext watch_context;
  grpc::health::v1::HealthCheckRequest watch_request;
  auto watch = health->Watch(&watch_context, watch_request);
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  std::thread stopper([this] { StopServer(); });
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  stopper.join();
}

TEST_F(ChatServerTest, ShutdownLetsARunningStreamFinish) {
  StartServer({"--echo_delay=50ms"});
  grpc::ClientContext context;
  chat::v1::ChatStreamRequest request;
  request.set_session_id("graceful");
  request.set_message("finish me please even while stopping");
  std::unique_ptr<grpc::ClientReader<ChatStreamResponse>> reader =
      stub_->ChatStream(&context, request);
  ChatStreamResponse event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  bool got_done = false;
  while (reader->Read(&event)) got_done = got_done || event.has_done();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(got_done);
  absl::StatusOr<int> code = server_->Stop(SIGTERM);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << server_->Log();

  StartServer();
  EXPECT_EQ(History("graceful").turn_count(), 1);
}

TEST_F(ChatServerTest, EnvironmentVariablesSetFlags) {
  server_ = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY, std::vector<std::string>{},
      std::map<std::string, std::string>{
          {"CHAT_LISTEN", "127.0.0.1:0"},
          {"CHAT_STORE", "memory"},
          {"CHAT_DEFAULT_SYSTEM_PROMPT", "From the environment."}});
  ASSERT_TRUE(server_->Start().ok()) << server_->Log();
  EXPECT_THAT(server_->Log(), HasSubstr("store memory"));
  channel_ = grpc::CreateChannel(server_->address(),
                                 grpc::InsecureChannelCredentials());
  stub_ = ChatService::NewStub(channel_);
  ChatResponse response;
  ASSERT_TRUE(Chat("env", "hi", &response).ok());
  EXPECT_EQ(History("env").system_prompt(), "From the environment.");
}

TEST_F(ChatServerTest, HelpExplainsTheFlags) {
  std::string output;
  absl::StatusOr<int> code =
      RunCommand({CHAT_SERVER_BINARY, "--help"}, &output);
  ASSERT_TRUE(code.ok());
  for (const char* flag : {"--listen", "--store", "--provider",
                           "--default_system_prompt", "--max_message_bytes"}) {
    EXPECT_THAT(output, HasSubstr(flag));
  }
  EXPECT_THAT(output, HasSubstr("CHAT_"));
}

TEST_F(ChatServerTest, BadStoreIsAClearStartupError) {
  server_ = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{"--listen=127.0.0.1:0", "--store=mysql://x"});
  absl::Status started = server_->Start(absl::Seconds(10));
  EXPECT_FALSE(started.ok());
  EXPECT_THAT(std::string(started.message()), HasSubstr("cannot open store"));
}

// buf curl: a gRPC client this project did not write, knowing nothing but
// what reflection tells it.
class ReflectionTest : public ChatServerTest {
 protected:
  void SetUp() override {
    ChatServerTest::SetUp();
    const char* buf = std::getenv("CHAT_TEST_BUF");
    if (buf == nullptr || std::string(buf).empty()) {
      GTEST_FAIL()
          << "CHAT_TEST_BUF must name the buf binary (scripts/test.sh sets it)";
    }
    buf_ = buf;
  }

  std::string Buf(std::vector<std::string> args, int* exit_code) {
    std::vector<std::string> argv = {buf_, "curl", "--protocol", "grpc",
                                     "--http2-prior-knowledge"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    absl::StatusOr<int> code = RunCommand(argv, &output);
    *exit_code = code.ok() ? *code : -1;
    return output;
  }

  std::string Url(const std::string& method = "") {
    return absl::StrCat("http://", server_->address(), "/", method);
  }

  std::string buf_;
};

TEST_F(ReflectionTest, ListsDescribesAndCallsEveryService) {
  StartServer();
  int code = 0;
  std::string services = Buf({"--list-services", Url()}, &code);
  ASSERT_EQ(code, 0) << services;
  EXPECT_THAT(services, HasSubstr("chat.v1.ChatService"));
  EXPECT_THAT(services, HasSubstr("grpc.health.v1.Health"));

  // Listing the methods needs every listed service's descriptor: each one
  // can be described, health included.
  std::string methods = Buf({"--list-methods", Url()}, &code);
  ASSERT_EQ(code, 0) << methods;
  for (const char* method :
       {"chat.v1.ChatService/Chat", "chat.v1.ChatService/ChatStream",
        "chat.v1.ChatService/GetHistory", "chat.v1.ChatService/DeleteSession",
        "chat.v1.ChatService/ResetSession", "chat.v1.ChatService/ListSessions",
        "chat.v1.ChatService/GetStats", "chat.v1.ChatService/GetStatus",
        "grpc.health.v1.Health/Check", "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}) {
    EXPECT_THAT(methods, HasSubstr(method));
  }

  std::string health =
      Buf({"-d", "{}", Url("grpc.health.v1.Health/Check")}, &code);
  ASSERT_EQ(code, 0) << health;
  EXPECT_THAT(health, HasSubstr("SERVING"));

  std::string chat =
      Buf({"-d", R"({"message":"via reflection","session_id":"buf-1"})",
           Url("chat.v1.ChatService/Chat")},
          &code);
  ASSERT_EQ(code, 0) << chat;
  EXPECT_THAT(chat, HasSubstr("\"turnCount\": 1"));
  std::string stream =
      Buf({"-d", R"({"message":"streamed","session_id":"buf-1"})",
           Url("chat.v1.ChatService/ChatStream")},
          &code);
  ASSERT_EQ(code, 0) << stream;
  EXPECT_THAT(stream, HasSubstr("\"delta\""));
  EXPECT_THAT(stream, HasSubstr("\"turnCount\": 2"));
  std::string history = Buf({"-d", R"({"session_id":"buf-1"})",
                             Url("chat.v1.ChatService/GetHistory")},
                            &code);
  ASSERT_EQ(code, 0) << history;
  EXPECT_THAT(history, HasSubstr("via reflection"));
  EXPECT_THAT(history, HasSubstr("streamed"));
}

}  // namespace
}  // namespace chat
