// CurlMultiLoop against a real HTTP server on loopback (the fake upstream,
// tests/fake_upstream/server.mjs). Strategy: each test starts transfers with
// a recording handler and waits for OnDone; the fake's /_stats says what the
// server saw (attempts, connections closed early). Every callback must come
// from the loop's one I/O thread.

#include "server/llm/curl_multi_loop.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/llm/provider_factory.h"
#include "server/llm/provider_metrics.h"
#include "tests/testing/eventually.h"
#include "tests/testing/fake_upstream.h"
#include "tests/testing/stderr_capture.h"

namespace chat::llm {
namespace {

using ::chat::testing::Eventually;
using ::chat::testing::FakeUpstream;
using ::chat::testing::StderrCapture;
using ::testing::HasSubstr;

// Records one transfer's callbacks.
class Recorder final : public TransferHandler {
 public:
  explicit Recorder(CurlMultiLoop* loop) : loop_(loop) {}

  void OnResponse(int http_status,
                  const std::map<std::string, std::string>& headers) override {
    std::function<void()> on_response;
    {
      absl::MutexLock lock(&mu_);
      if (!loop_->InLoopThread()) off_thread_ = true;
      status_ = http_status;
      headers_ = headers;
      on_response.swap(on_response_);
    }
    if (on_response) on_response();
  }
  bool OnBody(absl::string_view bytes) override {
    std::function<void()> first_body;
    {
      absl::MutexLock lock(&mu_);
      if (!loop_->InLoopThread()) off_thread_ = true;
      body_.append(bytes.data(), bytes.size());
      first_body.swap(on_first_body_);
    }
    if (first_body) first_body();
    return true;
  }
  void OnDone(const TransferOutcome& outcome) override {
    {
      absl::MutexLock lock(&mu_);
      if (!loop_->InLoopThread()) off_thread_ = true;
      outcome_ = outcome;
    }
    done_.Notify();
  }

  // Runs `fn` inside the first OnBody, on the I/O thread inside curl's
  // write callback. Set before the transfer starts.
  void RunOnFirstBody(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    on_first_body_ = std::move(fn);
  }
  // The same, inside OnResponse.
  void RunOnResponse(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    on_response_ = std::move(fn);
  }
  bool WaitDone(absl::Duration timeout = absl::Seconds(10)) {
    return done_.WaitForNotificationWithTimeout(timeout);
  }
  bool WaitForBody(const std::string& part) {
    absl::MutexLock lock(&mu_);
    struct Arg {
      Recorder* r;
      std::string part;
    } arg{this, part};
    return mu_.AwaitWithTimeout(
        absl::Condition(
            +[](Arg* a) {
              a->r->mu_.AssertHeld();  // Conditions run under mu_.
              return a->r->body_.find(a->part) != std::string::npos;
            },
            &arg),
        absl::Seconds(10));
  }
  int status() {
    absl::MutexLock l(&mu_);
    return status_;
  }
  std::string body() {
    absl::MutexLock l(&mu_);
    return body_;
  }
  std::string header(const std::string& name) {
    absl::MutexLock l(&mu_);
    auto it = headers_.find(name);
    return it == headers_.end() ? "" : it->second;
  }
  TransferOutcome outcome() {
    absl::MutexLock l(&mu_);
    return outcome_;
  }
  bool off_thread() {
    absl::MutexLock l(&mu_);
    return off_thread_;
  }
  bool done() { return done_.HasBeenNotified(); }

 private:
  CurlMultiLoop* const loop_;
  absl::Mutex mu_;
  int status_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::string> headers_ ABSL_GUARDED_BY(mu_);
  std::string body_ ABSL_GUARDED_BY(mu_);
  TransferOutcome outcome_ ABSL_GUARDED_BY(mu_);
  bool off_thread_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> on_first_body_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_response_ ABSL_GUARDED_BY(mu_);
  absl::Notification done_;
};

class CurlMultiLoopTest : public ::testing::Test {
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

  // The process-wide gauge of held requests follows every loop's count:
  // with the test's loop gone, whatever ended its transfers, it is back
  // where it was. (The connections gauge is settled by the destructor,
  // which takes off what curl closed without telling.)
  void TearDown() override {
    loop_.reset();
    EXPECT_EQ(HeldGauge().value(), held_before_);
  }
  // The gauge of a loop made without a provider name.
  static Gauge& HeldGauge() {
    return ProviderMetrics::Get().requests_held.WithLabels({""});
  }

  void SetUp() override {
    if (upstream_ == nullptr)
      GTEST_SKIP() << "node was not found at configure time";
    absl::StatusOr<std::unique_ptr<CurlMultiLoop>> loop =
        CurlMultiLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = *std::move(loop);
    held_before_ = HeldGauge().value();
  }

  // Runs `fn` on the I/O thread and returns once it has run. Posted closures
  // run in order, so it is also a barrier behind everything posted before.
  void RunOnLoop(const std::function<void()>& fn) {
    absl::Notification ran;
    loop_->Post([&] {
      fn();
      ran.Notify();
    });
    ran.WaitForNotification();
  }

  // An Anthropic-style streaming request the fake answers as `model` says.
  HttpRequest Request(const std::string& model) {
    HttpRequest r;
    r.url = upstream_->base_url() + "/v1/messages";
    r.headers = {"x-api-key: k", "anthropic-version: 2023-06-01",
                 "content-type: application/json"};
    r.body =
        nlohmann::json{{"model", model},
                       {"stream", true},
                       {"max_tokens", 10},
                       {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
            .dump();
    return r;
  }

  nlohmann::json Stats(const std::string& model) {
    return upstream_->Stats(model);
  }

  static FakeUpstream* upstream_;
  std::unique_ptr<CurlMultiLoop> loop_;
  double held_before_ = 0;
};

FakeUpstream* CurlMultiLoopTest::upstream_ = nullptr;

TEST_F(CurlMultiLoopTest, StreamsAResponseOnTheLoopThread) {
  auto r = std::make_shared<Recorder>(loop_.get());
  loop_->StartTransfer(Request("ok@loop-ok"), r);
  ASSERT_TRUE(r->WaitDone());
  EXPECT_EQ(r->outcome().curl_code, CURLE_OK) << r->outcome().error;
  EXPECT_EQ(r->status(), 200);
  EXPECT_THAT(r->header("content-type"), HasSubstr("text/event-stream"));
  EXPECT_EQ(r->header("request-id"), "req_fake_ok");
  EXPECT_THAT(r->body(), HasSubstr("event: message_stop"));
  EXPECT_FALSE(r->off_thread());
  EXPECT_EQ(loop_->active_transfers(), 0);
}

TEST_F(CurlMultiLoopTest, ManyConcurrentTransfersShareTheOneThread) {
  std::vector<std::shared_ptr<Recorder>> recorders;
  for (int i = 0; i < 200; ++i) {
    recorders.push_back(std::make_shared<Recorder>(loop_.get()));
    loop_->StartTransfer(Request("slow:10@loop-many"), recorders.back());
  }
  for (auto& r : recorders) {
    ASSERT_TRUE(r->WaitDone(absl::Seconds(30)));
    EXPECT_EQ(r->outcome().curl_code, CURLE_OK) << r->outcome().error;
    EXPECT_THAT(r->body(), HasSubstr("message_stop"));
    EXPECT_FALSE(r->off_thread());
  }
  EXPECT_EQ(Stats("slow:10@loop-many")["completed"], 200);
}

// Each transfer ends before the next starts, so the loop reuses the first
// one's easy handle: the connection is reused too, and each request carries
// its own headers only (the header list of the last one is not kept).
TEST_F(CurlMultiLoopTest, SequentialTransfersReuseTheConnectionNotTheHeaders) {
  const std::string model = "ok@loop-reuse";
  // Each control call (Stats, ServerStats) opens a connection of its own.
  int control_calls = 0;
  const int opened_before =
      upstream_->ServerStats()["connections_opened"].get<int>();
  const std::vector<std::string> traceparents = {
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01", ""};
  for (const std::string& traceparent : traceparents) {
    HttpRequest request = Request(model);
    if (!traceparent.empty())
      request.headers.push_back("traceparent: " + traceparent);
    auto r = std::make_shared<Recorder>(loop_.get());
    loop_->StartTransfer(request, r);
    ASSERT_TRUE(r->WaitDone());
    EXPECT_EQ(r->outcome().curl_code, CURLE_OK) << r->outcome().error;
    EXPECT_THAT(r->body(), HasSubstr("event: message_stop"));
    nlohmann::json stats = Stats(model);
    ++control_calls;
    EXPECT_EQ(stats["saw_credentials"], true);
    if (traceparent.empty()) {
      EXPECT_TRUE(stats["last_traceparent"].is_null()) << stats.dump();
    } else {
      EXPECT_EQ(stats["last_traceparent"], traceparent);
    }
  }
  EXPECT_EQ(Stats(model)["completed"], 3);
  ++control_calls;
  ++control_calls;  // The ServerStats below.
  EXPECT_EQ(upstream_->ServerStats()["connections_opened"].get<int>(),
            opened_before + control_calls + 1);
}

// Against a plain-HTTP (HTTP/1.1) upstream, connections are kept for reuse
// while few transfers run; a transfer started with `max_reused_connections`
// or more running closes its connection at its end, so a burst leaves no
// pile of idle connections behind (curl walks them all per transfer). Kept
// connections are found again by the next transfers, and a transfer started
// while no connection can be idle opens its own without looking.
TEST_F(CurlMultiLoopTest, KeepsConnectionsForReuseUpToTheCapOnly) {
  CurlMultiLoopOptions options;
  options.max_reused_connections = 2;
  absl::StatusOr<std::unique_ptr<CurlMultiLoop>> created =
      CurlMultiLoop::Create(options);
  ASSERT_TRUE(created.ok()) << created.status();
  CurlMultiLoop& loop = **created;

  // `n` transfers running at once (each has its first delta), then released.
  auto burst = [&](const std::string& model, int n, int open_while_held) {
    std::vector<std::shared_ptr<Recorder>> recorders;
    for (int i = 0; i < n; ++i) {
      recorders.push_back(std::make_shared<Recorder>(&loop));
      loop.StartTransfer(Request(model), recorders.back());
      ASSERT_TRUE(recorders.back()->WaitForBody("text_delta"));
    }
    EXPECT_EQ(loop.open_sockets(), open_while_held);
    upstream_->Release(model);
    for (auto& r : recorders) {
      ASSERT_TRUE(r->WaitDone());
      EXPECT_EQ(r->outcome().curl_code, CURLE_OK) << r->outcome().error;
      EXPECT_THAT(r->body(), HasSubstr("message_stop"));
    }
  };
  // Started with 0 and 1 running: kept; with 2, 3 and 4: closed at the end.
  burst("hold@loop-cap-1", 5, 5);
  EXPECT_EQ(loop.open_sockets(), 2);

  // One at a time: each reuses a kept connection.
  for (int i = 0; i < 3; ++i) {
    auto r = std::make_shared<Recorder>(&loop);
    loop.StartTransfer(Request("ok@loop-cap-2"), r);
    ASSERT_TRUE(r->WaitDone());
    EXPECT_EQ(r->outcome().curl_code, CURLE_OK) << r->outcome().error;
    EXPECT_EQ(loop.open_sockets(), 2);
  }
  EXPECT_EQ(Stats("ok@loop-cap-2")["completed"], 3);

  // Three at once: the first two take the two idle connections, the third
  // opens one (and closes it at its end, started with 2 running).
  burst("hold@loop-cap-3", 3, 3);
  EXPECT_EQ(loop.open_sockets(), 2);
  EXPECT_EQ(loop.active_transfers(), 0);
}

// A handle reused for a request without the CA file forgets it: the
// upstream's private certificate is then refused, and trusted again with it.
TEST_F(CurlMultiLoopTest, AReusedHandleTrustsOnlyTheCaFileOfItsRequest) {
  absl::StatusOr<std::unique_ptr<FakeUpstream>> tls = FakeUpstream::Start(
      CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR, /*tls=*/true);
  ASSERT_TRUE(tls.ok()) << tls.status();
  auto run = [&](const std::string& ca_file) {
    HttpRequest request = Request("ok@loop-tls");
    request.url = (*tls)->base_url() + "/v1/messages";
    request.ca_file = ca_file;
    auto r = std::make_shared<Recorder>(loop_.get());
    loop_->StartTransfer(request, r);
    EXPECT_TRUE(r->WaitDone());
    return r->outcome();
  };
  EXPECT_EQ(run((*tls)->cert_file()).curl_code, CURLE_OK);
  EXPECT_EQ(run("").curl_code, CURLE_PEER_FAILED_VERIFICATION);
  TransferOutcome again = run((*tls)->cert_file());
  EXPECT_EQ(again.curl_code, CURLE_OK) << again.error;
  EXPECT_EQ((*tls)->Stats("ok@loop-tls")["completed"], 2);
}

// Descriptors open in this process.
int OpenDescriptors() {
  int count = 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count;
}

// Starts `count` transfers like `like` to `upstream` (HTTPS) at once, their
// recorders added to `recorders`.
void StartBurst(CurlMultiLoop* loop, const FakeUpstream& upstream,
                const HttpRequest& like, int count,
                std::vector<std::shared_ptr<Recorder>>* recorders) {
  for (int i = 0; i < count; ++i) {
    HttpRequest request = like;
    request.url = upstream.base_url() + "/v1/messages";
    request.ca_file = upstream.cert_file();
    recorders->push_back(std::make_shared<Recorder>(loop));
    loop->StartTransfer(request, recorders->back());
  }
}

// Waits until `upstream` has all `count` requests of `model` ("hold": each
// stays open until released, so they all run at once).
bool AllArrived(const FakeUpstream& upstream, const std::string& model,
                int count) {
  return Eventually([&] { return upstream.Stats(model)["attempts"] == count; });
}

void ExpectAllCompleted(
    const std::vector<std::shared_ptr<Recorder>>& recorders) {
  for (auto& r : recorders) {
    ASSERT_TRUE(r->WaitDone(absl::Seconds(60)));
    EXPECT_EQ(r->outcome().curl_code, CURLE_OK) << r->outcome().error;
    EXPECT_THAT(r->body(), HasSubstr("message_stop"));
  }
}

// A burst over HTTPS opens one HTTP/2 connection per 100 streams: the
// transfers beyond the room of the set-up connections wait for the next one
// rather than each open a connection (and a TLS handshake) of its own, as
// libcurl alone does once it knows the host multiplexes. Two rounds: the
// first from no connection, the second with the first's still open, while
// it runs. open_sockets() counts the loop's connections only (the control
// calls have their own).
TEST_F(CurlMultiLoopTest, AnHttpsBurstOpensAConnectionPerHundredStreams) {
  absl::StatusOr<std::unique_ptr<FakeUpstream>> tls = FakeUpstream::Start(
      CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR, /*tls=*/true);
  ASSERT_TRUE(tls.ok()) << tls.status();
  constexpr int kStreams = 250;  // 3 connections' worth.
  std::vector<std::shared_ptr<Recorder>> recorders;
  StartBurst(loop_.get(), **tls, Request("hold@loop-burst-1"), kStreams,
             &recorders);
  ASSERT_TRUE(AllArrived(**tls, "hold@loop-burst-1", kStreams));
  // One to spare: a transfer released into the first connection's room
  // can find it taken by the openers curl had parked there.
  EXPECT_GE(loop_->open_sockets(), 3);
  EXPECT_LE(loop_->open_sockets(), 4);
  StartBurst(loop_.get(), **tls, Request("hold@loop-burst-2"), kStreams,
             &recorders);
  ASSERT_TRUE(AllArrived(**tls, "hold@loop-burst-2", kStreams));
  EXPECT_GE(loop_->open_sockets(), 5);
  EXPECT_LE(loop_->open_sockets(), 6);
  (*tls)->Release("hold@loop-burst-1");
  (*tls)->Release("hold@loop-burst-2");
  ExpectAllCompleted(recorders);
  EXPECT_EQ(loop_->active_transfers(), 0);
}

// Servers the gate's count does not fit never stall a burst: one that
// speaks HTTP/1.1 only over TLS (a connection per stream), and an HTTP/2
// one that allows 10 streams per connection rather than 100. Every
// transfer of the burst reaches the server while all the others still run.
TEST_F(CurlMultiLoopTest, AnHttpsBurstNeverStallsWhereTheRoomIsMiscounted) {
  for (const char* server_flag : {"--tls-http1", "--max-streams=10"}) {
    SCOPED_TRACE(server_flag);
    absl::StatusOr<std::unique_ptr<FakeUpstream>> tls =
        FakeUpstream::Start(CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR,
                            /*tls=*/true, {server_flag});
    ASSERT_TRUE(tls.ok()) << tls.status();
    constexpr int kStreams = 150;
    std::vector<std::shared_ptr<Recorder>> recorders;
    StartBurst(loop_.get(), **tls, Request("hold@loop-miscounted"), kStreams,
               &recorders);
    ASSERT_TRUE(AllArrived(**tls, "hold@loop-miscounted", kStreams))
        << (*tls)->Stats("hold@loop-miscounted").dump();
    (*tls)->Release("hold@loop-miscounted");
    ExpectAllCompleted(recorders);
    const std::string version =
        (*tls)->Stats("hold@loop-miscounted")["http_version"];
    EXPECT_EQ(version,
              std::string(server_flag) == "--tls-http1" ? "1.1" : "2.0");
  }
}

// Once an origin has answered over HTTP/1.1, which never multiplexes, the
// gate holds none of its transfers: a burst goes to curl at once. The same
// burst to an HTTP/2 origin after a lull is held behind one transfer that
// goes first (see Origin), which shows the count can tell the two apart.
// The burst starts on the I/O thread, so the count is read before any of
// it is sent.
TEST_F(CurlMultiLoopTest, AnHttp1OriginIsNotHeldOnceItHasAnswered) {
  for (const bool http1 : {true, false}) {
    SCOPED_TRACE(http1 ? "HTTP/1.1" : "HTTP/2");
    std::vector<std::string> server_flags;
    if (http1) server_flags.push_back("--tls-http1");
    absl::StatusOr<std::unique_ptr<FakeUpstream>> tls =
        FakeUpstream::Start(CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR,
                            /*tls=*/true, server_flags);
    ASSERT_TRUE(tls.ok()) << tls.status();
    std::vector<std::shared_ptr<Recorder>> first;
    StartBurst(loop_.get(), **tls, Request("ok@loop-learn"), 1, &first);
    ExpectAllCompleted(first);

    constexpr int kStreams = 50;
    const std::string model = http1 ? "hold@loop-h1" : "hold@loop-h2";
    std::vector<std::shared_ptr<Recorder>> recorders;
    int held = -1;
    RunOnLoop([&] {
      StartBurst(loop_.get(), **tls, Request(model), kStreams, &recorders);
      held = loop_->held_transfers();
    });
    EXPECT_EQ(held, http1 ? 0 : kStreams - 1);
    ASSERT_TRUE(AllArrived(**tls, model, kStreams));
    EXPECT_EQ(loop_->held_transfers(), 0);
    (*tls)->Release(model);
    ExpectAllCompleted(recorders);
  }
}

// An HTTPS upstream that accepts connections but never answers the TLS
// handshake: the transfers the gate holds, and the openers curl parks
// behind the first connection (4 for 400 transfers), all end at their
// connect timeout as the first opener does: a connect failure, which the
// provider retries and falls back from, not a stall at the first-byte
// timeout. Both are timers of the loop, run in time order, so a slow loop
// cannot turn one into the other.
TEST_F(CurlMultiLoopTest,
       HeldTransfersToAnUnreachableOriginEndAsConnectFailures) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(listen(listener, 512), 0);  // Never accepted: the kernel's only.
  ASSERT_EQ(
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const int descriptors_before = OpenDescriptors();
  constexpr int kTransfers = 400;
  auto request_at = [&](absl::Duration connect_timeout) {
    HttpRequest request = Request("ok");
    request.url = absl::StrCat("https://127.0.0.1:", ntohs(address.sin_port),
                               "/v1/messages");
    request.connect_timeout = connect_timeout;
    // Shorter than curl's one parked opener at a time would take to fail
    // the 4 at 300 ms each.
    request.first_byte_timeout = absl::Milliseconds(800);
    return request;
  };
  std::vector<std::shared_ptr<Recorder>> recorders;
  auto within_deadline = std::make_shared<Recorder>(loop_.get());
  int held = -1;
  // All started on the I/O thread at once, so the gate's count is read
  // before any connection exists: one opener per 100 held.
  RunOnLoop([&] {
    for (int i = 0; i < kTransfers; ++i) {
      recorders.push_back(std::make_shared<Recorder>(loop_.get()));
      loop_->StartTransfer(request_at(absl::Milliseconds(300)),
                           recorders.back());
    }
    held = loop_->held_transfers();
    // Held too, with a deadline before its connect timeout.
    HttpRequest request = request_at(absl::Seconds(5));
    request.deadline = absl::Now() + absl::Milliseconds(200);
    loop_->StartTransfer(request, within_deadline);
  });
  EXPECT_EQ(held, kTransfers - 4);
  // Each says which wait it was: curl's own text for a connection's
  // handshake (or the loop's, whichever timer runs first), the loop's for
  // a transfer parked in curl or held by the gate.
  const std::set<std::string> loop_texts = {
      "held for a connection being set up",
      "its connection (TCP and TLS) was not set up in time",
      "no connection set up in time (name lookup, or one being set up)"};
  int held_texts = 0;
  for (auto& r : recorders) {
    ASSERT_TRUE(r->WaitDone(absl::Seconds(30)));
    EXPECT_EQ(r->outcome().curl_code, CURLE_OPERATION_TIMEDOUT)
        << r->outcome().error;
    EXPECT_FALSE(r->outcome().stalled) << r->outcome().error;
    EXPECT_FALSE(r->outcome().got_response);
    const std::string& error = r->outcome().error;
    const bool curls = absl::StrContains(error, "timed out") ||
                       absl::StrContains(error, "timeout");
    EXPECT_TRUE(curls || loop_texts.count(error) == 1) << error;
    if (error == "held for a connection being set up") ++held_texts;
  }
  EXPECT_GE(held_texts, 1);
  ASSERT_TRUE(within_deadline->WaitDone(absl::Seconds(30)));
  EXPECT_EQ(within_deadline->outcome().curl_code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_EQ(within_deadline->outcome().error,
            "deadline passed before a connection was set up");
  close(listener);
  EXPECT_EQ(loop_->active_transfers(), 0);
  // Closed, whether curl said so (OnCloseSocket) or not.
  EXPECT_EQ(OpenDescriptors(), descriptors_before - 1);
}

TEST_F(CurlMultiLoopTest, ErrorResponsesAreResponsesWithTheirHeaders) {
  auto r = std::make_shared<Recorder>(loop_.get());
  loop_->StartTransfer(Request("status:429:3@loop-429"), r);
  ASSERT_TRUE(r->WaitDone());
  EXPECT_EQ(r->outcome().curl_code, CURLE_OK);
  EXPECT_EQ(r->status(), 429);
  EXPECT_EQ(r->header("retry-after"), "3");
  EXPECT_THAT(r->body(), HasSubstr("rate_limit_error"));
}

TEST_F(CurlMultiLoopTest, AbortClosesTheConnectionAtOnce) {
  const std::string model = "hold@loop-abort";
  auto r = std::make_shared<Recorder>(loop_.get());
  CurlMultiLoop::TransferId id = loop_->StartTransfer(Request(model), r);
  ASSERT_TRUE(r->WaitForBody("text_delta"));
  loop_->Post([this, id] { loop_->AbortTransfer(id); });
  EXPECT_TRUE(Eventually([&] { return Stats(model)["closed_early"] == 1; }))
      << Stats(model).dump();
  EXPECT_FALSE(r->done()) << "an aborted transfer gets no OnDone";
  EXPECT_EQ(loop_->active_transfers(), 0);
}

// A handler may start and abort transfers from its own callbacks, inside
// curl's, where curl refuses to add or remove a handle (and a handle freed
// there would be used after): the start goes ahead once curl returns, and
// the aborted transfer is silenced at once and closed then.
TEST_F(CurlMultiLoopTest, HandlersMayStartAndAbortTransfersFromTheirCallbacks) {
  const std::string held_model = "hold@loop-cb-abort";
  auto held = std::make_shared<Recorder>(loop_.get());
  const CurlMultiLoop::TransferId held_id =
      loop_->StartTransfer(Request(held_model), held);
  ASSERT_TRUE(held->WaitForBody("text_delta"));

  auto started = std::make_shared<Recorder>(loop_.get());
  auto dropped = std::make_shared<Recorder>(loop_.get());
  auto trigger = std::make_shared<Recorder>(loop_.get());
  trigger->RunOnFirstBody([loop = loop_.get(), held_id, started, dropped,
                           request = Request("ok@loop-cb-started"),
                           dropped_request = Request("ok@loop-cb-dropped")] {
    loop->AbortTransfer(held_id);
    loop->StartTransfer(request, started);
    // Started and aborted before curl ever has it.
    loop->AbortTransfer(loop->StartTransfer(dropped_request, dropped));
  });
  loop_->StartTransfer(Request("ok@loop-cb-trigger"), trigger);

  ASSERT_TRUE(trigger->WaitDone());
  EXPECT_EQ(trigger->outcome().curl_code, CURLE_OK) << trigger->outcome().error;
  ASSERT_TRUE(started->WaitDone());
  EXPECT_EQ(started->outcome().curl_code, CURLE_OK) << started->outcome().error;
  EXPECT_THAT(started->body(), HasSubstr("message_stop"));
  EXPECT_TRUE(Eventually([&] {
    return Stats(held_model)["closed_early"] == 1;
  })) << Stats(held_model).dump();
  EXPECT_TRUE(Eventually([&] { return loop_->active_transfers() == 0; }));
  EXPECT_FALSE(held->done()) << "an aborted transfer gets no OnDone";
  EXPECT_FALSE(dropped->done());
  EXPECT_EQ(Stats("ok@loop-cb-dropped").value("attempts", 0), 0);
}

// A handler that aborts its own transfer from OnResponse gets no OnBody and
// no OnDone. (Whether the body arrives in the same read as the headers is
// up to the kernel; the callbacks' guards for that case are not forced.)
TEST_F(CurlMultiLoopTest, AHandlerAbortingInOnResponseGetsNoBody) {
  auto r = std::make_shared<Recorder>(loop_.get());
  auto id = std::make_shared<CurlMultiLoop::TransferId>(0);
  auto aborted = std::make_shared<std::atomic<bool>>(false);
  r->RunOnResponse([loop = loop_.get(), id, aborted] {
    loop->AbortTransfer(*id);
    aborted->store(true);
  });
  // Started on the I/O thread, so `id` is set before any callback runs.
  loop_->Post(
      [&] { *id = loop_->StartTransfer(Request("ok@loop-response"), r); });
  ASSERT_TRUE(Eventually([&] { return aborted->load(); }));
  ASSERT_TRUE(Eventually([&] { return loop_->active_transfers() == 0; }));
  RunOnLoop([] {});  // Whatever the removing round would still run has run.
  EXPECT_EQ(r->body(), "");
  EXPECT_FALSE(r->done()) << r->outcome().error;
}

// A handler that aborts its own transfer from OnBody hears nothing more,
// though curl has the whole response (the fake writes it at once) and ends
// the transfer inside the same call: no further OnBody, no OnDone.
TEST_F(CurlMultiLoopTest, AHandlerAbortingItsOwnTransferHearsNothingMore) {
  auto r = std::make_shared<Recorder>(loop_.get());
  auto id = std::make_shared<CurlMultiLoop::TransferId>(0);
  auto body_at_abort = std::make_shared<std::atomic<size_t>>(0);
  r->RunOnFirstBody(
      [loop = loop_.get(), recorder = r.get(), id, body_at_abort] {
        body_at_abort->store(recorder->body().size());
        loop->AbortTransfer(*id);
      });
  // Started on the I/O thread, so `id` is set before any callback runs.
  loop_->Post([&] { *id = loop_->StartTransfer(Request("ok@loop-self"), r); });
  ASSERT_TRUE(Eventually([&] { return body_at_abort->load() > 0; }));
  ASSERT_TRUE(Eventually([&] { return loop_->active_transfers() == 0; }));
  RunOnLoop([] {});  // Whatever the removing round would still run has run.
  EXPECT_FALSE(r->done()) << r->outcome().error;
  EXPECT_EQ(r->body().size(), body_at_abort->load());
}

// A provider starts its transfers on the I/O thread, and a cancel may be
// queued right behind the start: the abort must find the transfer rather than
// run before it exists and leave it streaming (and billing) to the end.
TEST_F(CurlMultiLoopTest, AbortRightAfterAStartOnTheLoopThreadStopsIt) {
  const std::string model = "hold@loop-start-abort";
  auto r = std::make_shared<Recorder>(loop_.get());
  RunOnLoop([&] {
    CurlMultiLoop::TransferId id = loop_->StartTransfer(Request(model), r);
    loop_->AbortTransfer(id);
  });
  // Barrier: posted closures run in order, so once this one has run, a
  // start that had been posted rather than done at once (the bug) would have
  // added its transfer, after the abort that missed it.
  RunOnLoop([] {});
  EXPECT_EQ(loop_->active_transfers(), 0) << "the aborted transfer still runs";
  EXPECT_FALSE(r->done());
  EXPECT_EQ(Stats(model)["completed"], 0);
}

// A provider destroyed while a call waits to retry (the upstream said 503,
// retry after 10 s) still ends that call: its sink is answered rather than
// left waiting forever.
TEST_F(CurlMultiLoopTest, DestroyingTheProviderEndsCallsWaitingToRetry) {
  class Sink final : public CompletionSink {
   public:
    void OnDelta(absl::string_view) override {}
    void OnComplete(absl::StatusOr<CompletionResult> result) override {
      status = result.status();
      done.Notify();
    }
    absl::Status status;
    absl::Notification done;
  };
  const std::string model = "status:503:10@loop-shutdown";
  ProviderConfig config;
  config.name = "anthropic";
  config.anthropic_api_key = "k";
  config.anthropic_base_url = upstream_->base_url();
  absl::StatusOr<std::unique_ptr<LlmProvider>> provider =
      MakeLlmProvider(config);
  ASSERT_TRUE(provider.ok()) << provider.status();
  auto sink = std::make_shared<Sink>();
  CompletionRequest request;
  request.model = model;
  request.messages.push_back({"user", "hi"});
  // The provider logs "retrying in" on its I/O thread just before it
  // schedules the retry: after that line the call waits out retry-after.
  StderrCapture log;
  (*provider)->Start(request, sink);
  ASSERT_TRUE(Eventually([&] { return log.Contains("retrying in"); }))
      << log.Text();
  ASSERT_EQ(Stats(model)["attempts"], 1);
  EXPECT_FALSE(sink->done.HasBeenNotified());
  provider->reset();
  EXPECT_TRUE(sink->done.HasBeenNotified())
      << "the call was dropped, not ended";
  EXPECT_FALSE(sink->status.ok());
}

TEST_F(CurlMultiLoopTest, FirstByteAndIdleTimeoutsEndStalledTransfers) {
  HttpRequest no_answer = Request("noheaders@loop-fb");
  no_answer.first_byte_timeout = absl::Milliseconds(300);
  auto r1 = std::make_shared<Recorder>(loop_.get());
  loop_->StartTransfer(no_answer, r1);

  HttpRequest silent = Request("stall@loop-idle");
  silent.idle_timeout = absl::Milliseconds(300);
  auto r2 = std::make_shared<Recorder>(loop_.get());
  loop_->StartTransfer(silent, r2);

  ASSERT_TRUE(r1->WaitDone());
  EXPECT_EQ(r1->outcome().curl_code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_TRUE(r1->outcome().stalled);
  EXPECT_FALSE(r1->outcome().got_response);
  ASSERT_TRUE(r2->WaitDone());
  EXPECT_EQ(r2->outcome().curl_code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_TRUE(r2->outcome().stalled);
  EXPECT_TRUE(r2->outcome().got_response);
  EXPECT_THAT(r2->body(), HasSubstr("message_start"));
}

TEST_F(CurlMultiLoopTest, TheDeadlineBoundsTheWholeTransfer) {
  HttpRequest request = Request("hold@loop-deadline");
  request.deadline = absl::Now() + absl::Milliseconds(400);
  auto r = std::make_shared<Recorder>(loop_.get());
  loop_->StartTransfer(request, r);
  ASSERT_TRUE(r->WaitDone());
  EXPECT_EQ(r->outcome().curl_code, CURLE_OPERATION_TIMEDOUT);
  EXPECT_FALSE(r->outcome().stalled);

  request.deadline = absl::Now() - absl::Seconds(1);
  auto late = std::make_shared<Recorder>(loop_.get());
  loop_->StartTransfer(request, late);
  ASSERT_TRUE(late->WaitDone());
  EXPECT_EQ(late->outcome().curl_code, CURLE_OPERATION_TIMEDOUT);
}

TEST_F(CurlMultiLoopTest, ConnectionRefusedIsATransportError) {
  HttpRequest request = Request("ok");
  request.url = "http://127.0.0.1:1/v1/messages";
  auto r = std::make_shared<Recorder>(loop_.get());
  loop_->StartTransfer(request, r);
  ASSERT_TRUE(r->WaitDone());
  EXPECT_EQ(r->outcome().curl_code, CURLE_COULDNT_CONNECT);
  EXPECT_FALSE(r->outcome().got_response);
  // The system's reason, not only curl's step.
  EXPECT_THAT(r->outcome().error, HasSubstr("(Connection refused)"));
}

TEST_F(CurlMultiLoopTest, NoDescriptorLeftIsReportedAsSuch) {
  // Every descriptor the process may have is in use, so socket() fails
  // (EMFILE). curl itself would report only that it could not connect.
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = std::min<rlim_t>(saved.rlim_cur, 1024);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> held;
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  held.push_back(null_fd);
  for (int fd = dup(null_fd); fd >= 0; fd = dup(null_fd)) held.push_back(fd);
  const int dup_errno = errno;
  HttpRequest request = Request("ok");
  auto r = std::make_shared<Recorder>(loop_.get());
  loop_->StartTransfer(request, r);
  const bool done = r->WaitDone();
  for (int fd : held) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_EQ(dup_errno, EMFILE);
  ASSERT_TRUE(done);
  EXPECT_EQ(r->outcome().curl_code, CURLE_COULDNT_CONNECT);
  EXPECT_THAT(r->outcome().error, HasSubstr("(Too many open files)"));
  EXPECT_EQ(loop_->open_sockets(), 0);
}

TEST_F(CurlMultiLoopTest, TimersAndPostsRunInOrderOnTheLoop) {
  absl::Mutex mu;
  std::vector<std::string> order;
  absl::Notification last;
  const absl::Time now = absl::Now();
  auto record = [&](std::string name) {
    return [&, name] {
      absl::MutexLock lock(&mu);
      order.push_back(loop_->InLoopThread() ? name : name + "(off thread)");
      if (order.size() == 3) last.Notify();
    };
  };
  loop_->RunAt(now + absl::Milliseconds(80), record("late"));
  loop_->RunAt(now + absl::Milliseconds(20), record("early"));
  loop_->Post(record("posted"));
  ASSERT_TRUE(last.WaitForNotificationWithTimeout(absl::Seconds(5)));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(order, ::testing::ElementsAre("posted", "early", "late"));
  EXPECT_GE(absl::Now() - now, absl::Milliseconds(80));
}

}  // namespace
}  // namespace chat::llm
