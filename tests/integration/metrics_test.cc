// /metrics of both binaries after real traffic.
//
// Strategy: start the real chat-server (and chat-gateway in front of it) on
// ports the OS picks, make a known number of calls, then scrape /metrics as
// Prometheus would and check the series those calls must have moved, by
// exact value where the count is known. Every scrape must also pass
// `promtool check metrics`. The provider's series use the Node fake
// upstream, whose "flaky" model fails the first attempt.

#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/chat_calls.h"
#include "tests/testing/eventually.h"
#include "tests/testing/fake_upstream.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::HttpGetBody;
using ::chat::testing::IsOk;
using ::chat::testing::MakeChatRequest;
using ::chat::testing::SampleValue;
using ::chat::testing::ServerProcess;
using ::chat::testing::StatusIs;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

// The port of the "metrics on http://HOST:PORT/metrics" line, or 0.
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

void ExpectPromtoolAccepts(const std::string& text) {
  if (testing::PromtoolPath().empty()) {
    if (testing::PromtoolRequired()) {
      ADD_FAILURE() << "CHAT_TEST_REQUIRE_PROMTOOL=1 but promtool is missing";
    }
    return;
  }
  EXPECT_THAT(testing::PromtoolCheckMetrics(text), IsOk()) << text;
}

class ServerMetricsTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra_args = {},
                   std::map<std::string, std::string> env = {}) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
        "--store=memory",       "--provider=echo",
        "--echo_delay=1ms",     "--shutdown_grace=5s"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args, env);
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started << server_->Log();
    metrics_port_ = MetricsPort(server_->Log());
    ASSERT_GT(metrics_port_, 0) << server_->Log();
    stub_ = ChatService::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }

  // chat-server with the openai provider against the Node fake upstream
  // (provider retries after 10 ms).
  void StartServerOnFakeUpstream(std::vector<std::string> extra_args = {}) {
    absl::StatusOr<std::unique_ptr<testing::FakeUpstream>> upstream =
        testing::FakeUpstream::Start(CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR);
    ASSERT_THAT(upstream, IsOk());
    upstream_ = *std::move(upstream);
    std::vector<std::string> args = {"--provider=openai",
                                     "--provider_retry_delay=10ms",
                                     "--first_byte_timeout=5s"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    StartServer(args, {{"OPENAI_API_KEY", "sk-openai-test-secret"},
                       {"OPENAI_BASE_URL", upstream_->base_url() + "/v1"}});
  }

  std::string Scrape() {
    absl::StatusOr<std::string> body = HttpGetBody(metrics_port_, "/metrics");
    EXPECT_THAT(body, IsOk());
    return body.value_or("");
  }

  std::unique_ptr<testing::FakeUpstream> upstream_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ChatService::Stub> stub_;
  int metrics_port_ = 0;
};

TEST_F(ServerMetricsTest, CallsTurnsAndStoreShowAfterTraffic) {
  StartServer();
  for (int i = 0; i < 3; ++i) {
    ChatResponse response;
    grpc::Status s = testing::CallChat(
        *stub_, MakeChatRequest("metrics-session", "hello there"), &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::vector<std::string> deltas;
  ChatResponse done;
  ASSERT_TRUE(testing::CallChatStream(
                  *stub_, MakeChatRequest("metrics-stream", "one two three"),
                  &deltas, &done)
                  .ok());
  ChatResponse ignored;
  EXPECT_EQ(testing::CallChat(*stub_, MakeChatRequest("metrics-session", ""),
                              &ignored)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // The open-call gauges drop when a call's server side is destroyed, which
  // may be just after its client has the status.
  std::string text;
  ASSERT_TRUE(testing::Eventually([&] {
    text = Scrape();
    return SampleValue(text, "chatd_open_streams") == 0.0 &&
           SampleValue(text, "chatd_grpc_open_calls") == 0.0;
  })) << text;
  EXPECT_THAT(SampleValue(text,
                          "chatd_grpc_requests_total{method=\"/chat.v1."
                          "ChatService/Chat\",code=\"OK\"}"),
              Optional(3.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_grpc_requests_total{method=\"/chat.v1."
                          "ChatService/Chat\",code=\"INVALID_ARGUMENT\"}"),
              Optional(1.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_grpc_requests_total{method=\"/chat.v1."
                          "ChatService/ChatStream\",code=\"OK\"}"),
              Optional(1.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_grpc_request_duration_seconds_count{method=\"/"
                          "chat.v1.ChatService/Chat\"}"),
              Optional(4.0));
  // Every call has ended: nothing open, nothing queued.
  EXPECT_THAT(SampleValue(text, "chatd_open_streams"), Optional(0.0));
  EXPECT_THAT(SampleValue(text, "chatd_grpc_open_calls"), Optional(0.0));
  EXPECT_THAT(SampleValue(text, "chatd_turns_queued"), Optional(0.0));
  // Four answered turns, each with its first token.
  EXPECT_THAT(SampleValue(text, "chatd_time_to_first_token_seconds_count"),
              Optional(4.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_store_operation_duration_seconds_count{"
                          "op=\"append_turn\"}"),
              Optional(4.0));
  EXPECT_THAT(SampleValue(text, "chatd_store_errors_total{op=\"append_turn\"}"),
              Optional(0.0));
  std::optional<double> output = SampleValue(
      text,
      "chatd_tokens_total{direction=\"output\",model=\"echo\",tenant=\"\"}");
  if (!output.has_value()) {
    output = SampleValue(text,
                         "chatd_tokens_total{direction=\"output\",model="
                         "\"echo\",tenant=\"default\"}");
  }
  ASSERT_TRUE(output.has_value()) << text;
  EXPECT_GT(*output, 0);
  EXPECT_THAT(text, HasSubstr("chatd_build_info{version=\""));
  EXPECT_THAT(text, HasSubstr("binary=\"chat-server\"} 1\n"));
  EXPECT_THAT(SampleValue(text, "process_open_fds"),
              Optional(::testing::Gt(0)));
  ExpectPromtoolAccepts(text);
}

TEST_F(ServerMetricsTest, OtherPathsAreNotFound) {
  StartServer();
  EXPECT_THAT(HttpGetBody(metrics_port_, "/"),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(ServerMetricsFlagTest, BadMetricsListenExitsTwoNamingTheFlag) {
  std::string output;
  absl::StatusOr<int> code =
      testing::RunCommand({CHAT_SERVER_BINARY, "--listen=127.0.0.1:0",
                           "--store=memory", "--metrics_listen=nonsense"},
                          &output);
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 2);
  EXPECT_THAT(output, HasSubstr("metrics_listen"));
}

TEST_F(ServerMetricsTest, ProviderAttemptsAndRetriesAreCounted) {
  if (std::string(CHAT_NODE_BINARY).empty()) {
    GTEST_SKIP() << "node was not found at configure time";
  }
  // No session title: it would be one more provider request to count.
  StartServerOnFakeUpstream({"--session_titles=false"});
  chat::v1::ChatRequest request = MakeChatRequest("provider", "hi");
  // The first attempt answers 503, the retry succeeds.
  request.set_model("flaky:503:1@metrics/retry");
  ChatResponse response;
  grpc::Status s = testing::CallChat(*stub_, request, &response);
  ASSERT_TRUE(s.ok()) << s.error_message() << server_->Log();

  const std::string text = Scrape();
  EXPECT_THAT(SampleValue(text,
                          "chatd_provider_requests_total{provider="
                          "\"openai\",status=\"503\"}"),
              Optional(1.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_provider_requests_total{provider="
                          "\"openai\",status=\"200\"}"),
              Optional(1.0));
  EXPECT_THAT(
      SampleValue(text, "chatd_provider_retries_total{provider=\"openai\"}"),
      Optional(1.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_provider_request_duration_seconds_count{"
                          "provider=\"openai\"}"),
              Optional(2.0))
      << text << server_->Log();
  // The connection stays in curl's cache for the next call; nothing waits.
  EXPECT_THAT(SampleValue(text,
                          "chatd_provider_connections_open{provider="
                          "\"openai\"}"),
              Optional(::testing::Ge(1.0)))
      << text;
  EXPECT_THAT(
      SampleValue(text, "chatd_provider_requests_held{provider=\"openai\"}"),
      Optional(0.0));
  ExpectPromtoolAccepts(text);
}

// The Grafana dashboard (deploy/grafana-dashboard.json) asks only for what
// the binaries export: every query parses as PromQL (`promtool check
// rules`, with Grafana's $__rate_interval filled in), every series it names
// is in a scrape of chat-server or chat-gateway after real traffic (a
// retried provider call, a priced model, a stream through the gateway), and
// every label it groups or filters by is on that series.
TEST_F(ServerMetricsTest, TheDashboardAsksForSeriesTheBinariesExport) {
  if (std::string(CHAT_NODE_BINARY).empty()) {
    GTEST_SKIP() << "node was not found at configure time";
  }
  StartServerOnFakeUpstream();
  ServerProcess gateway(
      CHAT_GATEWAY_BINARY,
      {"--listen=127.0.0.1:0", "--backend=" + server_->address()});
  ASSERT_TRUE(gateway.Start().ok()) << gateway.Log();
  chat::v1::ChatRequest flaky = MakeChatRequest("dashboard-a", "hi");
  flaky.set_model("flaky:503:1@dashboard/retry");  // A 503, then an answer.
  chat::v1::ChatRequest priced = MakeChatRequest("dashboard-b", "hi");
  priced.set_model("gpt-4o-mini");
  for (const chat::v1::ChatRequest& request : {flaky, priced}) {
    ChatResponse response;
    grpc::Status status = testing::CallChat(*stub_, request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message() << server_->Log();
  }
  std::string output;
  absl::StatusOr<int> streamed = testing::RunCommand(
      {"/usr/bin/curl", "-sS", "-N", "-o", "/dev/null", "-d",
       R"({"session_id":"dashboard-c","message":"a b"})",
       absl::StrCat("http://127.0.0.1:", gateway.port(), "/v1/chat:stream")},
      &output);
  ASSERT_THAT(streamed, IsOk());
  ASSERT_EQ(*streamed, 0) << output;
  absl::StatusOr<std::string> gateway_text =
      HttpGetBody(gateway.port(), "/metrics");
  ASSERT_THAT(gateway_text, IsOk());
  const std::string text = Scrape() + *gateway_text;

  std::ifstream file(std::string(CHAT_SOURCE_DIR) +
                     "/deploy/grafana-dashboard.json");
  const nlohmann::json dashboard = nlohmann::json::parse(file);
  std::vector<std::string> queries;
  for (const nlohmann::json& panel : dashboard.at("panels")) {
    for (const nlohmann::json& target :
         panel.value("targets", nlohmann::json::array())) {
      queries.push_back(absl::StrReplaceAll(
          target.at("expr").get<std::string>(), {{"$__rate_interval", "5m"}}));
    }
  }
  ASSERT_GE(queries.size(), 10u);

  std::string rules = "groups:\n  - name: dashboard\n    rules:\n";
  for (size_t i = 0; i < queries.size(); ++i) {
    absl::StrAppend(&rules, "      - record: dashboard:query_", i, "\n",
                    "        expr: '",
                    absl::StrReplaceAll(queries[i], {{"'", "''"}}), "'\n");
  }
  if (testing::PromtoolPath().empty()) {
    if (testing::PromtoolRequired()) ADD_FAILURE() << "promtool is missing";
  } else {
    EXPECT_THAT(testing::PromtoolCheckRules(rules), IsOk()) << rules;
  }

  // The sample lines of a series (a histogram's by its _bucket name).
  auto samples_of = [&](const std::string& series) {
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      if (absl::StartsWith(line, series + "{") ||
          absl::StartsWith(line, series + " ")) {
        lines.emplace_back(line);
      }
    }
    return lines;
  };
  const std::regex series_name(R"(\b((?:chatd|process)_[a-z0-9_]+))");
  const std::regex grouping(R"(by \(([^)]*)\))");
  const std::regex matcher(R"re(([a-z_]+)(?:=|!=|=~|!~)")re");
  for (const std::string& query : queries) {
    std::vector<std::string> labels;
    for (const std::regex& pattern : {grouping, matcher}) {
      for (auto it = std::sregex_iterator(query.begin(), query.end(), pattern);
           it != std::sregex_iterator(); ++it) {
        for (absl::string_view label : absl::StrSplit((*it)[1].str(), ',')) {
          label = absl::StripAsciiWhitespace(label);
          // `le` is every histogram's; `job` is Prometheus's own target label.
          if (label != "le" && label != "job") labels.emplace_back(label);
        }
      }
    }
    for (auto it =
             std::sregex_iterator(query.begin(), query.end(), series_name);
         it != std::sregex_iterator(); ++it) {
      const std::string series = (*it)[1].str();
      const std::vector<std::string> lines = samples_of(series);
      ASSERT_FALSE(lines.empty())
          << series << " (in " << query << ") is in no scrape:\n"
          << text;
      for (const std::string& label : labels) {
        EXPECT_TRUE(absl::c_any_of(lines,
                                   [&](const std::string& line) {
                                     return absl::StrContains(line,
                                                              label + "=\"");
                                   }))
            << series << " has no label " << label << " (in " << query << ")";
      }
    }
  }
}

class GatewayMetricsTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> gateway_args = {}) {
    server_ = std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY,
        std::vector<std::string>{"--listen=127.0.0.1:0", "--provider=echo",
                                 "--store=memory", "--echo_delay=1ms"});
    ASSERT_TRUE(server_->Start().ok()) << server_->Log();
    std::vector<std::string> args = {"--listen=127.0.0.1:0",
                                     "--backend=" + server_->address()};
    args.insert(args.end(), gateway_args.begin(), gateway_args.end());
    gateway_ = std::make_unique<ServerProcess>(CHAT_GATEWAY_BINARY, args);
    ASSERT_TRUE(gateway_->Start().ok()) << gateway_->Log();
  }

  // The HTTP status of `method` `path` with `body` (JSON) on the gateway.
  std::string Call(const std::string& method, const std::string& path,
                   const std::string& body = "") {
    std::vector<std::string> argv = {
        "/usr/bin/curl",
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        method,
        absl::StrCat("http://127.0.0.1:", gateway_->port(), path)};
    if (!body.empty()) {
      argv.insert(argv.end(),
                  {"-H", "Content-Type: application/json", "-d", body});
    }
    std::string output;
    absl::StatusOr<int> code = testing::RunCommand(argv, &output);
    EXPECT_THAT(code, IsOk());
    return output;
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ServerProcess> gateway_;
};

TEST_F(GatewayMetricsTest, RequestsByRouteTemplateAfterTraffic) {
  Start();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Call("POST", "/v1/chat",
                   R"({"session_id":"gw-metrics","message":"hi"})"),
              "200");
  }
  ASSERT_EQ(Call("GET", "/v1/sessions/gw-metrics/history"), "200");
  ASSERT_EQ(Call("POST", "/v1/chat:stream",
                 R"({"session_id":"gw-stream","message":"a b c"})"),
            "200");
  ASSERT_EQ(Call("GET", "/no/such/path"), "404");

  // A request is counted once its answer is written, which the client may
  // see a moment before the server notes it: wait for the last one.
  const std::string unmatched =
      "chatd_gateway_http_requests_total{route=\"unmatched\",code=\"404\"}";
  std::string text;
  // Counted, and the streams' and connections' gauges settled: a
  // connection is known closed once the gateway reads its end.
  ASSERT_TRUE(testing::Eventually([&] {
    text = HttpGetBody(gateway_->port(), "/metrics").value_or("");
    return SampleValue(text, unmatched).has_value() &&
           SampleValue(text, "chatd_gateway_open_streams") == 0.0 &&
           SampleValue(text, "chatd_gateway_open_connections") == 1.0;
  })) << text;
  EXPECT_THAT(SampleValue(text,
                          "chatd_gateway_http_requests_total{route=\"POST "
                          "/v1/chat\",code=\"200\"}"),
              Optional(3.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_gateway_http_requests_total{route=\"GET "
                          "/v1/sessions/{session_id}/history\",code=\"200\"}"),
              Optional(1.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_gateway_http_requests_total{route=\"POST "
                          "/v1/chat:stream\",code=\"200\"}"),
              Optional(1.0));
  EXPECT_THAT(SampleValue(text, unmatched), Optional(1.0));
  EXPECT_THAT(SampleValue(text,
                          "chatd_gateway_http_request_duration_seconds_count{"
                          "route=\"POST /v1/chat\"}"),
              Optional(3.0));
  // The raw path never becomes a label.
  EXPECT_THAT(text, Not(HasSubstr("gw-metrics")));
  EXPECT_THAT(SampleValue(text, "chatd_gateway_open_streams"), Optional(0.0));
  // The scrape's own connection.
  EXPECT_THAT(SampleValue(text, "chatd_gateway_open_connections"),
              Optional(1.0));
  EXPECT_THAT(text, HasSubstr("binary=\"chat-gateway\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nprocess_resident_memory_bytes "));
  ExpectPromtoolAccepts(text);
}

TEST_F(GatewayMetricsTest, MetricsListenMovesTheEndpoint) {
  Start({"--metrics_listen=127.0.0.1:0"});
  const int metrics_port = MetricsPort(gateway_->Log());
  ASSERT_GT(metrics_port, 0) << gateway_->Log();
  EXPECT_EQ(Call("GET", "/metrics"), "404");
  absl::StatusOr<std::string> text = HttpGetBody(metrics_port, "/metrics");
  ASSERT_THAT(text, IsOk());
  EXPECT_THAT(*text, HasSubstr("# TYPE chatd_gateway_http_requests_total"));
  ExpectPromtoolAccepts(*text);
}

}  // namespace
}  // namespace chat
