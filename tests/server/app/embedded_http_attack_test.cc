// chat-server's embedded REST/JSON port (--http_listen) under attack: the
// real binary, driven byte by byte over raw sockets, as a hostile client
// would. Each test names an attack and asserts the safe answer:
// - a caller off loopback is never the anonymous local caller, whatever
//   address headers it forges (X-Forwarded-For, Forwarded, X-Real-IP,
//   Grpc-Metadata-*); keys come only from their own headers;
// - static files: no path trick reaches a file outside the served set;
// - framing that two parsers could read differently (smuggling) is refused
//   and the connection closed; huge heads are refused; a slow head gets 408;
//   pipelined and HTTP/1.0 requests are answered in order.
// A non-loopback caller is a socket bound to one of this machine's own
// non-loopback addresses, connecting to 127.0.0.1: the packets never leave
// the host, yet the server sees a peer that is not loopback. Every wait is
// for bytes or the server's close; the receive timeout only bounds a test
// that would otherwise hang.

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
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
using ::testing::HasSubstr;
using ::testing::Not;

// Reads on a test's sockets give up after this long, so a server that
// never answers fails the test instead of hanging it.
constexpr absl::Duration kReadTimeout = absl::Seconds(30);

constexpr char kAdminKey[] = "attack-test-admin-key-0123456789abcdef";

// One of this machine's IPv4 addresses that is not loopback, if it has one.
std::optional<std::string> NonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* it = list; it != nullptr && !found.has_value();
       it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET ||
        (it->ifa_flags & IFF_LOOPBACK) != 0 || (it->ifa_flags & IFF_UP) == 0) {
      continue;
    }
    char text[INET_ADDRSTRLEN];
    const auto* address = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
    if (inet_ntop(AF_INET, &address->sin_addr, text, sizeof(text)) != nullptr &&
        (ntohl(address->sin_addr.s_addr) >> 24) != 127) {
      found = text;
    }
  }
  freeifaddrs(list);
  return found;
}

// What the server sent on one connection.
struct Received {
  std::string bytes;
  // The server closed the connection (rather than the read timing out).
  bool closed = false;
};

// Sends `request` from `source` and reads until the server closes.
Received Exchange(const std::string& source, int port,
                  const std::string& request) {
  Received received;
  const int fd = ConnectFrom(source, port, kReadTimeout);
  EXPECT_GE(fd, 0) << "cannot connect from " << source;
  if (fd < 0) return received;
  EXPECT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  char buffer[8192];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      received.closed = true;
      break;
    }
    if (n < 0) break;  // The 30-second bound: the server never closed.
    received.bytes.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return received;
}

// The status codes of the answers in `bytes`, in order.
std::vector<int> Statuses(const std::string& bytes) {
  std::vector<int> statuses;
  size_t at = 0;
  while ((at = bytes.find("HTTP/1.1 ", at)) != std::string::npos) {
    int status = 0;
    if (absl::SimpleAtoi(bytes.substr(at + 9, 3), &status)) {
      statuses.push_back(status);
    }
    at += 9;
  }
  return statuses;
}

// The body of the last answer in `bytes` (after its blank line).
std::string LastBody(const std::string& bytes) {
  const size_t at = bytes.rfind("\r\n\r\n");
  return at == std::string::npos ? "" : bytes.substr(at + 4);
}

std::string ChatRequest(const std::string& extra_headers,
                        const std::string& session = "attack") {
  const std::string body =
      absl::StrCat(R"({"message":"hi","session_id":")", session, R"("})");
  return absl::StrCat(
      "POST /chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nConnection: close\r\n",
      extra_headers, "Content-Length: ", body.size(), "\r\n\r\n", body);
}

std::string Get(const std::string& target, const std::string& method = "GET",
                const std::string& extra_headers = "") {
  return absl::StrCat(method, " ", target,
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
                      extra_headers, "\r\n");
}

class EmbeddedHttpAttackTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }

  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0", "--http_listen=127.0.0.1:0", "--provider=echo",
        absl::StrCat("--store=sqlite:", dir_, "/chat.db"), "--echo_delay=1ms"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY, args,
        std::map<std::string, std::string>{{"CHAT_ADMIN_KEY", kAdminKey}});
    server_->set_working_dir(dir_);
    ASSERT_THAT(server_->Start(), IsOk());
    const std::string log = server_->Log();
    const std::string marker = "REST/JSON on http://127.0.0.1:";
    const size_t at = log.find(marker);
    ASSERT_NE(at, std::string::npos) << log;
    const size_t start = at + marker.size();
    ASSERT_TRUE(absl::SimpleAtoi(
        log.substr(start, log.find(' ', start) - start), &port_))
        << log;
  }

  Received Send(const std::string& request,
                const std::string& source = "127.0.0.1") {
    return Exchange(source, port_, request);
  }

  // The single answer's status to `request`, which must close the
  // connection after it.
  int StatusOf(const std::string& request,
               const std::string& source = "127.0.0.1") {
    const Received received = Send(request, source);
    EXPECT_TRUE(received.closed) << received.bytes;
    const std::vector<int> statuses = Statuses(received.bytes);
    EXPECT_EQ(statuses.size(), 1u) << received.bytes;
    return statuses.empty() ? 0 : statuses.front();
  }

  std::string CreateKey(const std::string& tenant) {
    std::string output;
    absl::StatusOr<int> code = RunCommand(
        {CHAT_SERVER_BINARY, "keys", "create", "--tenant=" + tenant,
         "--name=attack", absl::StrCat("--store=sqlite:", dir_, "/chat.db")},
        &output);
    EXPECT_TRUE(code.ok() && *code == 0) << output;
    return std::string(absl::StripAsciiWhitespace(
        std::vector<std::string>(absl::StrSplit(output, '\n')).front()));
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> server_;
  int port_ = 0;
};

TEST_F(EmbeddedHttpAttackTest, ACallerOffLoopbackCannotPassForLocal) {
  const std::optional<std::string> remote = NonLoopbackAddress();
  if (!remote.has_value()) GTEST_SKIP() << "no non-loopback address";
  // No key exists: loopback callers are served without one, so the only
  // thing between a remote caller and the service is the address check.
  Start();
  EXPECT_EQ(StatusOf(ChatRequest("", "local")), 200);
  // All of 127/8 is this machine.
  EXPECT_EQ(StatusOf(ChatRequest("", "local2"), "127.0.0.2"), 200);

  EXPECT_EQ(StatusOf(ChatRequest(""), *remote), 401);
  const std::vector<std::string> forged = {
      "X-Forwarded-For: 127.0.0.1\r\n",
      "X-Forwarded-For: 127.0.0.1, 127.0.0.1\r\n",
      "X-Forwarded-For:   127.0.0.1   \r\n",
      "X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-For: 127.0.0.1\r\n",
      "X-Forwarded-For: ::1\r\n",
      "X-Forwarded-For: [::1]:80\r\n",
      "X-Forwarded-For: ::ffff:127.0.0.1\r\n",
      "X-Forwarded-For: localhost\r\n",
      "X-Forwarded-For: unknown\r\n",
      "X-Forwarded-For: ,,,\r\n",
      "X-Forwarded-For: \x7f\x01garbage\r\n",
      "Forwarded: for=127.0.0.1\r\n",
      "Forwarded: for=\"[::1]\"\r\n",
      "X-Real-IP: 127.0.0.1\r\n",
      "Grpc-Metadata-X-Forwarded-For: 127.0.0.1\r\n",
      "grpc-metadata-x-forwarded-for: 127.0.0.1\r\n",
      "Grpc-Metadata-X-Forwarded-For-Bin: MTI3LjAuMC4x\r\n",
      "Grpc-Metadata-Forwarded: for=127.0.0.1\r\n",
      "Grpc-Metadata-X-Real-Ip: 127.0.0.1\r\n",
      "Grpc-Metadata-Authorization: Bearer anything\r\n",
  };
  for (const std::string& headers : forged) {
    const Received received = Send(ChatRequest(headers), *remote);
    const std::vector<int> statuses = Statuses(received.bytes);
    // 401, or 400 where the head itself is malformed; never served.
    ASSERT_EQ(statuses.size(), 1u) << headers << received.bytes;
    EXPECT_THAT(statuses.front(), ::testing::AnyOf(401, 400))
        << headers << received.bytes;
  }
  // The server judged the remote address, not a forged one.
  EXPECT_THAT(server_->Log(), Not(HasSubstr("session=attack ")));
  // Admin routes answer no one without the admin key, local or not.
  EXPECT_EQ(StatusOf(Get("/v1/admin/keys"), *remote), 401);
  EXPECT_EQ(StatusOf(Get("/v1/admin/keys")), 401);
}

TEST_F(EmbeddedHttpAttackTest, KeysComeOnlyFromTheirOwnHeaders) {
  const std::string key = CreateKey("acme");
  Start();
  // A key (or the admin key) smuggled in as Grpc-Metadata- is dropped: the
  // gateway takes credentials from Authorization and X-Api-Key only.
  EXPECT_EQ(StatusOf(ChatRequest(absl::StrCat(
                "Grpc-Metadata-Authorization: Bearer ", key, "\r\n"))),
            401);
  EXPECT_EQ(StatusOf(ChatRequest(
                absl::StrCat("Grpc-Metadata-X-Api-Key: ", key, "\r\n"))),
            401);
  EXPECT_EQ(StatusOf(Get("/v1/admin/keys", "GET",
                         absl::StrCat("Grpc-Metadata-Authorization: Bearer ",
                                      kAdminKey, "\r\n"))),
            401);
  EXPECT_EQ(
      StatusOf(Get("/v1/admin/keys", "GET",
                   absl::StrCat("Authorization: Bearer ", kAdminKey, "\r\n"))),
      200);
  // A tenant cannot be chosen by a header: the key's tenant is the caller's.
  EXPECT_EQ(
      StatusOf(ChatRequest(absl::StrCat("Authorization: Bearer ", key,
                                        "\r\nGrpc-Metadata-Tenant: evil\r\n"
                                        "Grpc-Metadata-X-Tenant: evil\r\n"
                                        "X-Tenant: evil\r\n"),
                           "tenanted")),
      200);
  const std::string log = server_->Log();
  EXPECT_THAT(log, ::testing::ContainsRegex(
                       "tenant=acme key_id=[0-9a-f]+ session=tenanted"));
  EXPECT_THAT(log, Not(HasSubstr("tenant=evil")));
  // A second Authorization header does not replace the first.
  EXPECT_EQ(StatusOf(ChatRequest(absl::StrCat(
                "Authorization: Bearer chatd_000000000000_wrong\r\n"
                "Authorization: Bearer ",
                key, "\r\n"))),
            401);
  EXPECT_THAT(server_->Log(), Not(HasSubstr(key.substr(19))));
  EXPECT_THAT(server_->Log(), Not(HasSubstr(kAdminKey)));
}

TEST_F(EmbeddedHttpAttackTest, PathTricksReachNoFileOutsideTheServedSet) {
  const std::filesystem::path root = std::filesystem::path(dir_) / "root";
  const std::filesystem::path outside = std::filesystem::path(dir_) / "out";
  std::filesystem::create_directories(root / "web/sub");
  std::filesystem::create_directories(root / "vendor");
  std::filesystem::create_directories(root / "web/.git");
  std::filesystem::create_directories(outside);
  std::ofstream(root / "web/index.html") << "<p>index</p>";
  std::ofstream(root / "web/app.js") << "app();";
  std::ofstream(root / "web/sub/s.js") << "sub();";
  std::ofstream(root / "web/.git/config.js") << "SECRET-DOT";
  std::ofstream(root / "vendor/lib.js") << "lib();";
  std::ofstream(root / "secret.html") << "SECRET-ROOT";
  std::ofstream(outside / "secret.js") << "SECRET-OUTSIDE";
  std::filesystem::create_symlink(outside / "secret.js", root / "web/leak.js");
  std::filesystem::create_symlink(outside, root / "web/outdir");
  Start({"--http_web_root=" + root.string()});

  EXPECT_EQ(StatusOf(Get("/web/app.js")), 200);
  EXPECT_EQ(StatusOf(Get("/web/app.js?v=1")), 200);
  for (const char* target : {
           "/web/leak.js",
           "/web/outdir/secret.js",
           "/web/../secret.html",
           "/web/%2e%2e/secret.html",
           "/web/%2E%2E/secret.html",
           "/web/..%2fsecret.html",
           "/web/sub/../../secret.html",
           "/secret.html",
           "//web/app.js",
           "/web//app.js",
           "/web/./app.js",
           "/web%2fapp.js",
           "/web%2Fapp.js",
           "/web/app.js%00",
           "/web/app.js/",
           "/WEB/app.js",
           "/web/.git/config.js",
           "/web/sub/",
           "/vendor/",
           "/vendor",
           "/web/outdir/",
       }) {
    const Received received = Send(Get(target));
    const std::vector<int> statuses = Statuses(received.bytes);
    ASSERT_EQ(statuses.size(), 1u) << target;
    EXPECT_THAT(statuses.front(), ::testing::AnyOf(400, 404)) << target << "\n"
                                                              << received.bytes;
    EXPECT_THAT(received.bytes, Not(HasSubstr("SECRET"))) << target;
  }
  // A very long path is refused before any lookup, and nothing breaks.
  EXPECT_EQ(StatusOf(Get("/web/" + std::string(20000, 'a'))), 431);
  EXPECT_EQ(StatusOf(Get("/web/" + std::string(8000, 'a'))), 404);

  // HEAD is GET without the body; OPTIONS lists GET; others are 405.
  const Received head = Send(Get("/web/app.js", "HEAD"));
  EXPECT_EQ(Statuses(head.bytes), std::vector<int>{200});
  EXPECT_THAT(head.bytes, HasSubstr("Content-Length: 6\r\n"));
  EXPECT_EQ(LastBody(head.bytes), "");
  const Received options = Send(Get("/web/app.js", "OPTIONS"));
  EXPECT_EQ(Statuses(options.bytes), std::vector<int>{204});
  EXPECT_THAT(options.bytes, HasSubstr("Allow: GET, OPTIONS\r\n"));
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH"}) {
    EXPECT_EQ(
        StatusOf(
            Get("/web/app.js", method,
                method == std::string("POST") ? "Content-Length: 0\r\n" : "")),
        405)
        << method;
  }
  EXPECT_EQ(StatusOf(Get("/web/leak.js", "OPTIONS")), 404);
}

TEST_F(EmbeddedHttpAttackTest, FramingTwoParsersCouldReadDifferentlyIsRefused) {
  Start();
  // After each ambiguous head comes a request that must never be answered:
  // were it read as one, the framing was taken two ways (smuggling).
  const std::string smuggled =
      "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const std::vector<std::string> heads = {
      // Content-Length and Transfer-Encoding, either order.
      "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Content-Length: 5\r\n\r\n0\r\n\r\n",
      // Two Content-Lengths that disagree, and a list of them.
      "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
      "Content-Length: 5\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 5\r\n\r\n",
      // Content-Length that is not a plain decimal.
      "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 99999999999999999999999\r\n\r\n",
      // Transfer codings other than a final chunked.
      "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n"
      "\r\n0\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"
      "0\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"
      "0\r\n\r\n",
      // HTTP/1.0 has no transfer codings.
      "POST /chat HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      // Chunks that do not parse.
      "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "fffffffffffffffffffff\r\n",
      "POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\nabc\n0\n\n",
      // Line ends and hosts a front proxy might read otherwise.
      "GET /healthz HTTP/1.1\nHost: x\n\n",
      "GET /healthz HTTP/1.1\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n",
  };
  for (const std::string& head : heads) {
    const Received received = Send(head + smuggled);
    EXPECT_TRUE(received.closed) << head;
    EXPECT_EQ(Statuses(received.bytes), std::vector<int>{400})
        << head << "\n"
        << received.bytes;
    EXPECT_THAT(received.bytes, Not(HasSubstr(R"({"status":"ok"})"))) << head;
  }
}

TEST_F(EmbeddedHttpAttackTest, OversizedHeadsAreRefusedAndClosed) {
  Start();
  EXPECT_EQ(StatusOf(absl::StrCat("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ",
                                  std::string(20000, 'a'), "\r\n\r\n")),
            431);
  std::string many = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 3000; ++i) absl::StrAppend(&many, "X-", i, ": a\r\n");
  EXPECT_EQ(StatusOf(many + "\r\n"), 431);
  // So many Grpc-Metadata- headers that the head is over the limit: refused
  // before any of them becomes gRPC metadata.
  std::string metadata = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 2000; ++i) {
    absl::StrAppend(&metadata, "Grpc-Metadata-K", i, ": v\r\n");
  }
  EXPECT_EQ(StatusOf(metadata + "\r\n"), 431);
  // A body over the limit, announced: refused before it is read.
  EXPECT_EQ(
      StatusOf("POST /chat HTTP/1.1\r\nHost: x\r\n"
               "Expect: 100-continue\r\nContent-Length: 99999999\r\n\r\n"),
      413);
}

TEST_F(EmbeddedHttpAttackTest, PipelinedAndHttp10RequestsAreAnsweredInOrder) {
  Start();
  const std::string healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const Received pipelined =
      Send(healthz + "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n" + healthz +
           "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(pipelined.closed);
  EXPECT_EQ(Statuses(pipelined.bytes), (std::vector<int>{200, 404, 200, 200}));

  // HTTP/1.0: no Host needed, one answer, then the server closes.
  const Received old = Send("GET /healthz HTTP/1.0\r\n\r\n" + healthz);
  EXPECT_TRUE(old.closed);
  EXPECT_EQ(Statuses(old.bytes), std::vector<int>{200});
  EXPECT_THAT(old.bytes, HasSubstr("Connection: close\r\n"));
  // HTTP/0.9 is not spoken.
  EXPECT_EQ(StatusOf("GET /healthz\r\n\r\n"), 400);
}

TEST_F(EmbeddedHttpAttackTest, ASlowHeadGets408AtTheHeaderTimeout) {
  // chat-gateway's --header_timeout default (10s) holds on the embedded
  // port: a client that trickles a head, a byte at a time (slowloris), is
  // answered 408 and closed; it cannot hold the connection by sending.
  Start();
  const int fd = ConnectFrom("127.0.0.1", port_, kReadTimeout);
  ASSERT_GE(fd, 0);
  const absl::Time start = absl::Now();
  const std::string part = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
  ASSERT_EQ(send(fd, part.data(), part.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(part.size()));
  absl::Notification answered;
  // The attacker's pace, not a wait for the server: at most 30s of bytes.
  std::thread trickle([&] {
    for (int i = 0; i < 150; ++i) {
      if (answered.WaitForNotificationWithTimeout(absl::Milliseconds(200))) {
        return;
      }
      if (send(fd, "a", 1, MSG_NOSIGNAL) != 1) return;
    }
  });
  std::string received;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
  }
  const absl::Duration took = absl::Now() - start;
  answered.Notify();
  trickle.join();
  close(fd);
  EXPECT_EQ(Statuses(received), std::vector<int>{408}) << received;
  EXPECT_GE(took, absl::Seconds(9));
  EXPECT_LT(took, absl::Seconds(25));
}

}  // namespace
}  // namespace chat
