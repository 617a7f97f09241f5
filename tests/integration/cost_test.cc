// The cost of each answer through the real binaries: chat-server asks the
// Node fake upstream as Anthropic (the fake answers any model name that is
// not one of its behaviours, and reports it back as the model), and
// chat-gateway serves REST in front. A model with a built-in price (or one
// from --prices_file) costs its reported tokens times that price; any other
// has no cost, and no cost_usd in the JSON. GetStats sums what is known.

#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "chat/admin/v1/admin.grpc.pb.h"
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

namespace adminpb = ::chat::admin::v1;

using ::chat::testing::Eventually;
using ::chat::testing::FakeUpstream;
using ::chat::testing::MakeTempDir;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatRequest;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::testing::HasSubstr;

// USD per million tokens, as the built-in table has them.
constexpr double kSonnetInput = 3.0;
constexpr double kSonnetOutput = 15.0;
constexpr double kHaikuInput = 1.0;
constexpr double kHaikuOutput = 5.0;

double CostOf(const ChatResponse& response, double input, double output) {
  return (response.usage().input_tokens() * input +
          response.usage().output_tokens() * output) /
         1e6;
}

class CostTest : public ::testing::Test {
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
    if (upstream_ == nullptr) {
      GTEST_SKIP() << "node was not found at configure time";
    }
    dir_ = MakeTempDir();
  }

  std::vector<std::string> ServerArgs() const {
    return {"--listen=127.0.0.1:0",
            absl::StrCat("--store=sqlite:", dir_, "/chat.db"),
            "--provider=anthropic", "--provider_retries=0"};
  }
  std::map<std::string, std::string> ServerEnv() const {
    return {{"ANTHROPIC_API_KEY", "sk-ant-test-secret"},
            {"ANTHROPIC_BASE_URL", upstream_->base_url()},
            {"CHAT_ADMIN_KEY", kAdminKey}};
  }
  static constexpr char kAdminKey[] = "cost-test-admin-key-0123456789";

  void StartServer(std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args = ServerArgs();
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    server_ =
        std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args, ServerEnv());
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started << server_->Log();
    stub_ = ChatService::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }

  grpc::Status Chat(const std::string& session, const std::string& model,
                    ChatResponse* response) {
    ChatRequest request;
    request.set_session_id(session);
    request.set_message("how much was that?");
    request.set_model(model);
    return ::chat::testing::CallChat(*stub_, request, response);
  }

  chat::v1::GetStatsResponse Stats() {
    grpc::ClientContext context;
    chat::v1::GetStatsResponse stats;
    grpc::Status status =
        stub_->GetStats(&context, chat::v1::GetStatsRequest(), &stats);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return stats;
  }

  static FakeUpstream* upstream_;
  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ChatService::Stub> stub_;
};

FakeUpstream* CostTest::upstream_ = nullptr;

TEST_F(CostTest, AKnownModelCostsItsTokensAtItsPrice) {
  StartServer();
  ChatResponse response;
  grpc::Status status = Chat("s1", "claude-sonnet-4-6", &response);
  ASSERT_TRUE(status.ok()) << status.error_message() << server_->Log();
  EXPECT_EQ(response.model(), "claude-sonnet-4-6");
  ASSERT_GT(response.usage().input_tokens(), 0);
  ASSERT_GT(response.usage().output_tokens(), 0);
  ASSERT_TRUE(response.has_cost_usd());
  EXPECT_DOUBLE_EQ(response.cost_usd(),
                   CostOf(response, kSonnetInput, kSonnetOutput));
  // The turn's log line carries it too (written as the call ends).
  EXPECT_TRUE(::chat::testing::Eventually([&] {
    return absl::StrContains(server_->Log(), "cost_usd=");
  })) << server_->Log();

  // Streamed: the cost is in `done`.
  ChatRequest request;
  request.set_session_id("s2");
  request.set_message("and this one?");
  request.set_model("claude-haiku-4-5");
  std::vector<std::string> deltas;
  ChatResponse done;
  status = ::chat::testing::CallChatStream(*stub_, request, &deltas, &done);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(done.has_cost_usd());
  EXPECT_DOUBLE_EQ(done.cost_usd(), CostOf(done, kHaikuInput, kHaikuOutput));

  // An unknown model adds tokens but no cost; GetStats sums the two.
  ChatResponse unknown;
  status = Chat("s3", "ok@cost-unknown", &unknown);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(unknown.has_cost_usd());
  const chat::v1::GetStatsResponse stats = Stats();
  ASSERT_TRUE(stats.has_total_cost_usd());
  EXPECT_NEAR(stats.total_cost_usd(), response.cost_usd() + done.cost_usd(),
              1e-12);
}

TEST_F(CostTest, NoStoredCostMeansNoTotal) {
  StartServer();
  ChatResponse response;
  grpc::Status status = Chat("s1", "ok@no-total", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.has_cost_usd());
  EXPECT_FALSE(Stats().has_total_cost_usd());
}

TEST_F(CostTest, PricesFileAddsAndOverridesModels) {
  const std::string prices = dir_ + "/prices.json";
  std::ofstream(prices) << R"({"ok@priced": {"input": 1000000, "output": 0},
                              "claude-sonnet-4-6": {"input": 0, "output": 1e6}})";
  StartServer({absl::StrCat("--prices_file=", prices)});
  ChatResponse response;
  grpc::Status status = Chat("s1", "ok@priced", &response);
  ASSERT_TRUE(status.ok()) << status.error_message() << server_->Log();
  ASSERT_TRUE(response.has_cost_usd());
  EXPECT_DOUBLE_EQ(response.cost_usd(), response.usage().input_tokens());
  status = Chat("s2", "claude-sonnet-4-6", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_DOUBLE_EQ(response.cost_usd(), response.usage().output_tokens());
}

TEST_F(CostTest, ABadPricesFileExitsTwoNamingTheFlag) {
  const std::string prices = dir_ + "/prices.json";
  std::ofstream(prices) << R"({"m": {"input": "three"}})";
  std::vector<std::string> argv = {CHAT_SERVER_BINARY};
  for (const std::string& arg : ServerArgs()) argv.push_back(arg);
  argv.push_back(absl::StrCat("--prices_file=", prices));
  std::string output;
  absl::StatusOr<int> code = RunCommand(argv, &output);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 2) << output;
  EXPECT_THAT(output, HasSubstr("--prices_file"));
  EXPECT_THAT(output, HasSubstr("\"input\" must be a number"));

  argv.back() = absl::StrCat("--prices_file=", dir_, "/missing.json");
  code = RunCommand(argv, &output);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 2) << output;
  EXPECT_THAT(output, HasSubstr("--prices_file"));
}

// AdminService.GetUsage sums the cost per key and per tenant; a call of an
// unpriced model adds a call but no cost.
TEST_F(CostTest, UsageSumsTheCostPerKeyAndTenant) {
  StartServer();
  auto admin = adminpb::AdminService::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
  adminpb::CreateKeyRequest create;
  create.set_tenant("acme");
  create.set_name("cost");
  adminpb::CreateKeyResponse key;
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminKey));
    grpc::Status status = admin->CreateKey(&context, create, &key);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ChatResponse priced;
  ChatResponse unpriced;
  for (auto [model, response] : {std::pair{"claude-sonnet-4-6", &priced},
                                 std::pair{"ok@usage-unknown", &unpriced}}) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", key.key()));
    ChatRequest request;
    request.set_session_id("s1");
    request.set_message("hi");
    request.set_model(model);
    grpc::Status status = stub_->Chat(&context, request, response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_TRUE(priced.has_cost_usd());
  ASSERT_FALSE(unpriced.has_cost_usd());

  // Usage reaches the store within --usage_flush_interval of the answers:
  // no event says when, so poll.
  adminpb::GetUsageResponse usage;
  EXPECT_TRUE(Eventually([&] {
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminKey));
    usage.Clear();
    return admin->GetUsage(&context, adminpb::GetUsageRequest(), &usage).ok() &&
           usage.keys_size() == 1 && usage.keys(0).calls() == 2;
  })) << usage.DebugString();
  ASSERT_EQ(usage.keys_size(), 1);
  EXPECT_EQ(usage.keys(0).key_id(), key.api_key().id());
  EXPECT_DOUBLE_EQ(usage.keys(0).cost_usd(), priced.cost_usd());
  ASSERT_EQ(usage.tenants_size(), 1);
  EXPECT_EQ(usage.tenants(0).tenant(), "acme");
  EXPECT_DOUBLE_EQ(usage.tenants(0).cost_usd(), priced.cost_usd());
}

// Through chat-gateway's JSON: the field is there for a priced model and
// absent, not 0 or null, for any other.
TEST_F(CostTest, TheGatewaysJsonHasNoCostForAnUnknownModel) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/curl";
  StartServer();
  ServerProcess gateway(
      CHAT_GATEWAY_BINARY,
      std::vector<std::string>{"--listen=127.0.0.1:0",
                               absl::StrCat("--backend=", server_->address())});
  ASSERT_TRUE(gateway.Start().ok()) << gateway.Log();
  const std::string url =
      absl::StrCat("http://127.0.0.1:", gateway.port(), "/v1/chat");
  auto post = [&](const std::string& session, const std::string& model) {
    const nlohmann::json body = {
        {"session_id", session}, {"message", "hi"}, {"model", model}};
    std::string output;
    absl::StatusOr<int> code =
        RunCommand({"/usr/bin/curl", "-sS", "-X", "POST", url, "-H",
                    "Content-Type: application/json", "-d", body.dump()},
                   &output);
    EXPECT_TRUE(code.ok() && *code == 0) << output;
    return nlohmann::json::parse(output, nullptr, false);
  };
  const nlohmann::json known = post("s1", "claude-sonnet-4-6");
  ASSERT_TRUE(known.is_object()) << gateway.Log();
  ASSERT_TRUE(known.contains("cost_usd")) << known.dump();
  EXPECT_GT(known["cost_usd"].get<double>(), 0);

  const nlohmann::json unknown = post("s2", "ok@gateway-unknown");
  ASSERT_TRUE(unknown.is_object()) << gateway.Log();
  EXPECT_EQ(unknown["model"], "ok@gateway-unknown");
  EXPECT_FALSE(unknown.contains("cost_usd")) << unknown.dump();
}

}  // namespace
}  // namespace chat
