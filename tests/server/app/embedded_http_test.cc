// chat-server's own REST/JSON port (--http_listen). Strategy: the real
// binary with the echo provider on free loopback ports, driven over HTTP as
// chat-gateway's users drive it (curl, as tests/integration/gateway_test.cc
// does; a raw socket where a stream must be read while the server stops).
// Every wait is for an event (a log line, bytes on the socket, the exit),
// never for a time. The forwarded-address rule for callers off loopback,
// which cannot connect from here, is tested where it is decided
// (tests/server/service/authenticator_test.cc, InProcessCredentialsTest).

#include "server/app/embedded_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/client_socket.h"
#include "tests/testing/server_process.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::ConnectFrom;
using ::chat::testing::IsOk;
using ::chat::testing::MakeTempDir;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The safe default, as a rule on the configuration.
EmbeddedHttpOptions HttpOn(const std::string& host) {
  EmbeddedHttpOptions http;
  http.listen = host + ":8000";
  http.address.host = host;
  http.address.port = 8000;
  return http;
}

TEST(EmbeddedHttpSafeDefaultTest, LoopbackIsAlwaysFine) {
  EXPECT_THAT(CheckEmbeddedHttpSafeDefault(HttpOn("127.0.0.1"), true), IsOk());
  EXPECT_THAT(CheckEmbeddedHttpSafeDefault(HttpOn("localhost"), true), IsOk());
  EXPECT_THAT(CheckEmbeddedHttpSafeDefault(EmbeddedHttpOptions(), true),
              IsOk());
}

TEST(EmbeddedHttpSafeDefaultTest, ANetworkNeedsKeys) {
  // Without --allow_anonymous a remote caller needs a key: fine.
  EXPECT_THAT(CheckEmbeddedHttpSafeDefault(HttpOn("0.0.0.0"), false), IsOk());
  EXPECT_THAT(CheckEmbeddedHttpSafeDefault(HttpOn("0.0.0.0"), true),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("--http_listen"),
                             HasSubstr("--http_allow_anonymous"))));
  EmbeddedHttpOptions on_purpose = HttpOn("10.0.0.5");
  on_purpose.allow_anonymous = true;
  EXPECT_THAT(CheckEmbeddedHttpSafeDefault(on_purpose, true), IsOk());
}

// An HTTP answer, as curl -i printed it.
int Connect(int port);  // Below, with the other socket helpers.

struct HttpAnswer {
  int status = 0;
  // Header lines, lowercased names ("x-request-id: abc").
  std::string headers;
  std::string body;
};

class EmbeddedHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/curl";
    dir_ = MakeTempDir();
  }

  // Starts chat-server with --http_listen on a free port and `extra` flags.
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0",
        "--http_listen=127.0.0.1:0",
        "--provider=echo",
        absl::StrCat("--store=sqlite:", dir_, "/chat.db"),
        "--echo_delay=1ms",
        "--shutdown_grace=20s"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args);
    server_->set_working_dir(dir_);
    ASSERT_THAT(server_->Start(), IsOk());
    // Logged before "listening on", for which Start() waited.
    const std::string log = server_->Log();
    const std::string marker = "REST/JSON on http://127.0.0.1:";
    const size_t at = log.find(marker);
    ASSERT_NE(at, std::string::npos) << log;
    const size_t start = at + marker.size();
    ASSERT_TRUE(absl::SimpleAtoi(
        log.substr(start, log.find(' ', start) - start), &http_port_))
        << log;
    base_ = absl::StrCat("http://127.0.0.1:", http_port_);
  }

  // curl -i with `args`.
  HttpAnswer Curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-sS", "-i"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    absl::StatusOr<int> code = RunCommand(argv, &output);
    EXPECT_TRUE(code.ok() && *code == 0) << output;
    HttpAnswer answer;
    const size_t end = output.find("\r\n\r\n");
    if (end == std::string::npos) return answer;
    const std::string head = output.substr(0, end);
    answer.body = output.substr(end + 4);
    std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
    std::vector<std::string> status_line = absl::StrSplit(lines[0], ' ');
    if (status_line.size() > 1) {
      EXPECT_TRUE(absl::SimpleAtoi(status_line[1], &answer.status));
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      const size_t colon = lines[i].find(':');
      answer.headers += absl::AsciiStrToLower(lines[i].substr(0, colon)) +
                        lines[i].substr(colon) + "\n";
    }
    return answer;
  }
  HttpAnswer PostJson(const std::string& path, const std::string& body,
                      std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "-X", "POST", base_ + path, "-H", "Content-Type: application/json",
        "-d", body};
    args.insert(args.end(), extra.begin(), extra.end());
    return Curl(args);
  }

  // Sends POST `path` with the JSON `body` (and `headers`, each ending in
  // CRLF) on a connection of its own; the connection, or -1.
  int PostOnSocket(const std::string& path, const std::string& body,
                   const std::string& headers = "") {
    const int fd = Connect(http_port_);
    if (fd < 0) return -1;
    const std::string request = absl::StrCat(
        "POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n", headers,
        "Content-Type: application/json\r\nContent-Length: ", body.size(),
        "\r\n\r\n", body);
    if (write(fd, request.data(), request.size()) !=
        static_cast<ssize_t>(request.size())) {
      close(fd);
      return -1;
    }
    return fd;
  }

  // Sends POST /chat for `session` on a connection of its own and waits
  // until the call is open (the health watch behind GET /readyz is the
  // other open call); the connection, or -1.
  int StartChatOnSocket(const std::string& session) {
    const int fd = PostOnSocket(
        "/chat",
        absl::StrCat(R"({"message":"slow","session_id":")", session, "\"}"));
    if (fd < 0) return -1;
    if (!absl::StrContains(WaitForMetric("chatd_grpc_open_calls 2\n"),
                           "chatd_grpc_open_calls 2\n")) {
      close(fd);
      return -1;
    }
    return fd;
  }

  // Scrapes /metrics until it holds `line` (a whole sample, with its
  // newline), for up to 1,000 scrapes; the last scrape, for the caller's
  // assertion to print.
  std::string WaitForMetric(const std::string& line) {
    std::string metrics;
    for (int i = 0; i < 1000 && !absl::StrContains(metrics, line); ++i) {
      metrics = Curl({base_ + "/metrics"}).body;
    }
    return metrics;
  }

  // Per-minute limits count in UTC minutes: a test that needs several
  // requests in one minute starts them at least 20 s before its end.
  static void WaitForRoomInTheMinute() {
    const absl::Time now = absl::Now();
    const absl::Duration into =
        now - absl::FromUnixSeconds(absl::ToUnixSeconds(now) / 60 * 60);
    if (into > absl::Seconds(40)) absl::SleepFor(absl::Seconds(60) - into);
  }

  // `chat-server keys create` on this test's store; the new key.
  std::string CreateKey(int rpm = 100) {
    std::string output;
    absl::StatusOr<int> code =
        RunCommand({CHAT_SERVER_BINARY, "keys", "create", "--tenant=acme",
                    "--name=web", absl::StrCat("--rpm=", rpm),
                    absl::StrCat("--store=sqlite:", dir_, "/chat.db")},
                   &output);
    EXPECT_TRUE(code.ok() && *code == 0) << output;
    return std::string(absl::StripAsciiWhitespace(
        std::vector<std::string>(absl::StrSplit(output, '\n')).front()));
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
  int http_port_ = 0;
  std::string base_;
};

TEST_F(EmbeddedHttpTest, ChatHistoryAndStreamAsThroughTheGateway) {
  Start();
  HttpAnswer chat =
      PostJson("/chat", R"({"message":"Hello there","session_id":"s1"})");
  EXPECT_EQ(chat.status, 200) << chat.body;
  EXPECT_THAT(chat.body, HasSubstr(R"("session_id":"s1")"));
  EXPECT_THAT(chat.body, HasSubstr("Hello there"));
  EXPECT_THAT(chat.body, HasSubstr(R"("turn_count":1)"));

  HttpAnswer history = Curl({base_ + "/history/s1"});
  EXPECT_EQ(history.status, 200);
  EXPECT_THAT(history.body,
              HasSubstr(R"("role":"user","content":"Hello there")"));
  EXPECT_THAT(history.body, HasSubstr(R"("role":"assistant")"));
  EXPECT_EQ(Curl({base_ + "/history/nobody"}).status, 404);

  HttpAnswer stream = PostJson(
      "/v1/chat:stream", R"({"message":"And now?","session_id":"s1"})", {"-N"});
  EXPECT_EQ(stream.status, 200);
  EXPECT_THAT(stream.headers, HasSubstr("content-type: text/event-stream"));
  EXPECT_THAT(stream.body, HasSubstr("event: delta\n"));
  EXPECT_THAT(stream.body, HasSubstr("event: done\n"));

  // The template's raw-text stream, and a 400 mapped from INVALID_ARGUMENT.
  HttpAnswer raw = PostJson("/chat-stream",
                            R"({"message":"Raw?","session_id":"s1"})", {"-N"});
  EXPECT_EQ(raw.status, 200);
  EXPECT_THAT(raw.body, HasSubstr("Raw?"));
  EXPECT_EQ(PostJson("/chat", R"({"message":"","session_id":"s1"})").status,
            400);
}

TEST_F(EmbeddedHttpTest, ProbesDocumentsHeadersAndLogs) {
  Start({"--http_access_log", "--http_cors_origins=https://app.example",
         absl::StrCat("--http_web_root=", CHAT_SOURCE_DIR, "/clients")});
  HttpAnswer healthz = Curl({base_ + "/healthz"});
  EXPECT_EQ(healthz.status, 200);
  // Ready once the health watch reported SERVING: the first answer may
  // precede it, so wait for the event rather than a time.
  HttpAnswer readyz;
  for (int i = 0; i < 500; ++i) {
    readyz = Curl({base_ + "/readyz"});
    if (readyz.status == 200) break;
  }
  EXPECT_EQ(readyz.status, 200) << readyz.body;
  EXPECT_EQ(readyz.body, R"({"status":"ok"})");

  HttpAnswer openapi = Curl({base_ + "/openapi.json"});
  EXPECT_EQ(openapi.status, 200);
  EXPECT_THAT(openapi.body, HasSubstr(R"("openapi")"));
  EXPECT_THAT(openapi.body, HasSubstr("/v1/chat:stream"));
  EXPECT_EQ(Curl({base_ + "/web/"}).status, 200);
  EXPECT_EQ(Curl({base_ + "/js/chat-client.js"}).status, 200);

  HttpAnswer traced = PostJson(
      "/chat", R"({"message":"trace me","session_id":"t1"})",
      {"-H", "X-Request-Id: req-embedded-1", "-H",
       "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
       "-H", "Origin: https://app.example"});
  EXPECT_EQ(traced.status, 200);
  EXPECT_THAT(traced.headers, HasSubstr("x-request-id: req-embedded-1\n"));
  EXPECT_THAT(traced.headers,
              HasSubstr("traceparent: 00-0af7651916cd43dd8448eb211c80319c-"));
  EXPECT_THAT(traced.headers, HasSubstr("access-control-allow-origin: "
                                        "https://app.example\n"));
  HttpAnswer preflight = Curl({"-X", "OPTIONS", base_ + "/v1/chat", "-H",
                               "Origin: https://app.example", "-H",
                               "Access-Control-Request-Method: POST"});
  EXPECT_EQ(preflight.status, 204);
  EXPECT_THAT(preflight.headers, HasSubstr("access-control-allow-methods: "));

  // The gateway's HTTP metrics and chat-server's on one /metrics.
  HttpAnswer metrics = Curl({base_ + "/metrics"});
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body,
              AllOf(HasSubstr("chatd_gateway_http_requests_total{"),
                    HasSubstr("chatd_build_info{"),
                    HasSubstr("chatd_grpc_requests_total{")));

  // One access line per request, and the call's line with the same id.
  const std::string log = server_->Log();
  EXPECT_THAT(log, HasSubstr(R"(access request="POST /chat" status=200)"));
  EXPECT_THAT(log, HasSubstr("request_id=req-embedded-1"));
  EXPECT_THAT(log, HasSubstr("trace_id=0af7651916cd43dd8448eb211c80319c"));
}

TEST_F(EmbeddedHttpTest, MetricsListenServesTheGatewaysMetricsToo) {
  Start({"--metrics_listen=127.0.0.1:0"});
  EXPECT_EQ(PostJson("/chat", R"({"message":"m","session_id":"m1"})").status,
            200);
  // As on chat-gateway with --metrics_listen: not on the HTTP port.
  EXPECT_EQ(Curl({base_ + "/metrics"}).status, 404);
  const std::string log = server_->Log();
  const std::string marker = "metrics on http://127.0.0.1:";
  const size_t at = log.find(marker);
  ASSERT_NE(at, std::string::npos) << log;
  const size_t start = at + marker.size();
  const std::string port = log.substr(start, log.find('/', start) - start);
  HttpAnswer metrics =
      Curl({absl::StrCat("http://127.0.0.1:", port, "/metrics")});
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("chatd_gateway_http_requests_total{"));
}

TEST_F(EmbeddedHttpTest, KeysAreRequiredOnceOneExists) {
  const std::string key = CreateKey();
  ASSERT_THAT(key, ::testing::MatchesRegex("chatd_[0-9a-f]{12}_[0-9a-f]{64}"));
  Start();
  HttpAnswer refused =
      PostJson("/chat", R"({"message":"no key","session_id":"k1"})");
  EXPECT_EQ(refused.status, 401);
  EXPECT_THAT(refused.headers, HasSubstr("www-authenticate: Bearer"));
  EXPECT_THAT(refused.body, HasSubstr("missing API key"));
  EXPECT_EQ(PostJson("/chat", R"({"message":"bad","session_id":"k1"})",
                     {"-H", "Authorization: Bearer chatd_nonsense"})
                .status,
            401);

  HttpAnswer served =
      PostJson("/chat", R"({"message":"with key","session_id":"k1"})",
               {"-H", "Authorization: Bearer " + key});
  EXPECT_EQ(served.status, 200) << served.body;
  EXPECT_THAT(served.headers, HasSubstr("x-ratelimit-limit-requests: 100\n"));
  EXPECT_EQ(PostJson("/chat", R"({"message":"x-api-key","session_id":"k1"})",
                     {"-H", "X-Api-Key: " + key})
                .status,
            200);
  EXPECT_THAT(server_->Log(), Not(HasSubstr(key.substr(19))));
}

// Chat is answered without the in-process channel (ChatServiceImpl::
// ChatLocal); what a caller and an operator see must not change with it.
TEST_F(EmbeddedHttpTest, ChatIsCountedAsTheRpcIs) {
  Start();
  EXPECT_EQ(
      PostJson("/chat", R"({"message":"count","session_id":"c1"})").status,
      200);
  EXPECT_EQ(PostJson("/chat", R"({"message":"","session_id":"c1"})").status,
            400);
  HttpAnswer metrics = Curl({base_ + "/metrics"});
  EXPECT_THAT(
      metrics.body,
      AllOf(HasSubstr("chatd_grpc_requests_total{method=\"/chat.v1.ChatService/"
                      "Chat\",code=\"OK\"} 1\n"),
            HasSubstr("chatd_grpc_requests_total{method=\"/chat.v1.ChatService/"
                      "Chat\",code=\"INVALID_ARGUMENT\"} 1\n"),
            // The health watch behind GET /readyz is the one call open.
            HasSubstr("chatd_grpc_open_calls 1\n")));
}

TEST_F(EmbeddedHttpTest, ARefusedTurnSaysWhenToRetry) {
  const std::string key = CreateKey(/*rpm=*/1);
  Start();
  const std::vector<std::string> auth = {"-H", "Authorization: Bearer " + key};
  WaitForRoomInTheMinute();
  HttpAnswer first =
      PostJson("/chat", R"({"message":"one","session_id":"r1"})", auth);
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_THAT(first.headers, HasSubstr("x-ratelimit-remaining-requests: 0\n"));
  HttpAnswer second =
      PostJson("/chat", R"({"message":"two","session_id":"r1"})", auth);
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_THAT(second.headers, HasSubstr("retry-after: "));
  EXPECT_THAT(second.headers, HasSubstr("x-ratelimit-limit-requests: 1\n"));
}

TEST_F(EmbeddedHttpTest, SessionWritesCountAgainstTheKeysRequestsPerMinute) {
  const std::string key = CreateKey(/*rpm=*/5);
  Start();
  const std::vector<std::string> auth = {"-H", "Authorization: Bearer " + key};
  WaitForRoomInTheMinute();
  // Each write's answer says where the key stands, as a turn's does.
  auto remaining = [](const HttpAnswer& answer) {
    const std::string name = "x-ratelimit-remaining-requests: ";
    const size_t at = answer.headers.find(name);
    if (at == std::string::npos) return std::string("none");
    const size_t from = at + name.size();
    return answer.headers.substr(from, answer.headers.find('\n', from) - from);
  };
  HttpAnswer created = PostJson("/v1/sessions", R"({"session_id":"w1"})", auth);
  EXPECT_EQ(created.status, 200) << created.body;
  EXPECT_THAT(created.headers, HasSubstr("x-ratelimit-limit-requests: 5\n"));
  EXPECT_EQ(remaining(created), "4");
  ASSERT_EQ(
      PostJson("/chat", R"({"message":"hi","session_id":"w1"})", auth).status,
      200);
  HttpAnswer renamed =
      Curl({"-X", "PATCH", base_ + "/v1/sessions/w1", "-H",
            "Content-Type: application/json", "-d", R"({"title":"mine"})", "-H",
            "Authorization: Bearer " + key});
  EXPECT_EQ(renamed.status, 200) << renamed.body;
  EXPECT_EQ(remaining(renamed), "2");
  // Reads are not counted.
  HttpAnswer exported = Curl(
      {base_ + "/v1/sessions/w1/export", "-H", "Authorization: Bearer " + key});
  ASSERT_EQ(exported.status, 200) << exported.body;
  std::string as_new = exported.body;
  const size_t id = as_new.find(R"("session_id":"w1")");
  ASSERT_NE(id, std::string::npos) << as_new;
  as_new.replace(id, 17, R"("session_id":"w2")");
  HttpAnswer imported = PostJson("/v1/sessions:import", as_new, auth);
  EXPECT_EQ(imported.status, 200) << imported.body;
  EXPECT_EQ(remaining(imported), "1");
  HttpAnswer switched =
      PostJson("/v1/sessions/w1:switchBranch", R"({"turn_id":1})", auth);
  EXPECT_EQ(switched.status, 200) << switched.body;
  EXPECT_EQ(remaining(switched), "0");
  // The minute's five requests are spent: writes and turns are refused
  // alike, saying when to retry.
  as_new.replace(id, 17, R"("session_id":"w3")");
  HttpAnswer import = PostJson("/v1/sessions:import", as_new, auth);
  EXPECT_EQ(import.status, 429) << import.body;
  EXPECT_THAT(import.headers, HasSubstr("retry-after: "));
  EXPECT_THAT(import.headers, HasSubstr("x-ratelimit-limit-requests: 5\n"));
  EXPECT_EQ(
      PostJson("/chat", R"({"message":"hi","session_id":"w1"})", auth).status,
      429);
  EXPECT_EQ(PostJson("/v1/sessions", R"({"session_id":"w4"})", auth).status,
            429);
  EXPECT_EQ(
      PostJson("/v1/sessions/w1:switchBranch", R"({"turn_id":1})", auth).status,
      429);
}

TEST_F(EmbeddedHttpTest, AnImportedSessionCountsAgainstTheTenantsSessions) {
  Start({"--max_sessions_per_tenant=1"});
  ASSERT_EQ(PostJson("/chat", R"({"message":"one","session_id":"s1"})").status,
            200);
  HttpAnswer exported = Curl({base_ + "/v1/sessions/s1/export"});
  ASSERT_EQ(exported.status, 200) << exported.body;
  // A new session past the limit is refused; replacing the one there is not.
  std::string as_new = exported.body;
  const size_t id = as_new.find(R"("session_id":"s1")");
  ASSERT_NE(id, std::string::npos) << as_new;
  as_new.replace(id, 17, R"("session_id":"s2")");
  HttpAnswer refused = PostJson("/v1/sessions:import", as_new);
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("max_sessions_per_tenant"));
  EXPECT_EQ(Curl({base_ + "/history/s2"}).status, 404);
  std::string replace = exported.body;
  replace.insert(1, R"("replace":true,)");
  HttpAnswer replaced = PostJson("/v1/sessions:import", replace);
  EXPECT_EQ(replaced.status, 200) << replaced.body;
}

TEST_F(EmbeddedHttpTest, ARepeatedIdempotencyKeyGetsTheFirstAnswer) {
  Start();
  const std::vector<std::string> idempotent = {"-H", "Idempotency-Key: i-1"};
  HttpAnswer first =
      PostJson("/chat", R"({"message":"once","session_id":"i1"})", idempotent);
  HttpAnswer again =
      PostJson("/chat", R"({"message":"once","session_id":"i1"})", idempotent);
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.body, first.body);
  EXPECT_THAT(Curl({base_ + "/history/i1"}).body,
              HasSubstr(R"("turn_count":1)"));
  // Another message under the same key is refused, not run.
  EXPECT_EQ(
      PostJson("/chat", R"({"message":"other","session_id":"i1"})", idempotent)
          .status,
      409);
}

TEST_F(EmbeddedHttpTest, AClientCannotChooseItsForwardedAddress) {
  // The gateway sets x-forwarded-for from the socket, whatever the client
  // sends: a loopback client stays the anonymous local caller (no key exists)
  // even when it claims another address, here or in Grpc-Metadata-.
  Start();
  HttpAnswer answer =
      PostJson("/chat", R"({"message":"spoof","session_id":"f1"})",
               {"-H", "X-Forwarded-For: 203.0.113.7", "-H",
                "Grpc-Metadata-X-Forwarded-For: 203.0.113.7"});
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_THAT(server_->Log(), HasSubstr("tenant=default"));
}

TEST_F(EmbeddedHttpTest, AnonymousOnANetworkIsRefusedAtStart) {
  // Refused before anything binds.
  std::string output;
  absl::StatusOr<int> code = RunCommand(
      {CHAT_SERVER_BINARY, "--listen=127.0.0.1:0", "--http_listen=0.0.0.0:0",
       "--allow_anonymous", "--store=memory", "--provider=echo"},
      &output);
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 2) << output;
  EXPECT_THAT(output, HasSubstr("--http_allow_anonymous"));
}

TEST_F(EmbeddedHttpTest, BadFlagsExitTwoNamingThem) {
  for (const char* flag :
       {"--http_listen=nowhere", "--http_io_threads=0",
        "--http_max_connections=0", "--http_max_connections_per_client=0"}) {
    std::string output;
    absl::StatusOr<int> code =
        RunCommand({CHAT_SERVER_BINARY, "--listen=127.0.0.1:0", flag,
                    "--store=memory", "--provider=echo"},
                   &output);
    ASSERT_THAT(code, IsOk());
    EXPECT_EQ(*code, 2) << output;
    const std::string name =
        std::string(flag).substr(0, std::string(flag).find('='));
    EXPECT_THAT(output, HasSubstr(name));
  }
}

TEST_F(EmbeddedHttpTest, ABusyHttpPortExitsOne) {
  Start();
  std::string output;
  absl::StatusOr<int> code =
      RunCommand({CHAT_SERVER_BINARY, "--listen=127.0.0.1:0",
                  absl::StrCat("--http_listen=127.0.0.1:", http_port_),
                  "--store=memory", "--provider=echo"},
                 &output);
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 1) << output;
  EXPECT_THAT(output, HasSubstr("--http_listen"));
}

// A connected socket to 127.0.0.1:`port`, or -1.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) !=
      0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads from `fd` into `*received` until it holds `needle` (true) or the
// peer closes (false, unless the needle came with the last bytes).
bool ReadUntil(int fd, const std::string& needle, std::string* received) {
  char buffer[4096];
  while (!absl::StrContains(*received, needle)) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return false;
    received->append(buffer, static_cast<size_t>(n));
  }
  return true;
}

TEST_F(EmbeddedHttpTest, ShutdownLetsARunningStreamFinish) {
  // Slow enough that the stream is still running when SIGTERM comes (the
  // test reads its first delta first); the grace (20s) is far longer.
  Start({"--echo_delay=30ms"});
  const int fd = PostOnSocket(
      "/v1/chat:stream",
      R"({"message":"a message long enough for a stream of many deltas",)"
      R"("session_id":"sd"})",
      "Connection: close\r\n");
  ASSERT_GE(fd, 0);
  std::string received;
  ASSERT_TRUE(ReadUntil(fd, "event: delta", &received)) << received;
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  ReadUntil(fd, "\r\n0\r\n\r\n", &received);  // The chunked answer's end.
  close(fd);
  EXPECT_THAT(received, HasSubstr("event: done\n"));
  EXPECT_THAT(received, Not(HasSubstr("event: error")));
  absl::StatusOr<int> code = server_->Stop(SIGTERM);
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 0) << server_->Log();
  EXPECT_THAT(server_->Log(), HasSubstr("chat-server stopped"));
}

TEST_F(EmbeddedHttpTest, AClientThatLeavesCancelsItsTurn) {
  // Each of the echo's deltas waits 10 s: the turn runs until cancelled.
  Start({"--echo_delay=10s"});
  const int fd = StartChatOnSocket("gone");
  ASSERT_GE(fd, 0);
  close(fd);
  // The call ends CANCELLED; without the cancel the turn would run on for
  // seconds and end OK.
  const std::string cancelled =
      "chatd_grpc_requests_total{method=\"/chat.v1.ChatService/Chat\","
      "code=\"CANCELLED\"} 1\n";
  EXPECT_THAT(WaitForMetric(cancelled), HasSubstr(cancelled));
  // Its log line, whether the cancel came before the turn started or while
  // it ran.
  bool logged = false;
  for (absl::string_view line : absl::StrSplit(server_->Log(), '\n')) {
    logged = logged || (absl::StrContains(line, " rpc=Chat ") &&
                        absl::StrContains(line, " status=CANCELLED"));
  }
  EXPECT_TRUE(logged) << server_->Log();
  EXPECT_EQ(Curl({base_ + "/history/gone"}).status, 404);
}

TEST_F(EmbeddedHttpTest, AChatPastItsDeadlineEndsAndStoresNothing) {
  // Each of the echo's deltas waits 10 s; the call may take 1 s.
  Start({"--echo_delay=10s"});
  HttpAnswer late =
      PostJson("/chat", R"({"message":"slow","session_id":"late"})",
               {"-H", "Grpc-Timeout: 1S"});
  EXPECT_EQ(late.status, 504) << late.body;
  EXPECT_THAT(late.body, HasSubstr(R"("code":4)"));
  EXPECT_EQ(Curl({base_ + "/history/late"}).status, 404);
}

TEST_F(EmbeddedHttpTest, ShutdownCancelsAStreamPastTheGrace) {
  // The answer would run for tens of seconds; the grace is one. The stream
  // has sent nothing, so the client gets an ordinary 503.
  Start({"--echo_delay=10s", "--shutdown_grace=1s"});
  const int fd = PostOnSocket("/v1/chat:stream",
                              R"({"message":"slow","session_id":"cut"})");
  ASSERT_GE(fd, 0);
  const std::string open = "chatd_open_streams 2\n";
  ASSERT_THAT(WaitForMetric(open), HasSubstr(open));
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  std::string received;
  EXPECT_TRUE(ReadUntil(fd, "\r\n\r\n", &received)) << received;
  close(fd);
  EXPECT_THAT(received, ::testing::StartsWith("HTTP/1.1 503"));
  absl::StatusOr<int> code = server_->Stop(SIGTERM);
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 0) << server_->Log();
}

TEST_F(EmbeddedHttpTest, ShutdownCancelsAChatPastTheGrace) {
  // The turn would run for tens of seconds; the grace is one.
  Start({"--echo_delay=10s", "--shutdown_grace=1s"});
  const int fd = StartChatOnSocket("late");
  ASSERT_GE(fd, 0);
  ASSERT_EQ(kill(server_->pid(), SIGTERM), 0);
  // Cut by the shutdown, not by the client: 503, try again elsewhere.
  std::string received;
  EXPECT_TRUE(ReadUntil(fd, "\r\n\r\n", &received)) << received;
  close(fd);
  EXPECT_THAT(received, ::testing::StartsWith("HTTP/1.1 503"));
  absl::StatusOr<int> code = server_->Stop(SIGTERM);
  ASSERT_THAT(code, IsOk());
  EXPECT_EQ(*code, 0) << server_->Log();
}

// ChatStream is answered without the in-process channel too
// (ChatServiceImpl::ChatStreamLocal): the same events, errors, headers,
// metrics, cancels and resumes as through the RPC.
TEST_F(EmbeddedHttpTest, AStreamIsCountedAsTheRpcIs) {
  Start();
  HttpAnswer stream = PostJson(
      "/v1/chat:stream", R"({"message":"count","session_id":"k1"})", {"-N"});
  EXPECT_EQ(stream.status, 200);
  // Each event with its id, for a resume.
  EXPECT_THAT(stream.body, AllOf(HasSubstr("event: delta\ndata: {\"text\":"),
                                 HasSubstr("event: done\ndata: {\"response\":"),
                                 HasSubstr("}\nid: ")));
  HttpAnswer ndjson =
      PostJson("/v1/chat:stream", R"({"message":"lines","session_id":"k1"})",
               {"-N", "-H", "Accept: application/x-ndjson"});
  EXPECT_EQ(ndjson.status, 200);
  EXPECT_THAT(ndjson.body, HasSubstr(R"({"result":{"delta":{"text":)"));
  HttpAnswer refused = PostJson("/v1/chat:stream",
                                R"({"message":"","session_id":"k1"})", {"-N"});
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr(R"("code":3)"));
  EXPECT_THAT(Curl({base_ + "/history/k1"}).body,
              HasSubstr(R"("turn_count":2)"));
  HttpAnswer metrics = Curl({base_ + "/metrics"});
  EXPECT_THAT(
      metrics.body,
      AllOf(HasSubstr("chatd_grpc_requests_total{method=\"/chat.v1.ChatService/"
                      "ChatStream\",code=\"OK\"} 2\n"),
            HasSubstr("chatd_grpc_requests_total{method=\"/chat.v1.ChatService/"
                      "ChatStream\",code=\"INVALID_ARGUMENT\"} 1\n"),
            HasSubstr("chatd_open_streams 1\n"),  // The health watch.
            HasSubstr("chatd_grpc_open_calls 1\n")));
}

TEST_F(EmbeddedHttpTest, ARefusedStreamSaysWhenToRetry) {
  const std::string key = CreateKey(/*rpm=*/1);
  Start();
  WaitForRoomInTheMinute();
  const std::vector<std::string> auth = {"-N", "-H",
                                         "Authorization: Bearer " + key};
  HttpAnswer first = PostJson("/v1/chat:stream",
                              R"({"message":"one","session_id":"q1"})", auth);
  EXPECT_EQ(first.status, 200) << first.body;
  EXPECT_THAT(first.headers, HasSubstr("x-ratelimit-remaining-requests: 0\n"));
  HttpAnswer second = PostJson("/v1/chat:stream",
                               R"({"message":"two","session_id":"q1"})", auth);
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_THAT(second.headers, HasSubstr("retry-after: "));
  EXPECT_THAT(second.headers, HasSubstr("x-ratelimit-limit-requests: 1\n"));
  EXPECT_EQ(PostJson("/v1/chat:stream",
                     R"({"message":"three","session_id":"q1"})", {"-N"})
                .status,
            401);
}

TEST_F(EmbeddedHttpTest, AStreamPastItsDeadlineEndsAndStoresNothing) {
  // Each of the echo's deltas waits 10 s; the call may take 1 s. Nothing
  // was sent, so the answer is an ordinary 504.
  Start({"--echo_delay=10s"});
  HttpAnswer late =
      PostJson("/v1/chat:stream", R"({"message":"slow","session_id":"late"})",
               {"-N", "-H", "Grpc-Timeout: 1S"});
  EXPECT_EQ(late.status, 504) << late.body;
  EXPECT_THAT(late.body, HasSubstr(R"("code":4)"));
  EXPECT_EQ(Curl({base_ + "/history/late"}).status, 404);
}

TEST_F(EmbeddedHttpTest, AStreamsClientThatLeavesCanResumeTheAnswer) {
  // Slow enough that the client leaves mid-answer.
  Start({"--echo_delay=50ms"});
  const int fd = PostOnSocket(
      "/v1/chat:stream",
      R"({"message":"a message long enough for a stream of many deltas",)"
      R"("session_id":"away"})");
  ASSERT_GE(fd, 0);
  std::string received;
  ASSERT_TRUE(ReadUntil(fd, "event: delta", &received)) << received;
  close(fd);
  // The call ends CANCELLED as the client leaves...
  const std::string cancelled =
      "chatd_grpc_requests_total{method=\"/chat.v1.ChatService/ChatStream\","
      "code=\"CANCELLED\"} 1\n";
  EXPECT_THAT(WaitForMetric(cancelled), HasSubstr(cancelled));
  // ...and the answer runs on without it: a resume reads it to its end,
  // which is stored. The resume is counted as the RPC would be.
  HttpAnswer resumed = Curl({"-N", base_ + "/v1/sessions/away/stream"});
  EXPECT_EQ(resumed.status, 200) << resumed.body;
  EXPECT_THAT(resumed.body, HasSubstr("event: done\n"));
  const std::string resumed_ok =
      "chatd_grpc_requests_total{method=\"/chat.v1.ChatService/ResumeStream\","
      "code=\"OK\"} 1\n";
  EXPECT_THAT(WaitForMetric(resumed_ok), HasSubstr(resumed_ok));
  EXPECT_THAT(Curl({base_ + "/history/away"}).body,
              HasSubstr(R"("turn_count":1)"));
}

// A connection from `source` that the server answered once (it was let in),
// or -1 if the server closed it without a byte (refused over a cap).
int OpenConnection(const char* source, int port) {
  const int fd = ConnectFrom(source, port);
  if (fd < 0) return -1;
  const std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  // MSG_NOSIGNAL: a refused connection may already be closed.
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string received;
  if (!ReadUntil(fd, "\r\n\r\n", &received)) {
    EXPECT_EQ(received, "") << "a refused connection got bytes";
    close(fd);
    return -1;
  }
  return fd;
}

// Closes `fd` as the server sees it: asks for Connection: close and waits
// for the server's end, by which time its slot is free again.
void CloseByServer(int fd) {
  const std::string request =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string received;
  ReadUntil(fd, "never sent", &received);  // Until the server closes.
  close(fd);
}

TEST_F(EmbeddedHttpTest, ConnectionCapsAreEnforced) {
  // As tests/gateway/transport.test.mjs does for chat-gateway's caps: source
  // addresses 127.0.0.x stand for several clients.
  Start({"--http_max_connections=3", "--http_max_connections_per_client=2"});
  const int a = OpenConnection("127.0.0.2", http_port_);
  const int b = OpenConnection("127.0.0.2", http_port_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  // A client's third connection is refused; another client's is not.
  EXPECT_EQ(OpenConnection("127.0.0.2", http_port_), -1);
  const int other = OpenConnection("127.0.0.3", http_port_);
  ASSERT_GE(other, 0);
  // Past the total, any client is refused.
  EXPECT_EQ(OpenConnection("127.0.0.4", http_port_), -1);
  // Once one closes, a connection is let in again.
  CloseByServer(a);
  const int again = OpenConnection("127.0.0.4", http_port_);
  EXPECT_GE(again, 0);
  for (int fd : {b, other, again}) {
    if (fd >= 0) CloseByServer(fd);
  }
  EXPECT_THAT(server_->Log(), HasSubstr("of --http_max_connections=3"));
}

}  // namespace
}  // namespace chat
