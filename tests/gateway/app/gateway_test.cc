// Gateway (the HTTP handler) in process, in front of a scripted fake
// chat.v1.ChatService, so the tests can make the backend answer anything:
// every gRPC status, errors in the middle of a stream, and a report of the
// metadata and deadline it received. Requests go over a real socket to a
// real HttpServer. The request's `message` is the script: "status:<code>"
// (RESOURCE_EXHAUSTED with a retry-after in the trailing metadata),
// "stream-error:<code>" (one delta, then the error), "metadata", "limits"
// (rate-limit metadata, and one key that is not for clients). Sessions list
// in two pages of one session each.
//
// NewBindingGatewayTest serves a variant of chat.v1.ChatService made in the
// test (a FileDescriptorProto in its own DescriptorPool, same service name,
// so the same backend answers) whose annotations add new additional
// bindings: those get the standard behaviour, not the template's.

#include "gateway/app/gateway.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "chat/v1/chat.grpc.pb.h"
#include "common/metrics.h"
#include "gateway/app/backend_channel.h"
#include "gmock/gmock.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/new_bindings_service.h"

namespace chat::gateway {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string MetadataValue(const grpc::ServerContext& context,
                          const std::string& key) {
  auto it = context.client_metadata().find(key);
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

// What chat-server sends with a rate-limited answer, as OpenAI would.
void AddLimitMetadata(grpc::ServerContext* context) {
  context->AddInitialMetadata("x-ratelimit-limit-requests", "60");
  context->AddInitialMetadata("x-ratelimit-remaining-requests", "59");
  context->AddInitialMetadata("x-ratelimit-reset-requests", "1s");
  context->AddInitialMetadata("x-ratelimit-limit-tokens", "150000");
  context->AddInitialMetadata("x-ratelimit-remaining-tokens", "149984");
  context->AddInitialMetadata("x-ratelimit-reset-tokens", "6m0s");
  context->AddInitialMetadata("x-backend-detail", "internal");
}

grpc::Status ScriptedFailure(grpc::ServerContext* context, int code) {
  if (code == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)) {
    context->AddTrailingMetadata("x-ratelimit-remaining-requests", "0");
    context->AddTrailingMetadata("retry-after", "7");
  }
  return grpc::Status(static_cast<grpc::StatusCode>(code), "scripted failure");
}

// The scripted backend. Synchronous API: this is a test double.
class FakeChatService final : public chat::v1::ChatService::Service {
 public:
  grpc::Status Chat(grpc::ServerContext* context,
                    const chat::v1::ChatRequest* request,
                    chat::v1::ChatResponse* response) override {
    int code = 0;
    if (absl::SimpleAtoi(absl::StripPrefix(request->message(), "status:"),
                         &code)) {
      return ScriptedFailure(context, code);
    }
    if (request->message() == "limits") AddLimitMetadata(context);
    if (request->message() == "metadata") {
      response->set_response(absl::StrCat(
          "authorization=", MetadataValue(*context, "authorization"),
          ";x-api-key=", MetadataValue(*context, "x-api-key"),
          ";x-forwarded-for=", MetadataValue(*context, "x-forwarded-for"),
          ";x-request-id=", MetadataValue(*context, "x-request-id"),
          ";tenant=", MetadataValue(*context, "tenant")));
      const absl::Duration left =
          absl::FromChrono(context->deadline()) - absl::Now();
      response->set_turn_count(static_cast<int>(
          absl::ToInt64Seconds(left + absl::Milliseconds(500))));
    }
    response->set_session_id(request->session_id());
    return grpc::Status::OK;
  }

  // OpenAI's chat completions: one answer, "completed", in one delta when
  // streamed.
  grpc::Status Complete(grpc::ServerContext* /*context*/,
                        const chat::v1::CompleteRequest* /*request*/,
                        chat::v1::CompleteResponse* response) override {
    response->set_response("completed");
    return grpc::Status::OK;
  }
  grpc::Status CompleteStream(
      grpc::ServerContext* /*context*/,
      const chat::v1::CompleteStreamRequest* /*request*/,
      grpc::ServerWriter<chat::v1::CompleteStreamResponse>* writer) override {
    chat::v1::CompleteStreamResponse event;
    event.mutable_delta()->set_text("completed");
    writer->Write(event);
    event.mutable_done()->set_response("completed");
    writer->Write(event);
    return grpc::Status::OK;
  }

  grpc::Status ChatStream(
      grpc::ServerContext* context, const chat::v1::ChatStreamRequest* request,
      grpc::ServerWriter<chat::v1::ChatStreamResponse>* writer) override {
    int code = 0;
    if (absl::SimpleAtoi(absl::StripPrefix(request->message(), "status:"),
                         &code)) {
      return ScriptedFailure(context, code);
    }
    if (request->message() == "limits") AddLimitMetadata(context);
    chat::v1::ChatStreamResponse delta;
    delta.mutable_delta()->set_text("partial ");
    writer->Write(delta);
    if (absl::SimpleAtoi(absl::StripPrefix(request->message(), "stream-error:"),
                         &code)) {
      return grpc::Status(static_cast<grpc::StatusCode>(code), "went wrong");
    }
    chat::v1::ChatStreamResponse done;
    done.mutable_done()->set_response("partial ");
    writer->Write(done);
    return grpc::Status::OK;
  }

  // Two pages: "first" (then next_page_token "page-2"), "second".
  grpc::Status ListSessions(grpc::ServerContext* /*context*/,
                            const chat::v1::ListSessionsRequest* request,
                            chat::v1::ListSessionsResponse* response) override {
    if (request->page_token().empty()) {
      response->add_sessions()->set_session_id("first");
      response->set_next_page_token(empty_pages_after_first ? "empty"
                                                            : "page-2");
    } else if (request->page_token() == "empty") {
      // A backend stuck on empty pages that each promise another.
      ++empty_pages_served;
      response->set_next_page_token("empty");
    } else if (request->page_token() == "page-2") {
      response->add_sessions()->set_session_id("second");
    } else {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad page_token");
    }
    return grpc::Status::OK;
  }

  std::atomic<bool> empty_pages_after_first{false};
  std::atomic<int> empty_pages_served{0};
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The gateway's channel health-checks chat.v1.ChatService (as
    // chat-server serves it); gRPC's default health service answers here.
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &backend_port_);
    builder.RegisterService(&service_);
    backend_ = builder.BuildAndStart();
    ASSERT_NE(backend_, nullptr);
    backend_->GetHealthCheckService()->SetServingStatus("chat.v1.ChatService",
                                                        true);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        MakeBackendChannel(absl::StrCat("127.0.0.1:", backend_port_));
    ASSERT_TRUE(channel.ok());
    ASSERT_NE(Service(), nullptr);
    absl::StatusOr<RouteTable> routes = RouteTable::FromServices({Service()});
    ASSERT_TRUE(routes.ok()) << routes.status();
    gateway_ = std::make_unique<Gateway>(std::make_shared<BackendSet>(*channel),
                                         *std::move(routes), Options());
    http_ = std::make_unique<HttpServer>(
        HttpServerOptions{}, [this](std::shared_ptr<HttpExchange> e) {
          gateway_->Handle(std::move(e));
        });
    absl::StatusOr<int> port = http_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok());
    port_ = *port;
  }

  void TearDown() override {
    http_->StopAccepting();
    gateway_->CancelAll();
    gateway_->WaitIdle(absl::Seconds(10));
    http_->Stop();
    backend_->Shutdown();
  }

  // A connection to the gateway's HTTP port.
  int ConnectToGateway() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  // Sends one request (Connection: close) and returns the whole answer.
  std::string Request(const std::string& method, const std::string& path,
                      const std::string& body,
                      const std::string& extra_headers = "") {
    const int fd = ConnectToGateway();
    std::string request = absl::StrCat(
        method, " ", path, " HTTP/1.1\r\nHost: x\r\n", "Connection: close\r\n",
        extra_headers, "Content-Length: ", body.size(), "\r\n\r\n", body);
    EXPECT_EQ(write(fd, request.data(), request.size()),
              static_cast<ssize_t>(request.size()));
    std::string answer;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return answer;
  }

  virtual GatewayOptions Options() { return {}; }

  // The service whose annotations the gateway serves.
  virtual const google::protobuf::ServiceDescriptor* Service() {
    return chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
        "ChatService");
  }

  static std::string ChatBody(const std::string& message) {
    return absl::StrCat(R"({"message":")", message, R"(","session_id":"s1"})");
  }

  FakeChatService service_;
  std::unique_ptr<grpc::Server> backend_;
  int backend_port_ = 0;
  std::unique_ptr<Gateway> gateway_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
};

TEST_F(GatewayTest, ForwardsHeadersAsMetadataAndGrpcTimeoutAsDeadline) {
  // The client's X-Forwarded-For is replaced by the connection's address.
  std::string answer =
      Request("POST", "/v1/chat", ChatBody("metadata"),
              "Authorization: Bearer k-1\r\nX-Api-Key: k-2\r\n"
              "X-Forwarded-For: 10.9.9.9\r\nX-Request-Id: rid-7\r\n"
              "Grpc-Metadata-Tenant: acme\r\nGrpc-Timeout: 5S\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("x-request-id: rid-7\r\n"));
  EXPECT_THAT(answer,
              HasSubstr(R"("response":"authorization=Bearer k-1;x-api-key=k-2;)"
                        R"(x-forwarded-for=127.0.0.1;x-request-id=rid-7;)"
                        R"(tenant=acme")"));
  // The deadline the backend saw: about 5 s away (rounded to seconds).
  EXPECT_THAT(answer, ::testing::AnyOf(HasSubstr(R"("turn_count":5)"),
                                       HasSubstr(R"("turn_count":4)")));
}

struct StatusRow {
  int grpc_code;
  int http_status;
};

class GatewayStatusTest : public GatewayTest,
                          public ::testing::WithParamInterface<StatusRow> {};

TEST_P(GatewayStatusTest, BackendStatusBecomesHttpStatusAndErrorBody) {
  const StatusRow& row = GetParam();
  std::string answer = Request(
      "POST", "/chat", ChatBody(absl::StrCat("status:", row.grpc_code)));
  EXPECT_THAT(answer,
              StartsWith(absl::StrCat("HTTP/1.1 ", row.http_status, " ")));
  EXPECT_THAT(answer, EndsWith(absl::StrCat(
                          R"({"code":)", row.grpc_code,
                          R"(,"message":"scripted failure","details":[]})")));
}

INSTANTIATE_TEST_SUITE_P(
    Codes, GatewayStatusTest,
    ::testing::Values(StatusRow{3, 400}, StatusRow{9, 400}, StatusRow{11, 400},
                      StatusRow{16, 401}, StatusRow{7, 403}, StatusRow{5, 404},
                      StatusRow{10, 409}, StatusRow{6, 409}, StatusRow{8, 429},
                      StatusRow{2, 500}, StatusRow{13, 500}, StatusRow{15, 500},
                      StatusRow{12, 501}, StatusRow{14, 503},
                      StatusRow{4, 504}),
    [](const ::testing::TestParamInfo<StatusRow>& info) {
      return absl::StrCat("Grpc", info.param.grpc_code, "Http",
                          info.param.http_status);
    });

// A 401 says how to authenticate, on every shape of answer; the body is
// the ordinary error body.
TEST_F(GatewayTest, UnauthenticatedAsksForABearerKey) {
  for (const char* path : {"/chat", "/v1/chat", "/v1/chat:stream"}) {
    std::string answer = Request("POST", path, ChatBody("status:16"),
                                 "Authorization: Bearer wrong-key\r\n");
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 401 Unauthorized\r\n")) << path;
    EXPECT_THAT(answer, HasSubstr("WWW-Authenticate: Bearer\r\n")) << path;
    EXPECT_THAT(answer, Not(HasSubstr("wrong-key"))) << path;
    EXPECT_THAT(answer, EndsWith(R"({"code":16,"message":"scripted failure",)"
                                 R"("details":[]})"))
        << path;
  }
  std::string answer = Request("POST", "/v1/chat:stream", ChatBody("status:16"),
                               "Accept: application/x-ndjson\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 401 Unauthorized\r\n"));
  EXPECT_THAT(answer, HasSubstr("WWW-Authenticate: Bearer\r\n"));
}

TEST_F(GatewayTest, RateLimitMetadataBecomesHeaders) {
  for (const char* path : {"/chat", "/v1/chat", "/v1/chat:stream"}) {
    std::string answer = Request("POST", path, ChatBody("limits"));
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n")) << path;
    for (const char* header : {"x-ratelimit-limit-requests: 60\r\n",
                               "x-ratelimit-remaining-requests: 59\r\n",
                               "x-ratelimit-reset-requests: 1s\r\n",
                               "x-ratelimit-limit-tokens: 150000\r\n",
                               "x-ratelimit-remaining-tokens: 149984\r\n",
                               "x-ratelimit-reset-tokens: 6m0s\r\n"}) {
      EXPECT_THAT(answer, HasSubstr(header)) << path;
    }
    EXPECT_THAT(answer, Not(HasSubstr("x-backend-detail"))) << path;
  }
}

// RESOURCE_EXHAUSTED is 429, with chat-server's Retry-After from the
// trailing metadata: on a unary answer and on a stream refused before its
// first event.
TEST_F(GatewayTest, TooManyRequestsCarriesRetryAfter) {
  for (const char* path : {"/chat", "/v1/chat:stream", "/chat-stream"}) {
    std::string answer = Request("POST", path, ChatBody("status:8"));
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 429 Too Many Requests\r\n"))
        << path;
    EXPECT_THAT(answer, HasSubstr("Retry-After: 7\r\n")) << path;
    EXPECT_THAT(answer, HasSubstr("x-ratelimit-remaining-requests: 0\r\n"))
        << path;
  }
}

TEST_F(GatewayTest, SseErrorAfterTheFirstEventIsAnErrorEvent) {
  std::string answer =
      Request("POST", "/v1/chat:stream", ChatBody("stream-error:8"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer,
              HasSubstr("event: delta\ndata: {\"text\":\"partial \"}\n\n"));
  EXPECT_THAT(answer,
              HasSubstr("event: error\ndata: "
                        R"({"code":8,"message":"went wrong","details":[]})"
                        "\n\n"));
}

TEST_F(GatewayTest, SseErrorBeforeAnyEventIsAnHttpError) {
  std::string answer = Request("POST", "/v1/chat:stream", ChatBody("status:8"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 429 Too Many Requests\r\n"));
  EXPECT_THAT(
      answer,
      EndsWith(R"({"code":8,"message":"scripted failure","details":[]})"));
}

TEST_F(GatewayTest, RawTextErrorAfterTheFirstByteIsAppended) {
  std::string answer =
      Request("POST", "/chat-stream", ChatBody("stream-error:14"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  // Chunked: "partial " then "\nError: went wrong", then the last chunk.
  EXPECT_THAT(
      answer,
      HasSubstr("8\r\npartial \r\n12\r\n\nError: went wrong\r\n0\r\n\r\n"));
}

TEST_F(GatewayTest, NdjsonErrorAfterTheFirstLine) {
  std::string answer =
      Request("POST", "/v1/chat:stream", ChatBody("stream-error:4"),
              "Accept: application/x-ndjson\r\n");
  // The line carries the event's id too (empty from this fake backend),
  // for a client that resumes an NDJSON stream.
  EXPECT_THAT(answer, HasSubstr(R"({"result":{"delta":{"text":"partial "},)"
                                R"("event_id":""}})"));
  EXPECT_THAT(
      answer,
      HasSubstr(R"({"error":{"code":4,"message":"went wrong","details":[]}})"));
}

TEST_F(GatewayTest, BackendNotServingGetsNoCallsAndReadyzSays503) {
  auto readyz_is = [&](absl::string_view status) {
    // The Watch update arrives asynchronously.
    return ::chat::testing::Eventually([&] {
      return absl::StartsWith(Request("GET", "/readyz", ""),
                              absl::StrCat("HTTP/1.1 ", status));
    });
  };
  EXPECT_TRUE(readyz_is("200"));
  // gRPC's client-side health checking (the channel's service config)
  // watches the backend: NOT_SERVING takes it out of the balancer.
  backend_->GetHealthCheckService()->SetServingStatus("chat.v1.ChatService",
                                                      false);
  EXPECT_TRUE(readyz_is("503"));
  std::string answer = Request("GET", "/readyz", "");
  EXPECT_THAT(answer, HasSubstr(R"("code":14)"));
  EXPECT_THAT(answer, HasSubstr("no backend is serving"));
  // A call waits for a SERVING backend until its deadline.
  answer = Request("GET", "/stats", "", "Grpc-Timeout: 500m\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 504 "));
  EXPECT_THAT(answer, HasSubstr(R"("code":4)"));
  EXPECT_THAT(Request("GET", "/healthz", ""), StartsWith("HTTP/1.1 200 "));

  // A call made around the time the backend turns SERVING again is served,
  // whichever comes first (tests/integration/health_test shows a call
  // waiting through a restart).
  std::string waited;
  std::thread waiting(
      [&] { waited = Request("GET", "/stats", "", "Grpc-Timeout: 15S\r\n"); });
  backend_->GetHealthCheckService()->SetServingStatus("chat.v1.ChatService",
                                                      true);
  waiting.join();
  // GetStats is not scripted in the fake: UNIMPLEMENTED, but it got there.
  EXPECT_THAT(waited, StartsWith("HTTP/1.1 501 "));
  EXPECT_TRUE(readyz_is("200"));
}

TEST_F(GatewayTest, HealthzAndReadyzAnswerGetOnly) {
  std::string answer = Request("GET", "/healthz", "");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Cache-Control: no-store\r\n"));
  EXPECT_THAT(answer, EndsWith(R"({"status":"ok"})"));
  EXPECT_THAT(Request("POST", "/healthz", ""), StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(Request("DELETE", "/readyz", ""), StartsWith("HTTP/1.1 405 "));
  EXPECT_THAT(Request("HEAD", "/healthz", ""), StartsWith("HTTP/1.1 200 "));
}

TEST_F(GatewayTest, ReadyzIs503FromShutdownOn) {
  ::chat::testing::Eventually([&] {
    return absl::StartsWith(Request("GET", "/readyz", ""), "HTTP/1.1 200");
  });
  gateway_->CancelAll();
  EXPECT_THAT(Request("GET", "/readyz", ""), StartsWith("HTTP/1.1 503 "));
  // A call started from now on is cut by the shutdown, not by its client.
  std::string answer = Request("POST", "/v1/chat", ChatBody("hi"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 503 "));
  EXPECT_THAT(answer, HasSubstr("chat-gateway is shutting down"));
}

TEST_F(GatewayTest, SetBackendsSendsNewCallsThroughTheNewChannels) {
  EXPECT_THAT(Request("POST", "/v1/chat", ChatBody("hi")),
              StartsWith("HTTP/1.1 200 "));
  // Port 1 on loopback refuses connections: calls through that channel wait
  // for a backend until their deadline.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> nowhere =
      MakeBackendChannel("127.0.0.1:1");
  ASSERT_TRUE(nowhere.ok());
  gateway_->SetBackends(std::make_shared<BackendSet>(*nowhere));
  EXPECT_THAT(
      Request("POST", "/v1/chat", ChatBody("hi"), "Grpc-Timeout: 500m\r\n"),
      StartsWith("HTTP/1.1 504 "));
  EXPECT_THAT(Request("GET", "/readyz", ""), StartsWith("HTTP/1.1 503 "));
  absl::StatusOr<std::shared_ptr<grpc::Channel>> back =
      MakeBackendChannel(absl::StrCat("127.0.0.1:", backend_port_));
  ASSERT_TRUE(back.ok());
  gateway_->SetBackends(std::make_shared<BackendSet>(*back));
  EXPECT_THAT(Request("POST", "/v1/chat", ChatBody("hi")),
              StartsWith("HTTP/1.1 200 "));
}

// Calls waiting in a set whose backends are all down when SetBackends
// replaces it (SIGHUP's TLS re-read during an outage) start on one of its
// channels, where they used to wait for that dead backend until their
// deadline. The channel fails them at once now (the set waits for calls
// itself, so they skip gRPC's wait_for_ready), untaken, and the gateway
// sends each again through the new set, which serves it.
TEST_F(GatewayTest, CallsWaitingWhenTheBackendsAreReplacedAreServedByTheNew) {
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> nowhere =
      MakeBackendChannels("127.0.0.1:1,localhost:1");
  ASSERT_TRUE(nowhere.ok()) << nowhere.status();
  ASSERT_EQ(nowhere->size(), 2u);
  gateway_->SetBackends(std::make_shared<BackendSet>(*nowhere));
  auto waiting_calls = [] {
    return ::chat::testing::SampleValue(MetricsRegistry::Default().Render(),
                                        "chatd_gateway_backend_waiting_calls")
        .value_or(-1);
  };
  ASSERT_EQ(waiting_calls(), 0);
  // The proto's routes and OpenAI's, unary and streamed.
  struct Waiting {
    std::string path;
    std::string body;
    std::string answer;
  };
  const std::string completion =
      R"({"model":"m","messages":[{"role":"user","content":"hi"}])";
  std::vector<Waiting> calls = {
      {"/v1/chat", ChatBody("hi"), ""},
      {"/v1/chat:stream", ChatBody("hi"), ""},
      {"/v1/chat/completions", completion + "}", ""},
      {"/v1/chat/completions", completion + R"(,"stream":true})", ""},
  };
  std::vector<std::thread> threads;
  for (Waiting& call : calls) {
    threads.emplace_back([&] {
      call.answer =
          Request("POST", call.path, call.body, "Grpc-Timeout: 20S\r\n");
    });
  }
  ASSERT_TRUE(::chat::testing::Eventually(
      [&] { return waiting_calls() == static_cast<double>(calls.size()); },
      absl::Seconds(10)));
  absl::StatusOr<std::shared_ptr<grpc::Channel>> back =
      MakeBackendChannel(absl::StrCat("127.0.0.1:", backend_port_));
  ASSERT_TRUE(back.ok());
  gateway_->SetBackends(std::make_shared<BackendSet>(*back));
  for (std::thread& t : threads) t.join();
  for (const Waiting& call : calls) {
    EXPECT_THAT(call.answer, StartsWith("HTTP/1.1 200 ")) << call.path;
  }
  EXPECT_THAT(calls[1].answer, HasSubstr("event: done"));
  EXPECT_THAT(calls[2].answer, HasSubstr(R"("content":"completed")"));
  EXPECT_THAT(calls[3].answer, HasSubstr("data: [DONE]"));
}

// With every backend of a set that waits for calls itself down, a call
// waits there until its deadline (504), and from shutdown on a call that
// reaches the set is let go at once (503) instead of waiting past WaitIdle.
TEST_F(GatewayTest, CallsWaitingForADownSetEndAtTheirDeadlineOrAtShutdown) {
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> nowhere =
      MakeBackendChannels("127.0.0.1:1,localhost:1");
  ASSERT_TRUE(nowhere.ok()) << nowhere.status();
  gateway_->SetBackends(std::make_shared<BackendSet>(*nowhere));
  EXPECT_THAT(
      Request("POST", "/v1/chat", ChatBody("hi"), "Grpc-Timeout: 500m\r\n"),
      StartsWith("HTTP/1.1 504 "));
  gateway_->CancelAll();
  // Not 504 at the deadline: let go by the set's next look at its calls.
  std::string answer =
      Request("POST", "/v1/chat", ChatBody("hi"), "Grpc-Timeout: 20S\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 503 "));
  EXPECT_THAT(answer, HasSubstr("chat-gateway is shutting down"));
  EXPECT_TRUE(gateway_->WaitIdle(absl::Seconds(5)));
}

TEST_F(GatewayTest, CompleteStreamEndsWithDone) {
  std::string answer = Request("POST", "/v1/chat:stream", ChatBody("fine"));
  EXPECT_THAT(answer,
              HasSubstr("event: done\ndata: {\"response\":\"partial \""));
  EXPECT_THAT(answer, EndsWith("0\r\n\r\n"));
}

TEST_F(GatewayTest, TemplateListGathersEveryPage) {
  std::string answer = Request("GET", "/sessions", "");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  // Both pages, each once, and no token: the list is complete.
  EXPECT_THAT(
      answer,
      EndsWith(
          R"({"sessions":[)"
          R"({"session_id":"first","turns":0,"created_at":"","updated_at":"",)"
          R"("title":""},)"
          R"({"session_id":"second","turns":0,"created_at":"","updated_at":"",)"
          R"("title":""}],)"
          R"("next_page_token":""})"));
}

TEST_F(GatewayTest, GatheringStopsAtAPageThatAddsNothing) {
  service_.empty_pages_after_first = true;
  std::string answer = Request("GET", "/sessions", "");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr(R"("session_id":"first")"));
  // Where to go on is in the answer, as when the item cap is reached.
  EXPECT_THAT(answer, HasSubstr(R"("next_page_token":"empty")"));
  EXPECT_EQ(service_.empty_pages_served.load(), 1);
}

TEST_F(GatewayTest, V1ListAnswersOnePage) {
  std::string answer = Request("GET", "/v1/sessions", "");
  EXPECT_THAT(answer, HasSubstr(R"("session_id":"first")"));
  EXPECT_THAT(answer, Not(HasSubstr(R"("session_id":"second")")));
  EXPECT_THAT(answer, HasSubstr(R"("next_page_token":"page-2")"));
}

// ChatStream answered in this process (GatewayOptions::local_streams), on
// FakeChatService's script: the gateway must make of it what it makes of the
// RPC's stream. Two more: "hold" writes one delta and then waits for the
// cancel, "hold-silent" waits for it at once; the cancel ends the call
// CANCELLED (after the delta's write, as the method's contract says), and
// its reason is kept.
class FakeLocalChatStream final : public LocalStreamMethod {
 public:
  LocalCallCancel Start(const google::protobuf::Message& request,
                        const BackendCall::Metadata& /*metadata*/,
                        absl::Time /*deadline*/,
                        std::shared_ptr<LocalStreamSink> sink) override {
    chat::v1::ChatStreamRequest message;
    message.CopyFrom(request);
    const std::string script = message.message();
    // Calls come one at a time in these tests.
    if (calls.fetch_add(1) == 0) started.Notify();
    int code = 0;
    if (absl::SimpleAtoi(absl::StripPrefix(script, "status:"), &code)) {
      BackendCall::Metadata trailing;
      if (code == static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)) {
        trailing = {{"x-ratelimit-remaining-requests", "0"},
                    {"retry-after", "7"}};
      }
      sink->Finish(
          grpc::Status(static_cast<grpc::StatusCode>(code), "scripted failure"),
          {}, trailing);
      return [](LocalCancelReason) {};
    }
    BackendCall::Metadata initial;
    if (script == "limits") {
      initial = {{"x-ratelimit-limit-requests", "60"},
                 {"x-backend-detail", "internal"}};
    }
    if (script == "hold-silent" || script == "hold") {
      auto held = std::make_shared<HeldCall>(sink, this);
      if (script == "hold-silent") {
        held->Written();
      } else {
        chat::v1::ChatStreamResponse delta;
        delta.mutable_delta()->set_text("partial ");
        sink->Write(delta, {}, [held](bool /*ok*/) { held->Written(); });
      }
      return [held](LocalCancelReason reason) { held->Cancelled(reason); };
    }
    chat::v1::ChatStreamResponse delta;
    delta.mutable_delta()->set_text("partial ");
    sink->Write(delta, initial, [sink, script, initial](bool /*ok*/) {
      int code = 0;
      if (absl::SimpleAtoi(absl::StripPrefix(script, "stream-error:"), &code)) {
        return sink->Finish(
            grpc::Status(static_cast<grpc::StatusCode>(code), "went wrong"),
            initial, {});
      }
      chat::v1::ChatStreamResponse done;
      done.mutable_done()->set_response("partial ");
      sink->Write(done, initial, [sink, initial](bool /*ok*/) {
        sink->Finish(grpc::Status::OK, initial, {});
      });
    });
    return [](LocalCancelReason) {};
  }

  // Calls started; the first started; the first held call ended, cancelled
  // first for `cancel_reason` (set before `cancelled` is notified; the
  // tests hold one call at a time).
  std::atomic<int> calls{0};
  absl::Notification started;
  absl::Notification cancelled;
  std::optional<LocalCancelReason> cancel_reason;

 private:
  // A held call: ends CANCELLED once it was cancelled and its write is done,
  // and then lets go of the sink (which holds the HTTP exchange, which holds
  // the cancel, which holds this).
  class HeldCall {
   public:
    HeldCall(std::shared_ptr<LocalStreamSink> sink, FakeLocalChatStream* fake)
        : sink_(std::move(sink)), fake_(fake) {}
    void Written() {
      std::shared_ptr<LocalStreamSink> sink;
      {
        absl::MutexLock lock(&mu_);
        written_ = true;
        sink = TakeSinkToEndLocked();
      }
      End(sink);
    }
    void Cancelled(LocalCancelReason reason) {
      std::shared_ptr<LocalStreamSink> sink;
      {
        absl::MutexLock lock(&mu_);
        if (!reason_.has_value()) reason_ = reason;
        sink = TakeSinkToEndLocked();
      }
      End(sink);
    }

   private:
    // The sink, once the call is both written and cancelled (once).
    std::shared_ptr<LocalStreamSink> TakeSinkToEndLocked()
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (!written_ || !reason_.has_value() || sink_ == nullptr) return nullptr;
      if (!fake_->cancelled.HasBeenNotified()) {
        fake_->cancel_reason = reason_;
        fake_->cancelled.Notify();
      }
      return std::move(sink_);
    }
    // Outside the lock: the call's end runs the gateway's side.
    static void End(const std::shared_ptr<LocalStreamSink>& sink) {
      if (sink == nullptr) return;
      sink->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"), {},
                   {});
    }

    absl::Mutex mu_;
    bool written_ ABSL_GUARDED_BY(mu_) = false;
    // The first cancel's; set once the call was cancelled.
    std::optional<LocalCancelReason> reason_ ABSL_GUARDED_BY(mu_);
    std::shared_ptr<LocalStreamSink> sink_ ABSL_GUARDED_BY(mu_);
    FakeLocalChatStream* const fake_;
  };
};

class LocalStreamGatewayTest : public GatewayTest {
 protected:
  GatewayOptions Options() override {
    GatewayOptions options;
    options.local_streams.emplace("chat.v1.ChatService.ChatStream", local_);
    return options;
  }

  // Sends a request for `message`'s stream on a connection of its own and
  // waits until the method has it; the connection.
  int StartStream(const std::string& message) {
    const int fd = ConnectToGateway();
    // A read that would wait longer fails the test instead of hanging it.
    timeval timeout{20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    const std::string body = ChatBody(message);
    const std::string request = absl::StrCat(
        "POST /v1/chat:stream HTTP/1.1\r\nHost: x\r\nContent-Length: ",
        body.size(), "\r\n\r\n", body);
    EXPECT_EQ(write(fd, request.data(), request.size()),
              static_cast<ssize_t>(request.size()));
    EXPECT_TRUE(
        local_->started.WaitForNotificationWithTimeout(absl::Seconds(10)));
    return fd;
  }

  const std::shared_ptr<FakeLocalChatStream> local_ =
      std::make_shared<FakeLocalChatStream>();
};

TEST_F(LocalStreamGatewayTest, EventsErrorsAndHeadersAsThroughTheRpc) {
  std::string ok = Request("POST", "/v1/chat:stream", ChatBody("limits"));
  EXPECT_THAT(ok, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(ok, HasSubstr("x-ratelimit-limit-requests: 60\r\n"));
  EXPECT_THAT(ok, Not(HasSubstr("x-backend-detail")));
  EXPECT_THAT(ok, HasSubstr("event: delta\ndata: {\"text\":\"partial \"}\n"));
  EXPECT_THAT(ok, HasSubstr("event: done\ndata: {\"response\":\"partial \""));

  std::string error =
      Request("POST", "/v1/chat:stream", ChatBody("stream-error:8"));
  EXPECT_THAT(error, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(error,
              HasSubstr("event: error\ndata: "
                        R"({"code":8,"message":"went wrong","details":[]})"
                        "\n\n"));

  std::string refused =
      Request("POST", "/v1/chat:stream", ChatBody("status:8"));
  EXPECT_THAT(refused, StartsWith("HTTP/1.1 429 Too Many Requests\r\n"));
  EXPECT_THAT(refused, HasSubstr("Retry-After: 7\r\n"));
  EXPECT_THAT(
      refused,
      EndsWith(R"({"code":8,"message":"scripted failure","details":[]})"));

  std::string raw =
      Request("POST", "/chat-stream", ChatBody("stream-error:14"));
  EXPECT_THAT(
      raw,
      HasSubstr("8\r\npartial \r\n12\r\n\nError: went wrong\r\n0\r\n\r\n"));

  std::string ndjson =
      Request("POST", "/v1/chat:stream", ChatBody("stream-error:4"),
              "Accept: application/x-ndjson\r\n");
  EXPECT_THAT(ndjson, HasSubstr(R"({"result":{"delta":{"text":"partial "},)"));
  EXPECT_THAT(
      ndjson,
      HasSubstr(R"({"error":{"code":4,"message":"went wrong","details":[]}})"));
  EXPECT_EQ(local_->calls.load(), 5);  // None went to the RPC.
}

TEST_F(LocalStreamGatewayTest, TheDeadlineCancelsASilentCallWith504) {
  std::string answer = Request("POST", "/v1/chat:stream",
                               ChatBody("hold-silent"), "Grpc-Timeout: 1S\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 504 Gateway Timeout\r\n"));
  EXPECT_THAT(answer, HasSubstr(R"("code":4)"));
  ASSERT_TRUE(local_->cancelled.HasBeenNotified());
  EXPECT_EQ(local_->cancel_reason, LocalCancelReason::kDeadline);
}

TEST_F(LocalStreamGatewayTest, TheDeadlineEndsAStartedStreamWithAnErrorEvent) {
  std::string answer = Request("POST", "/v1/chat:stream", ChatBody("hold"),
                               "Grpc-Timeout: 1S\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("event: delta\n"));
  EXPECT_THAT(answer, HasSubstr("event: error\ndata: {\"code\":4,"));
  ASSERT_TRUE(local_->cancelled.HasBeenNotified());
  EXPECT_EQ(local_->cancel_reason, LocalCancelReason::kDeadline);
}

TEST_F(LocalStreamGatewayTest, AClientThatLeavesCancelsTheCall) {
  const int fd = StartStream("hold");
  std::string received;
  char buffer[4096];
  while (!absl::StrContains(received, "partial")) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    ASSERT_GT(n, 0) << received;
    received.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  ASSERT_TRUE(
      local_->cancelled.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(local_->cancel_reason, LocalCancelReason::kClientGone);
}

TEST_F(LocalStreamGatewayTest, ShutdownCancelsTheCallWith503) {
  const int fd = StartStream("hold-silent");
  gateway_->CancelAll();
  std::string received;
  char buffer[4096];
  while (!absl::StrContains(received, "\r\n\r\n")) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  EXPECT_THAT(received, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  ASSERT_TRUE(local_->cancelled.HasBeenNotified());
  EXPECT_EQ(local_->cancel_reason, LocalCancelReason::kShutdown);
  EXPECT_TRUE(gateway_->WaitIdle(absl::Seconds(10)));
}

class NewBindingGatewayTest : public GatewayTest {
 protected:
  const google::protobuf::ServiceDescriptor* Service() override {
    return ::chat::testing::ChatServiceWithNewBindings();
  }
};

TEST_F(NewBindingGatewayTest, NewAdditionalBindingStreamsSse) {
  std::string answer = Request("POST", "/v2/chat-stream", ChatBody("fine"));
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(answer,
              HasSubstr("event: delta\ndata: {\"text\":\"partial \"}\n\n"));
  EXPECT_THAT(answer, HasSubstr("event: done\ndata: "));
  // Also ndjson on Accept, as on any standard route.
  answer = Request("POST", "/v2/chat-stream", ChatBody("fine"),
                   "Accept: application/x-ndjson\r\n");
  // The line carries the event's id too (empty from this fake backend),
  // for a client that resumes an NDJSON stream.
  EXPECT_THAT(answer, HasSubstr(R"({"result":{"delta":{"text":"partial "},)"
                                R"("event_id":""}})"));
}

TEST_F(NewBindingGatewayTest, NewAdditionalBindingListIsOnePage) {
  std::string answer = Request("GET", "/v2/sessions", "");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr(R"("session_id":"first")"));
  EXPECT_THAT(answer, Not(HasSubstr(R"("session_id":"second")")));
  EXPECT_THAT(answer, HasSubstr(R"("next_page_token":"page-2")"));
}

// The same service still serves the template's routes the template's way.
TEST_F(NewBindingGatewayTest, TemplateRoutesKeepTheirBehaviour) {
  std::string answer = Request("POST", "/chat-stream", ChatBody("fine"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain; charset=utf-8\r\n"));
  EXPECT_THAT(answer, HasSubstr("8\r\npartial \r\n0\r\n\r\n"));
  answer = Request("GET", "/sessions", "");
  EXPECT_THAT(answer, HasSubstr(R"({"session_id":"second")"));
}

}  // namespace
}  // namespace chat::gateway
