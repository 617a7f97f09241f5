// HttpServer on a loopback port with scripted handlers, driven through raw
// sockets so the exact bytes on the wire are visible: keep-alive and
// pipelining order, chunked framing of streams, the client-gone callback,
// and the errors the server answers by itself.

#include "gateway/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpHandler handler, HttpServerOptions options = {}) {
    server_ = std::make_unique<HttpServer>(options, std::move(handler));
    absl::StatusOr<int> port = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
  }

  int Connect() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    return fd;
  }

  static void Send(int fd, const std::string& data) {
    ASSERT_EQ(write(fd, data.data(), data.size()),
              static_cast<ssize_t>(data.size()));
  }

  // Reads until `done(received)` holds, the peer closes, or 10 s pass.
  template <typename Done>
  static std::string ReadUntil(int fd, Done done) {
    std::string received;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!done(received) && absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      received.append(buf, static_cast<size_t>(n));
    }
    return received;
  }

  // Reads until the peer closes (`*closed` set) or 10 s pass.
  static std::string ReadUntilClosed(int fd, bool* closed) {
    *closed = false;
    std::string received;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) {
        *closed = n == 0;
        break;
      }
      received.append(buf, static_cast<size_t>(n));
    }
    return received;
  }

  // Starts a server whose handler records each target it is called for and
  // answers 200 with the target as the body.
  void StartRecording() {
    Start([this](std::shared_ptr<HttpExchange> e) {
      std::string target(e->request().target());
      {
        absl::MutexLock lock(&mu_);
        targets_.push_back(target);
      }
      e->Respond(200, {{"Content-Type", "text/plain"}}, target);
    });
  }

  std::vector<std::string> Targets() {
    absl::MutexLock lock(&mu_);
    return targets_;
  }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  absl::Mutex mu_;
  std::vector<std::string> targets_ ABSL_GUARDED_BY(mu_);
};

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  Start([](std::shared_ptr<HttpExchange> e) {
    std::string target(e->request().target());
    // The first answer comes later than the second request arrives.
    if (target == "/slow") absl::SleepFor(absl::Milliseconds(50));
    e->Respond(200, {{"Content-Type", "text/plain"}}, target);
  });
  int fd = Connect();
  Send(fd,
       "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: "
       "x\r\n\r\n");
  std::string got = ReadUntil(
      fd, [](const std::string& r) { return absl::EndsWith(r, "/fast"); });
  close(fd);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(got, HasSubstr("Connection: keep-alive"));
  EXPECT_LT(got.find("/slow"), got.find("/fast"));
  EXPECT_THAT(got, HasSubstr("Content-Length: 5\r\n"));
}

TEST_F(HttpServerTest, StreamsAreChunkedAndEmptyWritesSendNothing) {
  Start([](std::shared_ptr<HttpExchange> e) {
    e->StartStream(200, {{"Content-Type", "text/plain"}});
    e->Write("hello", nullptr);
    e->Write("", nullptr);  // Would end the body if framed as a chunk.
    e->Write("world!", nullptr);
    e->FinishStream();
  });
  int fd = Connect();
  Send(fd, "POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  std::string got = ReadUntil(
      fd, [](const std::string& r) { return absl::EndsWith(r, "0\r\n\r\n"); });
  close(fd);
  EXPECT_THAT(got, HasSubstr("Transfer-Encoding: chunked\r\n"));
  EXPECT_THAT(got, HasSubstr("\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"));
}

TEST_F(HttpServerTest, Http10StreamIsRawAndClosed) {
  Start([](std::shared_ptr<HttpExchange> e) {
    e->StartStream(200, {});
    e->Write("abc", nullptr);
    e->FinishStream();
  });
  int fd = Connect();
  Send(fd, "GET / HTTP/1.0\r\n\r\n");
  std::string got = ReadUntil(fd, [](const std::string&) { return false; });
  close(fd);
  EXPECT_THAT(got, HasSubstr("Connection: close\r\n\r\nabc"));
  EXPECT_FALSE(absl::StrContains(got, "chunked"));
}

TEST_F(HttpServerTest, ClientGoneIsReportedAndWritesFail) {
  absl::Notification gone;
  absl::Mutex mu;
  std::shared_ptr<HttpExchange> held;
  absl::Notification handled;
  Start([&](std::shared_ptr<HttpExchange> e) {
    e->OnClientGone([&gone] { gone.Notify(); });
    absl::MutexLock lock(&mu);
    held = e;  // Never answered: the client leaves first.
    handled.Notify();
  });
  int fd = Connect();
  Send(fd, "GET /wait HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(handled.WaitForNotificationWithTimeout(absl::Seconds(10)));
  close(fd);
  ASSERT_TRUE(gone.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::Notification wrote;
  bool ok = true;
  {
    absl::MutexLock lock(&mu);
    held->StartStream(200, {});
    held->Write("late", [&](bool result) {
      ok = result;
      wrote.Notify();
    });
  }
  ASSERT_TRUE(wrote.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(ok);
  absl::MutexLock lock(&mu);
  held.reset();
}

TEST_F(HttpServerTest, BodyOverTheLimitIs413BeforeReadingIt) {
  HttpServerOptions options;
  options.max_body_bytes = 10;
  bool called = false;
  Start(
      [&](std::shared_ptr<HttpExchange> e) {
        called = true;
        e->Respond(200, {}, "");
      },
      options);
  int fd = Connect();
  Send(fd, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
  std::string got = ReadUntil(fd, [](const std::string&) { return false; });
  close(fd);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 413 Payload Too Large\r\n"));
  EXPECT_THAT(got, HasSubstr("Connection: close"));
  EXPECT_THAT(got, HasSubstr(R"("code":8)"));
  EXPECT_FALSE(called);
}

TEST_F(HttpServerTest, ChunkedBodyOverTheLimitIs413) {
  HttpServerOptions options;
  options.max_body_bytes = 10;
  Start([](std::shared_ptr<HttpExchange> e) { e->Respond(200, {}, ""); },
        options);
  int fd = Connect();
  Send(fd,
       "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
       "14\r\n01234567890123456789\r\n0\r\n\r\n");
  std::string got = ReadUntil(fd, [](const std::string&) { return false; });
  close(fd);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 413"));
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  Start([](std::shared_ptr<HttpExchange> e) { e->Respond(200, {}, ""); });
  int fd = Connect();
  Send(fd, "NOT HTTP AT ALL\r\n\r\n");
  std::string got = ReadUntil(fd, [](const std::string&) { return false; });
  close(fd);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
}

TEST_F(HttpServerTest, WaitIdleSeesRunningRequests) {
  std::shared_ptr<HttpExchange> held;
  absl::Notification handled;
  Start([&](std::shared_ptr<HttpExchange> e) {
    held = e;
    handled.Notify();
  });
  EXPECT_TRUE(server_->WaitIdle(absl::ZeroDuration()));
  int fd = Connect();
  Send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(handled.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(server_->WaitIdle(absl::Milliseconds(20)));
  held->Respond(204, {}, "");
  EXPECT_TRUE(server_->WaitIdle(absl::Seconds(10)));
  close(fd);
}

// A handler that drops its exchange on another thread just as the server
// stops (a gRPC callback finishing as the gateway shuts down): Stop waits
// for it, so the connection closes while the I/O services still exist.
// Without the wait the connection outlived them, which the sanitized build
// (ASan, UBSan) reports as a use after free; whether the answer got out
// before the I/O threads stopped is not promised.
TEST_F(HttpServerTest, StopWaitsForTheExchangesHandlersHold) {
  std::shared_ptr<HttpExchange> held;
  absl::Notification handled;
  absl::Notification stopping;
  Start([&](std::shared_ptr<HttpExchange> e) {
    held = std::move(e);
    handled.Notify();
  });
  int fd = Connect();
  Send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(handled.WaitForNotificationWithTimeout(absl::Seconds(10)));
  std::thread handler([&] {
    stopping.WaitForNotification();
    held->Respond(204, {}, "");
    held.reset();
  });
  stopping.Notify();
  server_.reset();
  handler.join();
  close(fd);
}

// A request whose body framing a proxy in front could read differently
// (RFC 9112 section 6.3), followed in the same write by a second request
// hidden where that proxy would see body bytes. The server must answer 400
// with its usual JSON error, close, and never hand anything to the handler.
struct SmugglingCase {
  std::string name;
  std::string head;  // Request line and headers, without the blank line.
  std::string body;
};

void PrintTo(const SmugglingCase& c, std::ostream* os) { *os << c.name; }

class HttpServerSmugglingTest
    : public HttpServerTest,
      public ::testing::WithParamInterface<SmugglingCase> {};

TEST_P(HttpServerSmugglingTest, IsAnswered400AndClosedWithoutHandling) {
  StartRecording();
  int fd = Connect();
  Send(fd, GetParam().head + "\r\n\r\n" + GetParam().body +
               "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
  bool closed = false;
  std::string got = ReadUntilClosed(fd, &closed);
  close(fd);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(got, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(got, HasSubstr("Content-Type: application/json\r\n"));
  EXPECT_THAT(got, HasSubstr(R"({"code":3,"message":")"));
  EXPECT_THAT(got, HasSubstr(R"(","details":[]})"));
  EXPECT_THAT(got, Not(HasSubstr("/smuggled")));
  EXPECT_TRUE(closed) << "the server kept the connection open";
  // The server closed, so every request it read was handled already.
  EXPECT_THAT(Targets(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Framing, HttpServerSmugglingTest,
    ::testing::Values(
        SmugglingCase{"Gzip",
                      "POST /chat HTTP/1.1\r\nHost: x\r\n"
                      "Transfer-Encoding: gzip",
                      ""},
        SmugglingCase{"ChunkedThenIdentity",
                      "POST /chat HTTP/1.1\r\nHost: x\r\n"
                      "Transfer-Encoding: chunked, identity",
                      "0\r\n\r\n"},
        SmugglingCase{"ChunkedLineThenGzipLine",
                      "POST /chat HTTP/1.1\r\nHost: x\r\n"
                      "Transfer-Encoding: chunked\r\n"
                      "Transfer-Encoding: gzip",
                      "0\r\n\r\n"},
        SmugglingCase{"GzipAndContentLength",
                      "POST /chat HTTP/1.1\r\nHost: x\r\n"
                      "Transfer-Encoding: gzip\r\nContent-Length: 5",
                      "0\r\n\r\n"},
        SmugglingCase{"ContentLengthAndChunked",
                      "POST /chat HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: 5\r\nTransfer-Encoding: chunked",
                      "0\r\n\r\n"},
        SmugglingCase{"ChunkedAndContentLength",
                      "POST /chat HTTP/1.1\r\nHost: x\r\n"
                      "Transfer-Encoding: chunked\r\nContent-Length: 5",
                      "0\r\n\r\n"},
        SmugglingCase{"Http10Chunked",
                      "POST /chat HTTP/1.0\r\nConnection: keep-alive\r\n"
                      "Transfer-Encoding: chunked",
                      "0\r\n\r\n"}),
    [](const ::testing::TestParamInfo<SmugglingCase>& info) {
      return info.param.name;
    });

TEST_F(HttpServerTest, ChunkedBodyIsRead) {
  std::string body;
  Start([&body](std::shared_ptr<HttpExchange> e) {
    body = e->request().body();  // Read after the answer arrives.
    e->Respond(200, {}, "ok");
  });
  int fd = Connect();
  Send(fd,
       "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
       "\r\n5\r\nhello\r\n0\r\n\r\n");
  std::string got = ReadUntil(
      fd, [](const std::string& r) { return absl::EndsWith(r, "ok"); });
  close(fd);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(body, "hello");
}

// RFC 9112 section 3.2: an HTTP/1.1 request has exactly one Host header.
struct HostCase {
  std::string name;
  std::string request;
};

void PrintTo(const HostCase& c, std::ostream* os) { *os << c.name; }

class HttpServerBadHostTest : public HttpServerTest,
                              public ::testing::WithParamInterface<HostCase> {};

TEST_P(HttpServerBadHostTest, IsAnswered400AndClosed) {
  StartRecording();
  int fd = Connect();
  Send(fd, GetParam().request);
  bool closed = false;
  std::string got = ReadUntilClosed(fd, &closed);
  close(fd);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(got, HasSubstr("Connection: close\r\n"));
  EXPECT_THAT(got, HasSubstr(R"({"code":3,"message":")"));
  EXPECT_TRUE(closed) << "the server kept the connection open";
  EXPECT_THAT(Targets(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Host, HttpServerBadHostTest,
    ::testing::Values(
        HostCase{"Missing", "GET /v1/status HTTP/1.1\r\n\r\n"},
        HostCase{"Twice",
                 "GET /v1/status HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"},
        HostCase{"MissingWithAbsoluteForm",
                 "GET http://a/v1/status HTTP/1.1\r\n\r\n"}),
    [](const ::testing::TestParamInfo<HostCase>& info) {
      return info.param.name;
    });

TEST_F(HttpServerTest, Http10WithoutHostIsHandled) {
  StartRecording();
  int fd = Connect();
  Send(fd, "GET /v1/status HTTP/1.0\r\n\r\n");
  std::string got = ReadUntil(fd, [](const std::string&) { return false; });
  close(fd);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(Targets(), ElementsAre("/v1/status"));
}

// RFC 9112 section 3.2.2: the handler sees an absolute-form target as the
// origin-form it stands for, and the Host header as sent.
TEST_F(HttpServerTest, AbsoluteFormTargetIsHandledAsOriginForm) {
  std::string host;
  Start([&](std::shared_ptr<HttpExchange> e) {
    std::string target(e->request().target());
    if (host.empty()) host = std::string(e->request()["Host"]);
    e->Respond(200, {}, "<" + target + ">");
  });
  const std::string authority = "127.0.0.1:" + std::to_string(port_);
  int fd = Connect();
  Send(fd, "GET http://" + authority +
               "/v1/status HTTP/1.1\r\nHost: elsewhere\r\n\r\n"
               "GET HTTP://" +
               authority +
               "/v1/x?a=1&b=http://y/ HTTP/1.1\r\nHost: " + authority +
               "\r\n\r\n"
               "GET http://" +
               authority + "?q=2 HTTP/1.1\r\nHost: " + authority +
               "\r\n\r\n"
               "GET http://" +
               authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n");
  std::string got = ReadUntil(
      fd, [](const std::string& r) { return absl::EndsWith(r, "</>"); });
  close(fd);
  EXPECT_THAT(got, HasSubstr("</v1/status>"));
  EXPECT_THAT(got, HasSubstr("</v1/x?a=1&b=http://y/>"));
  EXPECT_THAT(got, HasSubstr("</?q=2>"));
  EXPECT_THAT(got, HasSubstr("</>"));
  EXPECT_EQ(host, "elsewhere");
}

}  // namespace
}  // namespace chat::gateway
