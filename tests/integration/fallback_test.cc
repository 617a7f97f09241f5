// Provider fallback through the real chat-server binary. The Node fake
// upstream plays both providers at once (Anthropic's /v1/messages and
// OpenAI's /v1/chat/completions on one port): the primary is Anthropic,
// asked for a model that makes the fake answer 529 or 503; the fallback is
// OpenAI-compatible, asked for a model that makes it answer. The fake's
// per-model attempt counts show which provider saw each call; every wait is
// on a call's answer or on those counts, never on time passing.

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
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
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatRequest;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::testing::HasSubstr;
using ::testing::Not;

class FallbackTest : public ::testing::Test {
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

  // A model name the fake reads as `behaviour`, unique to this test.
  static std::string Model(const std::string& behaviour,
                           const std::string& who) {
    return absl::StrCat(
        behaviour, "@", who, "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  // What the fallback is asked for: a model the fake answers.
  static std::string FallbackModel() { return Model("ok", "fallback"); }

  // chat-server with Anthropic as the primary (one retry of its own) and
  // the OpenAI-compatible fallback.
  void StartServer(absl::Duration cooldown) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0",
        absl::StrCat("--store=sqlite:", dir_, "/chat.db"),
        "--provider=anthropic",
        "--provider_retries=1",
        "--provider_retry_delay=10ms",
        "--first_byte_timeout=5s",
        absl::StrCat("--fallback=openai:", FallbackModel()),
        absl::StrCat("--fallback_cooldown=", absl::FormatDuration(cooldown))};
    // A session title would be one more upstream call to count.
    args.push_back("--session_titles=false");
    const std::string base = upstream_->base_url();
    std::map<std::string, std::string> env = {
        {"ANTHROPIC_API_KEY", "sk-ant-test-secret"},
        {"ANTHROPIC_BASE_URL", base},
        {"OPENAI_API_KEY", "sk-openai-test-secret"},
        {"OPENAI_BASE_URL", base + "/v1"}};
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args, env);
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started << server_->Log();
    stub_ = ChatService::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }

  int Attempts(const std::string& model) {
    return upstream_->Stats(model)["attempts"].get<int>();
  }

  grpc::Status Chat(const std::string& model, ChatResponse* response) {
    ChatRequest request;
    request.set_session_id("s1");
    request.set_message("hello");
    request.set_model(model);
    return ::chat::testing::CallChat(*stub_, request, response);
  }

  static FakeUpstream* upstream_;
  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ChatService::Stub> stub_;
};

FakeUpstream* FallbackTest::upstream_ = nullptr;

TEST_F(FallbackTest, AnOverloadedPrimaryIsServedByTheFallback) {
  StartServer(absl::Minutes(10));
  const std::string overloaded = Model("status:529", "anthropic");
  ChatResponse response;
  grpc::Status status = Chat(overloaded, &response);
  ASSERT_TRUE(status.ok()) << status.error_message() << server_->Log();
  EXPECT_EQ(response.model(), FallbackModel());
  EXPECT_EQ(response.response(), "Echo of 1 messages: hello");
  // Anthropic was tried first, with its own retry, then OpenAI once.
  EXPECT_EQ(Attempts(overloaded), 2);
  EXPECT_EQ(Attempts(FallbackModel()), 1);

  // The streamed answer names the fallback's model too.
  const std::string unavailable = Model("status:503", "anthropic");
  ChatRequest request;
  request.set_session_id("s1");
  request.set_message("again");
  request.set_model(unavailable);
  std::vector<std::string> deltas;
  ChatResponse done;
  status = ::chat::testing::CallChatStream(*stub_, request, &deltas, &done);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(done.model(), FallbackModel());
  EXPECT_EQ(Attempts(unavailable), 2);
  chat::v1::GetHistoryResponse history =
      ::chat::testing::CallGetHistory(*stub_, "s1");
  ASSERT_EQ(history.messages_size(), 4);

  // A bad request is the caller's: no fallback.
  const std::string bad = Model("status:400", "anthropic");
  status = Chat(bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Attempts(FallbackModel()), 2);

  // One line per served fallback, naming providers, never keys.
  EXPECT_THAT(server_->Log(), HasSubstr("provider fallback: openai served"));
  EXPECT_THAT(server_->Log(), Not(HasSubstr("test-secret")));
}

TEST_F(FallbackTest, AFailingPrimaryIsSkippedUntilItsCooldownPasses) {
  const absl::Duration cooldown = absl::Seconds(2);
  StartServer(cooldown);
  const std::string failing = Model("status:503", "anthropic");
  ChatResponse response;
  absl::Time before_third;
  for (int i = 0; i < 3; ++i) {
    before_third = absl::Now();
    ASSERT_TRUE(Chat(failing, &response).ok()) << server_->Log();
    EXPECT_EQ(response.model(), FallbackModel());
  }
  ASSERT_EQ(Attempts(failing), 6);  // Three calls, each with one retry.

  // The breaker is open: these calls go straight to the fallback. Each
  // answer is the barrier after which an attempt would have been counted.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Chat(failing, &response).ok());
    EXPECT_EQ(response.model(), FallbackModel());
  }
  EXPECT_EQ(Attempts(failing), 6);
  EXPECT_EQ(Attempts(FallbackModel()), 5);

  // After the cooldown, one call probes the primary (and, still failing,
  // is served by the fallback); not before.
  absl::Time probed;
  ASSERT_TRUE(::chat::testing::Eventually(
      [&] {
        if (!Chat(failing, &response).ok()) return false;
        probed = absl::Now();
        return Attempts(failing) > 6;
      },
      absl::Seconds(20), absl::Milliseconds(100)));
  EXPECT_GE(probed, before_third + cooldown);
  EXPECT_EQ(Attempts(failing), 8);  // The probe and its retry.
  EXPECT_EQ(response.model(), FallbackModel());

  // The failed probe reopened it; once the primary answers again, the next
  // probe closes the breaker and the primary serves.
  const std::string healthy = Model("ok", "anthropic");
  ASSERT_TRUE(::chat::testing::Eventually(
      [&] {
        return Chat(healthy, &response).ok() && response.model() == healthy;
      },
      absl::Seconds(20), absl::Milliseconds(100)));
  ASSERT_TRUE(Chat(healthy, &response).ok());
  EXPECT_EQ(response.model(), healthy);
}

TEST_F(FallbackTest, BadFallbackValuesExitTwoNamingTheFlag) {
  struct Case {
    std::string fallback;
    std::string message;
  };
  const Case cases[] = {
      {"gemini:pro", "unknown provider 'gemini'"},
      {"openai", "names no model"},
      {"openai:gpt-4o-mini", "needs OPENAI_API_KEY"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.fallback);
    std::string output;
    absl::StatusOr<int> code = RunCommand(
        {"/usr/bin/env", "-u", "OPENAI_API_KEY", "-u", "OPENAI_BASE_URL",
         CHAT_SERVER_BINARY, "--listen=127.0.0.1:0", "--store=memory",
         "--provider=echo", absl::StrCat("--fallback=", c.fallback)},
        &output, absl::Seconds(30));
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 2) << output;
    EXPECT_THAT(output, HasSubstr("--fallback"));
    EXPECT_THAT(output, HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace chat
