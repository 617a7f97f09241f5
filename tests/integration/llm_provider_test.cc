// The real chat-server binary talking to a fake LLM upstream
// (tests/fake_upstream/server.mjs, a real HTTP server on loopback speaking
// Anthropic's and OpenAI's wire formats). Strategy: every test runs once per
// provider; the request's `model` tells the fake how to behave (stream,
// split, ping, fail with a status, fail mid-stream, stall, hold), and the
// fake's /_stats tells the test how many attempts it received and whether
// the client closed the connection early. Each test then checks the gRPC
// status and that the stored history holds whole turns only.

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/eventually.h"
#include "tests/testing/fake_upstream.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::FakeUpstream;
using ::chat::testing::MakeTempDir;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatRequest;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::chat::v1::ChatStreamResponse;
using ::testing::HasSubstr;
using ::testing::Not;

const bool kFastClientPolling = ::chat::testing::PollIdleChannelsOften();

class LlmProviderTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (std::string(CHAT_NODE_BINARY).empty()) return;
    absl::StatusOr<std::unique_ptr<FakeUpstream>> started =
        FakeUpstream::Start(CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR);
    ASSERT_TRUE(started.ok()) << started.status();
    upstream_ = started->release();
  }
  static void TearDownTestSuite() {
    delete upstream_;
    upstream_ = nullptr;
  }

  void SetUp() override {
    if (upstream_ == nullptr)
      GTEST_SKIP() << "node was not found at configure time";
    dir_ = MakeTempDir();
  }

  const std::string& provider() const { return GetParam(); }

  void StartServer(std::vector<std::string> extra_args = {},
                   std::map<std::string, std::string> extra_env = {}) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0",
        absl::StrCat("--store=sqlite:", dir_, "/chat.db"),
        absl::StrCat("--provider=", provider()),
        "--provider_retry_delay=20ms",
        "--first_byte_timeout=2s",
        "--idle_timeout=1s",
        "--shutdown_grace=5s"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    const std::string base = upstream_->base_url();
    std::map<std::string, std::string> env = {
        {"ANTHROPIC_API_KEY", "sk-ant-test-secret"},
        {"ANTHROPIC_BASE_URL", base},
        {"OPENAI_API_KEY", "sk-openai-test-secret"},
        {"OPENAI_BASE_URL", base + "/v1"}};
    env.insert(extra_env.begin(), extra_env.end());
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args, env);
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started << server_->Log();
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    stub_ = ChatService::NewStub(channel_);
  }

  // A model name the fake reads as `behaviour`, unique to this test.
  std::string Model(const std::string& behaviour) const {
    const ::testing::TestInfo* info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    return absl::StrCat(behaviour, "@", provider(), "/", info->name());
  }

  nlohmann::json Stats(const std::string& model) {
    return upstream_->Stats(model);
  }
  void Release(const std::string& model) { upstream_->Release(model); }
  // Polls the fake until `field` of `model`'s stats reaches `value`.
  bool WaitForStat(const std::string& model, const std::string& field,
                   int value) {
    return ::chat::testing::Eventually(
        [&] { return Stats(model)[field].get<int>() >= value; });
  }

  ChatRequest Request(const std::string& session, const std::string& message,
                      const std::string& model) {
    ChatRequest request;
    request.set_session_id(session);
    request.set_message(message);
    request.set_model(model);
    return request;
  }

  grpc::Status Chat(const ChatRequest& request, ChatResponse* response) {
    return ::chat::testing::CallChat(*stub_, request, response);
  }

  grpc::Status Stream(const ChatRequest& request,
                      std::vector<std::string>* deltas, ChatResponse* done) {
    return ::chat::testing::CallChatStream(*stub_, request, deltas, done);
  }

  chat::v1::GetHistoryResponse History(const std::string& session,
                                       grpc::Status* status = nullptr) {
    return ::chat::testing::CallGetHistory(*stub_, session, status);
  }

  static FakeUpstream* upstream_;
  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ChatService::Stub> stub_;
};

FakeUpstream* LlmProviderTest::upstream_ = nullptr;

TEST_P(LlmProviderTest, DeltasArriveOneByOneWhileTheUpstreamStillStreams) {
  StartServer();
  const std::string model = Model("hold");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  std::unique_ptr<grpc::ClientReader<ChatStreamResponse>> reader =
      stub_->ChatStream(&context, ::chat::testing::ToStreamRequest(
                                      Request("s1", "hello there", model)));
  // The fake has sent only its first delta and waits for our release: if
  // this read returns, the delta crossed gRPC while the upstream streams.
  ChatStreamResponse event;
  ASSERT_TRUE(reader->Read(&event));
  ASSERT_TRUE(event.has_delta());
  EXPECT_EQ(event.delta().text(), "Echo ");
  EXPECT_EQ(Stats(model)["completed"], 0);
  Release(model);
  std::vector<std::string> deltas = {event.delta().text()};
  ChatResponse done;
  while (reader->Read(&event)) {
    if (event.has_delta()) deltas.push_back(event.delta().text());
    if (event.has_done()) done = event.done();
  }
  ASSERT_TRUE(reader->Finish().ok());
  // After the release the rest comes in a burst; deltas that queue behind a
  // write may go out merged, so only the first one's boundary is fixed.
  EXPECT_GE(deltas.size(), 2u);
  EXPECT_EQ(absl::StrJoin(deltas, ""), "Echo of 1 messages: hello there");
  EXPECT_EQ(done.response(), "Echo of 1 messages: hello there");
  EXPECT_EQ(done.model(), model);
  EXPECT_EQ(done.stop_reason(), "end_turn");
  EXPECT_GT(done.usage().input_tokens(), 0);
  EXPECT_EQ(done.usage().output_tokens(), 6);
  EXPECT_TRUE(Stats(model)["saw_credentials"].get<bool>());
  chat::v1::GetHistoryResponse history = History("s1");
  ASSERT_EQ(history.messages_size(), 2);
  EXPECT_EQ(history.messages(1).content(), done.response());
}

TEST_P(LlmProviderTest, SplitPingsAndQuirksGiveTheSameReply) {
  StartServer();
  // "linger" never ends its body: the reply is complete at the final event
  // (with --idle_timeout=1s, waiting for the body would fail).
  std::vector<std::string> behaviours = {"ok", "split", "ping", "slow:20",
                                         "linger"};
  if (provider() == "openai") behaviours.push_back("vllm");
  int turn = 0;
  for (const std::string& b : behaviours) {
    SCOPED_TRACE(b);
    std::vector<std::string> deltas;
    ChatResponse done;
    ASSERT_TRUE(
        Stream(Request("quirks", "say it", Model(b)), &deltas, &done).ok())
        << server_->Log();
    ++turn;
    // Each turn sends the history so far: 2 messages per earlier turn.
    EXPECT_EQ(done.response(),
              absl::StrCat("Echo of ", 2 * turn - 1, " messages: say it"));
    EXPECT_EQ(absl::StrJoin(deltas, ""), done.response());
    EXPECT_GT(done.usage().output_tokens(), 0);
  }
  // The unary call takes the same path.
  ChatResponse response;
  ASSERT_TRUE(Chat(Request("quirks", "unary", Model("ok")), &response).ok());
  EXPECT_EQ(response.turn_count(), turn + 1);
  EXPECT_EQ(History("quirks").messages_size(), 2 * (turn + 1));

  grpc::ClientContext context;
  chat::v1::GetStatsResponse stats;
  ASSERT_TRUE(stub_->GetStats(&context, {}, &stats).ok());
  EXPECT_GT(stats.total_input_tokens(), 0);
  EXPECT_GT(stats.total_output_tokens(), 0);
}

struct FailureCase {
  std::string behaviour;
  grpc::StatusCode code;
  int attempts;  // What the upstream received (retries included).
  std::string message;
};

TEST_P(LlmProviderTest, FailuresMapToTheDocumentedStatusAndLeaveHistoryWhole) {
  StartServer();
  std::vector<std::string> deltas;
  ChatResponse done;
  ASSERT_TRUE(
      Stream(Request("whole", "first", Model("ok")), &deltas, &done).ok());
  const FailureCase cases[] = {
      {"status:400", grpc::StatusCode::INVALID_ARGUMENT, 1, "HTTP 400"},
      {"status:401", grpc::StatusCode::INTERNAL, 1, "credentials"},
      {"status:403", grpc::StatusCode::INTERNAL, 1, "credentials"},
      {"status:429", grpc::StatusCode::RESOURCE_EXHAUSTED, 3, "HTTP 429"},
      {"status:500", grpc::StatusCode::UNAVAILABLE, 3, "HTTP 500"},
      {"status:502", grpc::StatusCode::UNAVAILABLE, 3, "HTTP 502"},
      {"status:503", grpc::StatusCode::UNAVAILABLE, 3, "HTTP 503"},
      {"status:529", grpc::StatusCode::UNAVAILABLE, 3, "HTTP 529"},
      // Retried: nothing had reached the client yet.
      {"errorfirst", grpc::StatusCode::UNAVAILABLE, 3, ""},
      // Never retried once a delta was streamed.
      {"midstream", grpc::StatusCode::UNAVAILABLE, 1, ""},
      {"truncated", grpc::StatusCode::UNAVAILABLE, 1, "ended before"},
      {"stall", grpc::StatusCode::DEADLINE_EXCEEDED, 1, provider()},
      {"noheaders", grpc::StatusCode::DEADLINE_EXCEEDED, 1, provider()},
  };
  for (const FailureCase& c : cases) {
    SCOPED_TRACE(c.behaviour);
    const std::string model = Model(c.behaviour);
    deltas.clear();
    grpc::Status status =
        Stream(Request("whole", "doomed", model), &deltas, &done);
    EXPECT_EQ(status.error_code(), c.code) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(provider()));
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
    EXPECT_THAT(status.error_message(), Not(HasSubstr("secret")));
    EXPECT_EQ(Stats(model)["attempts"], c.attempts);
    chat::v1::GetHistoryResponse history = History("whole");
    ASSERT_EQ(history.messages_size(), 2);
    EXPECT_EQ(history.messages(0).content(), "first");
  }
  // A first turn that fails creates no session.
  grpc::Status status =
      Stream(Request("never", "x", Model("status:500")), &deltas, &done);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  History("never", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(server_->Log(), Not(HasSubstr("secret")));
  EXPECT_THAT(server_->Log(), HasSubstr("req_fake_"));  // request-id logged.
}

TEST_P(LlmProviderTest, RetriesRecoverBeforeTheFirstByte) {
  StartServer();
  for (const std::string& b : std::vector<std::string>{
           "flaky:500:2", "flaky:529:1", "flaky:429:2", "flaky:503:1"}) {
    SCOPED_TRACE(b);
    const std::string model = Model(b);
    ChatResponse response;
    grpc::Status status = Chat(Request("retry", "again", model), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(Stats(model)["attempts"], 1 + (b.back() - '0'));
  }
  EXPECT_EQ(History("retry").messages_size(), 8);
}

TEST_P(LlmProviderTest, TheCallersTraceReachesTheUpstreamWithTheServersSpan) {
  StartServer();
  const std::string model = Model("flaky:503:1");
  grpc::ClientContext context;
  context.AddMetadata(
      "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ChatResponse response;
  grpc::Status status =
      stub_->Chat(&context, Request("trace", "hi", model), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  // The retry carries it too.
  EXPECT_EQ(Stats(model)["attempts"], 2);
  const std::string sent = Stats(model)["last_traceparent"].get<std::string>();
  ASSERT_EQ(sent.size(), 55u) << sent;
  EXPECT_EQ(sent.substr(0, 36), "00-4bf92f3577b34da6a3ce929d0e0e4736-");
  EXPECT_NE(sent.substr(36, 16), "00f067aa0ba902b7");
  EXPECT_EQ(sent.substr(52), "-01");
}

TEST_P(LlmProviderTest, RetriesAreBoundedByTheFlagAndHonourRetryAfter) {
  StartServer({"--provider_retries=1"});
  const std::string model = Model("status:429:1");
  const absl::Time start = absl::Now();
  ChatResponse response;
  grpc::Status status = Chat(Request("bounded", "x", model), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Stats(model)["attempts"], 2);
  // retry-after: 1 was honoured (the base delay is 20ms).
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));

  const std::string none = Model("status:500");
  ASSERT_EQ(Chat(Request("bounded", "x", none), &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Stats(none)["attempts"], 2);
}

TEST_P(LlmProviderTest, BackoffNeverOutlivesTheCallerOrItsDeadline) {
  StartServer();
  // retry-after: 30 s. Cancelled during the wait, the call ends at once and
  // the retry never goes out.
  const std::string waiting = Model("status:429:30");
  {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<ChatStreamResponse>> reader =
        stub_->ChatStream(&context, ::chat::testing::ToStreamRequest(
                                        Request("backoff", "x", waiting)));
    ASSERT_TRUE(WaitForStat(waiting, "attempts", 1));
    // The provider logs this just before it schedules the retry: from here
    // on the call waits out retry-after.
    ASSERT_TRUE(::chat::testing::Eventually([&] {
      return absl::StrContains(server_->Log(), "retrying in");
    })) << server_->Log();
    const absl::Time cancelled_at = absl::Now();
    context.TryCancel();
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_LT(absl::Now() - cancelled_at, absl::Seconds(5));
    // A dropped stream only detaches from its answer, which runs on for a
    // resume: CancelStream stops it, and with it the wait.
    grpc::ClientContext cancel_context;
    chat::v1::CancelStreamRequest cancel;
    cancel.set_session_id("backoff");
    chat::v1::CancelStreamResponse cancelled;
    EXPECT_TRUE(stub_->CancelStream(&cancel_context, cancel, &cancelled).ok());
  }
  // A retry-after past the caller's deadline is not waited for: the
  // provider's answer comes back at once.
  const std::string too_late = Model("status:429:60");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
  ChatResponse response;
  const absl::Time start = absl::Now();
  grpc::Status status =
      stub_->Chat(&context, Request("backoff", "y", too_late), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message() << server_->Log();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(Stats(too_late)["attempts"], 1);
  EXPECT_EQ(Stats(waiting)["attempts"], 1);
  grpc::Status history;
  History("backoff", &history);
  EXPECT_EQ(history.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(LlmProviderTest,
       CancellationClosesTheUpstreamConnectionAndStoresNothing) {
  StartServer();
  const std::string model = Model("hold");
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<ChatStreamResponse>> reader =
      stub_->ChatStream(&context, ::chat::testing::ToStreamRequest(
                                      Request("cancel", "hello", model)));
  ChatStreamResponse event;
  ASSERT_TRUE(reader->Read(&event));
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitForStat(model, "closed_early", 1)) << Stats(model).dump();
  EXPECT_EQ(Stats(model)["completed"], 0);
  grpc::Status status;
  History("cancel", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(LlmProviderTest, AnExpiredDeadlineAbortsTheUpstreamCall) {
  StartServer();
  const std::string model = Model("hold");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(700));
  ChatResponse response;
  grpc::Status status =
      stub_->Chat(&context, Request("late", "hello", model), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitForStat(model, "closed_early", 1)) << Stats(model).dump();
  // Barrier: a turn on the same session is served only once the expired one
  // has ended, stored or not; then the history holds the new turn alone.
  ASSERT_TRUE(Chat(Request("late", "after", Model("ok")), &response).ok());
  EXPECT_EQ(response.turn_count(), 1);
  chat::v1::GetHistoryResponse history = History("late", &status);
  ASSERT_EQ(history.messages_size(), 2) << status.error_message();
  EXPECT_EQ(history.messages(0).content(), "after");
}

// A session's title is asked for as one JSON answer ("stream": false), so
// the upstream's first byte is its whole answer. Held, the title comes when
// the answer does, within --first_byte_timeout (raised here from the
// fixture's 2 s, so a loaded machine cannot turn the hold into a stall).
TEST_P(LlmProviderTest, AHeldWholeAnswerTitlesTheSessionWhenItComes) {
  const std::string title_model = Model("hold");
  StartServer({absl::StrCat("--title_model=", title_model),
               "--first_byte_timeout=60s"});
  ChatResponse response;
  ASSERT_TRUE(
      Chat(Request("held-title", "name this", Model("ok")), &response).ok());
  ASSERT_TRUE(WaitForStat(title_model, "attempts", 1))
      << Stats(title_model).dump();
  EXPECT_FALSE(Stats(title_model)["last_request"]["stream"].get<bool>());
  // Held by the fake: no answer yet, so no title can have been saved.
  EXPECT_EQ(History("held-title").title(), "");
  Release(title_model);
  EXPECT_TRUE(::chat::testing::Eventually([&] {
    return absl::StrContains(History("held-title").title(), "Echo");
  })) << server_->Log();
  EXPECT_EQ(Stats(title_model)["attempts"], 1);
}

// A whole answer that never starts fails at --first_byte_timeout (2 s
// here) and is not retried; the session stays untitled and its turn whole.
TEST_P(LlmProviderTest, AStalledWholeAnswerLeavesTheSessionUntitled) {
  const std::string title_model = Model("stall");
  StartServer({absl::StrCat("--title_model=", title_model)});
  ChatResponse response;
  ASSERT_TRUE(
      Chat(Request("stalled-title", "name this", Model("ok")), &response).ok());
  EXPECT_TRUE(WaitForStat(title_model, "closed_early", 1))
      << Stats(title_model).dump();
  // Ended by the first-byte bound, not by the title's own deadline (30 s).
  EXPECT_TRUE(::chat::testing::Eventually([&] {
    const std::string log = server_->Log();
    return absl::StrContains(log, "no title for session stalled-title") &&
           absl::StrContains(log, "no response within the first-byte timeout");
  })) << server_->Log();
  EXPECT_EQ(Stats(title_model)["attempts"], 1);
  chat::v1::GetHistoryResponse history = History("stalled-title");
  EXPECT_EQ(history.title(), "");
  ASSERT_EQ(history.messages_size(), 2);
  EXPECT_EQ(history.messages(1).content(), response.response());
}

TEST_P(LlmProviderTest, ContextWindowLeavesOldTurnsOutOfThePromptOnly) {
  // Each user message below is 400 bytes = 100 estimated tokens. Each
  // reply is ~420 bytes, but counts as the 5 output tokens the fake reports
  // for it (its word count): the provider's own figure beats bytes/4. With
  // the system prompt (~8) a budget of 250 fits the new message and one
  // turn (213), not two (318).
  // Set through the environment, as CHAT_<FLAG> (the flag works the same).
  StartServer({}, {{"CHAT_MAX_CONTEXT_TOKENS", "250"}});
  const std::string model = Model("ok");
  std::vector<int> truncated;
  for (int i = 0; i < 4; ++i) {
    ChatResponse response;
    ChatRequest request =
        Request("window", std::string(399, 'a' + i) + " ", model);
    ASSERT_TRUE(Chat(request, &response).ok());
    truncated.push_back(response.truncated_turns());
  }
  EXPECT_THAT(truncated, ::testing::ElementsAre(0, 0, 1, 2));
  nlohmann::json sent = Stats(model)["last_request"]["messages"];
  const size_t system_messages = provider() == "openai" ? 1 : 0;
  EXPECT_EQ(sent.size(),
            system_messages + 3);  // One earlier turn and the new message.
  EXPECT_EQ(History("window").messages_size(), 8);  // Stored whole.
}

TEST_P(LlmProviderTest, DotEnvInTheWorkingDirectorySuppliesTheKey) {
  if (std::getenv("ANTHROPIC_API_KEY") != nullptr ||
      std::getenv("OPENAI_API_KEY") != nullptr) {
    GTEST_SKIP()
        << "a provider key in the test's environment would win over .env";
  }
  const std::string prefix = provider() == "anthropic" ? "ANTHROPIC" : "OPENAI";
  const std::string base =
      absl::StrCat(upstream_->base_url(), provider() == "openai" ? "/v1" : "");
  std::ofstream(dir_ + "/.env")
      << "# as the Python template had it\n"
      << prefix << "_API_KEY=\"sk-dotenv-secret\"\n"
      << "export " << prefix << "_BASE_URL=" << base << "\n";
  server_ = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{"--listen=127.0.0.1:0", "--store=memory"});
  server_->set_working_dir(dir_);
  ASSERT_TRUE(server_->Start().ok()) << server_->Log();
  stub_ = ChatService::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
  EXPECT_THAT(
      server_->Log(),
      HasSubstr(absl::StrCat("provider ", provider(), ": --provider=auto and ",
                             prefix, "_API_KEY is set")));
  EXPECT_THAT(server_->Log(), HasSubstr("from ./.env"));
  const std::string model = Model("ok");
  ChatResponse response;
  ASSERT_TRUE(Chat(Request("dotenv", "hi", model), &response).ok())
      << server_->Log();
  EXPECT_TRUE(Stats(model)["saw_credentials"].get<bool>());
  EXPECT_THAT(server_->Log(), Not(HasSubstr("secret")));
}

// Over TLS the upstream offers HTTP/2: concurrent streams of one server
// share a connection instead of opening one each.
class Http2Test : public LlmProviderTest {
 protected:
  static void SetUpTestSuite() {
    if (std::string(CHAT_NODE_BINARY).empty()) return;
    absl::StatusOr<std::unique_ptr<FakeUpstream>> started = FakeUpstream::Start(
        CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR, /*tls=*/true);
    ASSERT_TRUE(started.ok()) << started.status();
    tls_upstream_ = started->release();
  }
  static void TearDownTestSuite() {
    delete tls_upstream_;
    tls_upstream_ = nullptr;
  }
  void SetUp() override {
    if (tls_upstream_ == nullptr)
      GTEST_SKIP() << "node was not found at configure time";
    dir_ = MakeTempDir();
  }

  static FakeUpstream* tls_upstream_;
};

FakeUpstream* Http2Test::tls_upstream_ = nullptr;

TEST_P(Http2Test, ConcurrentStreamsShareOneMultiplexedConnection) {
  const std::string base = tls_upstream_->base_url();
  server_ = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{
          "--listen=127.0.0.1:0", "--store=memory",
          absl::StrCat("--provider=", provider()),
          absl::StrCat("--provider_ca_file=", tls_upstream_->cert_file())},
      std::map<std::string, std::string>{{"ANTHROPIC_API_KEY", "k"},
                                         {"ANTHROPIC_BASE_URL", base},
                                         {"OPENAI_API_KEY", "k"},
                                         {"OPENAI_BASE_URL", base + "/v1"}});
  ASSERT_TRUE(server_->Start().ok()) << server_->Log();
  stub_ = ChatService::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
  const std::string model = Model("slow:30");
  const nlohmann::json before = tls_upstream_->ServerStats();
  constexpr int kStreams = 20;
  std::vector<std::thread> clients;
  std::vector<grpc::Status> statuses(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] {
      std::vector<std::string> deltas;
      ChatResponse done;
      statuses[i] = Stream(Request(absl::StrCat("h2-", i), "over h2", model),
                           &deltas, &done);
    });
  }
  for (std::thread& t : clients) t.join();
  for (const grpc::Status& s : statuses)
    EXPECT_TRUE(s.ok()) << s.error_message();
  const nlohmann::json after = tls_upstream_->ServerStats();
  // The replies were answered at their final event; the fake ends each
  // body a moment later.
  nlohmann::json stats;
  ::chat::testing::Eventually([&] {
    stats = tls_upstream_->Stats(model);
    return stats["completed"] == kStreams;
  });
  EXPECT_EQ(stats["http_version"], "2.0");
  EXPECT_EQ(stats["completed"], kStreams);
  // Streams overlapped, yet (almost) all rode one connection.
  EXPECT_GT(after["peak_streams"].get<int>(), 1);
  EXPECT_LE(
      after["http2_sessions"].get<int>() - before["http2_sessions"].get<int>(),
      2);
}

INSTANTIATE_TEST_SUITE_P(Providers, Http2Test,
                         ::testing::Values("anthropic", "openai"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

INSTANTIATE_TEST_SUITE_P(Providers, LlmProviderTest,
                         ::testing::Values("anthropic", "openai"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace chat
