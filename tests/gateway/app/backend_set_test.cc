// BackendSet, the gateway's choice among the channels of a --backend that
// lists several names. Strategy: first in process, two gRPC servers whose
// health (grpc.health.v1, which the channels watch) the test sets, so
// picking round robin, skipping a NOT_SERVING backend, and the calls that
// wait while none is READY (started when one comes back, at their deadline,
// when abandoned or released) are checked against states the test chose.
// Then through the real binaries on loopback: two chat-server processes
// with a store each, behind `--backend=localhost:P1,127.0.0.1:P2` (a name and
// an IP); each replica's GetStats says which calls it served. HTTP goes
// through curl; those tests skip without it.
//
// Following a name whose address changes (a replaced container) needs a
// DNS server the test controls, without root: the gateway's targets name
// one ("dns://127.0.0.1:PORT/replica-a.test:P", gRPC's c-ares resolver
// then asks it), a few lines of UDP in this file that answer A queries
// from a table the test changes. 127.0.0.2 is loopback too, so the
// "replaced" replica listens there on the same port.

#include "gateway/app/backend_set.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gateway/app/backend_channel.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "gtest/gtest.h"
#include "tests/testing/curl.h"
#include "tests/testing/eventually.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/server_process.h"

namespace chat::gateway {
namespace {

using ::chat::testing::Curl;
using ::chat::testing::Eventually;
using ::chat::testing::HaveCurl;
using ::chat::testing::HttpResult;
using ::chat::testing::kCurlBinary;
using ::chat::testing::MakeTempDir;
using ::chat::testing::SampleValue;
using ::chat::testing::ServerProcess;
using ::testing::Optional;

constexpr char kHealthService[] = "chat.v1.ChatService";

// A backend that only answers health checks: which channel a call gets is
// all these tests look at.
class HealthOnlyBackend {
 public:
  HealthOnlyBackend() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    SetServing(true);
  }
  ~HealthOnlyBackend() { server_->Shutdown(); }

  void SetServing(bool serving) {
    server_->GetHealthCheckService()->SetServingStatus(kHealthService, serving);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  chat::v1::ChatService::Service service_;  // Every method UNIMPLEMENTED.
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

bool IsReady(const std::shared_ptr<grpc::Channel>& channel) {
  return channel->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY;
}

// What a waiting call's start saw.
struct Started {
  absl::Notification done;
  std::shared_ptr<grpc::Channel> channel;
};

class BackendSetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (HealthOnlyBackend* b : {&a_, &b_}) {
      absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
          MakeBackendChannel(b->address());
      ASSERT_TRUE(channel.ok()) << channel.status();
      channels_.push_back(*channel);
    }
    set_ = std::make_unique<BackendSet>(channels_);
    // Both connected and SERVING first: a NOT_SERVING set while a channel
    // still connects could be seen after its first SERVING (READY for a
    // moment, later than a test's check that it is not).
    ASSERT_TRUE(BecomesReady(0, true));
    ASSERT_TRUE(BecomesReady(1, true));
  }

  // Waits until channel `i` is READY (`ready`) or not.
  bool BecomesReady(size_t i, bool ready) {
    return Eventually([&] { return IsReady(channels_[i]) == ready; });
  }

  // StartWhenReady with a deadline `wait` away; `out` says what happened.
  void StartWaiting(
      Started* out, absl::Duration wait = absl::Seconds(30),
      BackendSet::Abandoned abandoned = [] { return false; }) {
    set_->StartWhenReady(absl::Now() + wait, std::move(abandoned),
                         [out](std::shared_ptr<grpc::Channel> channel) {
                           out->channel = std::move(channel);
                           out->done.Notify();
                         });
  }

  HealthOnlyBackend a_;
  HealthOnlyBackend b_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::unique_ptr<BackendSet> set_;
};

TEST_F(BackendSetTest, PicksTheReadyChannelsInTurn) {
  std::map<grpc::Channel*, int> picks;
  for (int i = 0; i < 10; ++i) ++picks[set_->Pick().get()];
  EXPECT_EQ(picks[channels_[0].get()], 5);
  EXPECT_EQ(picks[channels_[1].get()], 5);
  EXPECT_TRUE(set_->AnyReady());
}

TEST_F(BackendSetTest, ANotServingBackendGetsNoCalls) {
  a_.SetServing(false);
  ASSERT_TRUE(BecomesReady(0, false));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(set_->Pick(), channels_[1]);
    Started started;
    StartWaiting(&started);
    // A READY channel exists: the call starts at once, on it.
    ASSERT_TRUE(started.done.HasBeenNotified());
    EXPECT_EQ(started.channel, channels_[1]);
  }
  EXPECT_TRUE(set_->AnyReady());
}

TEST_F(BackendSetTest, WaitingCallsStartOnTheFirstBackendBack) {
  a_.SetServing(false);
  b_.SetServing(false);
  ASSERT_TRUE(BecomesReady(0, false));
  ASSERT_TRUE(BecomesReady(1, false));
  EXPECT_FALSE(set_->AnyReady());
  // Each of these would be bound to a channel in turn if the set picked at
  // once; they must all end up on the one that comes back.
  Started started[4];
  for (Started& s : started) StartWaiting(&s);
  for (Started& s : started) EXPECT_FALSE(s.done.HasBeenNotified());
  b_.SetServing(true);
  for (Started& s : started) {
    ASSERT_TRUE(s.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_EQ(s.channel, channels_[1]);
  }
}

TEST_F(BackendSetTest, AWaitingCallStartsAtItsDeadlineOrWhenAbandoned) {
  a_.SetServing(false);
  b_.SetServing(false);
  ASSERT_TRUE(BecomesReady(0, false));
  ASSERT_TRUE(BecomesReady(1, false));
  Started late;
  StartWaiting(&late, absl::Milliseconds(300));
  // The deadline passes while nothing is READY: the call starts (and gRPC
  // fails it DEADLINE_EXCEEDED) instead of waiting on.
  EXPECT_TRUE(late.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_NE(late.channel, nullptr);

  std::atomic<bool> gone{false};
  Started abandoned;
  StartWaiting(&abandoned, absl::Seconds(30), [&] { return gone.load(); });
  EXPECT_FALSE(abandoned.done.HasBeenNotified());
  gone = true;
  EXPECT_TRUE(abandoned.done.WaitForNotificationWithTimeout(absl::Seconds(10)));

  Started released;
  StartWaiting(&released);
  EXPECT_FALSE(released.done.HasBeenNotified());
  set_->ReleaseWaiting();
  EXPECT_TRUE(released.done.HasBeenNotified());

  // The set's end starts what still waits.
  Started at_end;
  StartWaiting(&at_end);
  set_.reset();
  EXPECT_TRUE(at_end.done.HasBeenNotified());
}

TEST(BackendSetOneChannelTest, CallsGoToItAtOnce) {
  // Nobody listens on port 1: the channel is never READY, and the call
  // waits inside gRPC (wait_for_ready), as it did before there were sets.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeBackendChannel("127.0.0.1:1");
  ASSERT_TRUE(channel.ok());
  BackendSet set(*channel);
  EXPECT_EQ(set.Pick(), *channel);
  EXPECT_FALSE(set.AnyReady());
  bool started = false;
  set.StartWhenReady(
      absl::Now() + absl::Seconds(30), nullptr,
      [&](std::shared_ptr<grpc::Channel> c) { started = c == *channel; });
  EXPECT_TRUE(started);
}

TEST(BackendSetRemakeTest, AChannelDownIsRemadeAndWaitingCallsUseTheNewOne) {
  // The first channel goes nowhere (nobody listens on port 1); the one
  // remade from it reaches a backend: as a name that pointed at a server
  // gone and now names a new one.
  HealthOnlyBackend backend;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> dead =
      MakeBackendChannel("127.0.0.1:1");
  ASSERT_TRUE(dead.ok());
  absl::StatusOr<std::shared_ptr<grpc::Channel>> live =
      MakeBackendChannel(backend.address());
  ASSERT_TRUE(live.ok());
  std::atomic<int> remade{0};
  BackendChannel b{"dns:///gone.test:1", *dead, [&, live = *live] {
                     ++remade;
                     return live;
                   }};
  BackendSet set(std::vector<BackendChannel>{b});
  // With one channel that can be remade a call waits in the set, not on the
  // channel that is about to be replaced.
  Started started;
  set.StartWhenReady(absl::Now() + absl::Seconds(30), nullptr,
                     [&](std::shared_ptr<grpc::Channel> channel) {
                       started.channel = std::move(channel);
                       started.done.Notify();
                     });
  ASSERT_TRUE(started.done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(started.channel, *live);
  EXPECT_GE(remade.load(), 1);
  EXPECT_EQ(set.Pick(), *live);
  EXPECT_TRUE(set.AnyReady());
}

// Through the real binaries.

class GatewayOverTwoReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCurl()) GTEST_SKIP() << "no " << kCurlBinary;
    dir_ = MakeTempDir();
    for (int r = 0; r < 2; ++r) {
      replicas_[r] = MakeReplica(r, "127.0.0.1:0");
      ASSERT_TRUE(replicas_[r]->Start().ok()) << replicas_[r]->Log();
      ports_[r] = replicas_[r]->port();
    }
    // The first by name, the second by IP: a channel each.
    gateway_ = std::make_unique<ServerProcess>(
        CHAT_GATEWAY_BINARY,
        std::vector<std::string>{"--listen=127.0.0.1:0",
                                 absl::StrCat("--backend=localhost:", ports_[0],
                                              ",127.0.0.1:", ports_[1])});
    ASSERT_TRUE(gateway_->Start().ok()) << gateway_->Log();
    base_ = absl::StrCat("http://127.0.0.1:", gateway_->port());
  }

  // Replica `r` (0 or 1) on `listen`, with a store of its own, so that its
  // GetStats counts the sessions it served.
  std::unique_ptr<ServerProcess> MakeReplica(int r, const std::string& listen) {
    return std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY,
        std::vector<std::string>{
            absl::StrCat("--listen=", listen),
            absl::StrCat("--store=sqlite:", dir_, "/replica", r, ".db"),
            "--provider=echo", "--echo_delay=1ms", "--shutdown_grace=2s"});
  }

  // Sessions replica `r` has stored (each call here makes a new one); -1 if
  // it does not answer.
  int64_t SessionsOn(int r) {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", ports_[r]),
                                       grpc::InsecureChannelCredentials());
    chat::v1::ChatService::Stub stub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    chat::v1::GetStatsRequest request;
    chat::v1::GetStatsResponse response;
    if (!stub.GetStats(&context, request, &response).ok()) return -1;
    return response.total_sessions();
  }

  HttpResult PostChat(const std::string& session,
                      absl::string_view timeout = "20S") {
    return Curl(
        {"--max-time", "60", "-X", "POST", base_ + "/v1/chat", "-H",
         "Content-Type: application/json", "-H",
         absl::StrCat("grpc-timeout: ", timeout), "-d",
         absl::StrCat(R"({"session_id":")", session, R"(","message":"hi"})")});
  }

  bool ReadyzBecomes(int status) {
    return Eventually(
        [&] { return Curl({base_ + "/readyz"}).status == status; },
        absl::Seconds(20), absl::Milliseconds(50));
  }

  std::string dir_;
  std::unique_ptr<ServerProcess> replicas_[2];
  int ports_[2] = {0, 0};
  std::unique_ptr<ServerProcess> gateway_;
  std::string base_;
};

TEST_F(GatewayOverTwoReplicasTest, CallsReachBothAndOneLeftServesThemAll) {
  // Both channels connect on their own time: call until each replica has
  // served one (round robin over the READY ones makes that the second or
  // third call once both are up).
  int calls = 0;
  EXPECT_TRUE(Eventually(
      [&] {
        HttpResult r = PostChat(absl::StrCat("spread-", calls++));
        EXPECT_EQ(r.status, 200) << r.body;
        return SessionsOn(0) > 0 && SessionsOn(1) > 0;
      },
      absl::Seconds(20)))
      << gateway_->Log();
  EXPECT_EQ(SessionsOn(0) + SessionsOn(1), calls);
  // Once both are READY, calls alternate.
  const int64_t before[2] = {SessionsOn(0), SessionsOn(1)};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(PostChat(absl::StrCat("even-", i)).status, 200);
  }
  EXPECT_EQ(SessionsOn(0) - before[0], 3);
  EXPECT_EQ(SessionsOn(1) - before[1], 3);

  // The replica reached by name dies without a word.
  ASSERT_TRUE(replicas_[0]->Stop(SIGKILL).ok());
  const int64_t served_before = SessionsOn(1);
  constexpr int kAfter = 10;
  for (int i = 0; i < kAfter; ++i) {
    HttpResult r = PostChat(absl::StrCat("after-", i));
    EXPECT_EQ(r.status, 200) << r.body;
  }
  EXPECT_EQ(SessionsOn(1) - served_before, kAfter);
  EXPECT_TRUE(ReadyzBecomes(200));
}

TEST_F(GatewayOverTwoReplicasTest, CallsWaitingWhileBothAreDownAreServed) {
  ASSERT_TRUE(ReadyzBecomes(200)) << gateway_->Log();
  for (auto& replica : replicas_) ASSERT_TRUE(replica->Stop(SIGKILL).ok());
  ASSERT_TRUE(ReadyzBecomes(503));

  // More calls than replicas: had each been bound to a channel in turn,
  // some would wait for the replica that stays down.
  constexpr int kCalls = 4;
  absl::Mutex mu;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int c = 0; c < kCalls; ++c) {
    clients.emplace_back([&, c] {
      HttpResult r = PostChat(absl::StrCat("waiting-", c));
      if (r.status != 200) {
        absl::MutexLock lock(&mu);
        failures.push_back(absl::StrCat(r.status, " ", r.body));
      }
    });
  }
  // Every call has reached the gateway and waits there.
  EXPECT_TRUE(Eventually([&] {
    return SampleValue(Curl({base_ + "/metrics"}).body,
                       "chatd_gateway_backend_waiting_calls") == kCalls;
  }));
  // Only the replica reached by IP comes back, on its port.
  replicas_[1] = MakeReplica(1, absl::StrCat("127.0.0.1:", ports_[1]));
  ASSERT_TRUE(replicas_[1]->Start().ok()) << replicas_[1]->Log();
  for (std::thread& t : clients) t.join();
  EXPECT_THAT(failures, ::testing::IsEmpty()) << gateway_->Log();
  EXPECT_EQ(SessionsOn(1), kCalls);
  EXPECT_THAT(SampleValue(Curl({base_ + "/metrics"}).body,
                          "chatd_gateway_backend_waiting_calls"),
              Optional(0.0));
}

// A DNS server on 127.0.0.1 (UDP, a port from the OS) that answers A
// queries for the names in its table with TTL 0, other queries (AAAA, TXT)
// for those names with no records, and any query for another name with
// NXDOMAIN, as a container's DNS does once the container is gone. Just
// enough of RFC 1035 for c-ares.
class FakeDnsServer {
 public:
  FakeDnsServer() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeDnsServer() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }

  // From now on `name` resolves to `ipv4`.
  void Set(const std::string& name, const std::string& ipv4) {
    absl::MutexLock lock(&mu_);
    table_[name] = ipv4;
  }
  // From now on `name` does not exist (NXDOMAIN).
  void Remove(const std::string& name) {
    absl::MutexLock lock(&mu_);
    table_.erase(name);
  }
  int port() const { return port_; }

  // A queries for `name` answered so far: each is one lookup by gRPC.
  int Lookups(const std::string& name) {
    absl::MutexLock lock(&mu_);
    return lookups_[name];
  }
  // Blocks until Lookups(name) >= n; false after `timeout`.
  bool WaitForLookups(const std::string& name, int n, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return lookups_[name] >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      unsigned char query[512];
      sockaddr_in from{};
      socklen_t from_len = sizeof(from);
      ssize_t n = recvfrom(fd_, query, sizeof(query), 0,
                           reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n < 12) continue;
      // The question: labels up to a zero byte, then type and class.
      std::string name;
      size_t at = 12;
      while (at < static_cast<size_t>(n) && query[at] != 0) {
        const size_t label = query[at];
        if (!name.empty()) name += '.';
        name.append(reinterpret_cast<const char*>(query) + at + 1, label);
        at += label + 1;
      }
      const size_t question_end = at + 5;
      if (question_end > static_cast<size_t>(n)) continue;
      const int type = query[at + 1] << 8 | query[at + 2];
      std::string address;
      bool exists = false;
      {
        absl::MutexLock lock(&mu_);
        auto it = table_.find(name);
        exists = it != table_.end();
        if (exists && type == 1) address = it->second;
        if (type == 1) ++lookups_[name];
      }
      std::string answer(reinterpret_cast<const char*>(query), question_end);
      answer[2] = static_cast<char>(0x80 | (query[2] & 0x01));  // QR, RD.
      answer[3] = static_cast<char>(exists ? 0x80 : 0x83);      // RA; NXDOMAIN?
      answer[4] = 0, answer[5] = 1;                             // One question,
      answer[6] = 0, answer[7] = address.empty() ? 0 : 1;       // one answer,
      for (int i = 8; i < 12; ++i) answer[i] = 0;               // nothing else.
      if (!address.empty()) {
        const unsigned char record[] = {0xc0, 0x0c, 0, 1, 0, 1,
                                        0,    0,    0, 0, 0, 4};
        answer.append(reinterpret_cast<const char*>(record), sizeof(record));
        in_addr ip{};
        inet_pton(AF_INET, address.c_str(), &ip);
        answer.append(reinterpret_cast<const char*>(&ip), 4);
      }
      sendto(fd_, answer.data(), answer.size(), 0,
             reinterpret_cast<sockaddr*>(&from), from_len);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::map<std::string, std::string> table_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> lookups_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The compose layout: each replica has a name of its own. The container
// behind replica-a is replaced (a new one at another address, the old one
// killed), and the gateway, never restarted, serves calls through the new
// one within a few seconds: the failed connection makes gRPC resolve the
// name again, at most a second after the last lookup.
TEST_F(GatewayOverTwoReplicasTest, ANameWhoseAddressChangesIsFollowed) {
  FakeDnsServer dns;
  ASSERT_NE(dns.port(), 0);
  dns.Set("replica-a.test", "127.0.0.1");
  dns.Set("replica-b.test", "127.0.0.1");
  const std::string server = absl::StrCat("dns://127.0.0.1:", dns.port(), "/");
  ServerProcess gateway(
      CHAT_GATEWAY_BINARY,
      {"--listen=127.0.0.1:0",
       absl::StrCat("--backend=", server, "replica-a.test:", ports_[0], ",",
                    server, "replica-b.test:", ports_[1])});
  ASSERT_TRUE(gateway.Start().ok()) << gateway.Log();
  base_ = absl::StrCat("http://127.0.0.1:", gateway.port());
  int calls = 0;
  ASSERT_TRUE(Eventually(
      [&] {
        EXPECT_EQ(PostChat(absl::StrCat("before-", calls++)).status, 200);
        return SessionsOn(0) > 0 && SessionsOn(1) > 0;
      },
      absl::Seconds(20)))
      << gateway.Log();

  // The new replica-a: another address, the same port, a fresh store.
  auto replaced = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{
          absl::StrCat("--listen=127.0.0.2:", ports_[0]),
          absl::StrCat("--store=sqlite:", dir_, "/replaced.db"),
          "--provider=echo", "--echo_delay=1ms", "--shutdown_grace=2s"});
  ASSERT_TRUE(replaced->Start().ok()) << replaced->Log();
  dns.Set("replica-a.test", "127.0.0.2");
  ASSERT_TRUE(replicas_[0]->Stop(SIGKILL).ok());
  const absl::Time replaced_at = absl::Now();

  auto sessions_on_replaced = [&] {
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.2:", ports_[0]),
                                       grpc::InsecureChannelCredentials());
    chat::v1::ChatService::Stub stub(channel);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    chat::v1::GetStatsResponse response;
    if (!stub.GetStats(&context, chat::v1::GetStatsRequest(), &response).ok())
      return int64_t{-1};
    return response.total_sessions();
  };
  // Every call is served meanwhile (by replica-b), and soon replica-a's new
  // container takes its share.
  calls = 0;
  EXPECT_TRUE(Eventually(
      [&] {
        HttpResult r = PostChat(absl::StrCat("after-", calls++));
        EXPECT_EQ(r.status, 200) << r.body;
        return sessions_on_replaced() > 0;
      },
      absl::Seconds(20)))
      << gateway.Log();
  const absl::Duration followed_after = absl::Now() - replaced_at;
  // A correctness bound with room for a loaded machine, not a performance
  // figure: without the re-resolution a failed connection starts, gRPC would
  // look the name up again only after its 30 s minimum between lookups.
  EXPECT_LT(followed_after, absl::Seconds(10));
  std::cout << "replica-a's new address served a call "
            << absl::FormatDuration(followed_after)
            << " after the old one died (" << calls << " calls)\n";
}

// The server behind a --backend name is replaced (compose's chat-server
// container): while the old one is gone its name does not resolve
// (NXDOMAIN), then it names the new server's address. gRPC 1.51's resolver
// backs off after each failed lookup (1 s, 1.6 s, 2.6 s, ... up to 120 s)
// and ignores requests to look again meanwhile: before the set remade such
// channels, six failed lookups took 16 s and the next came 10 s after the
// name was back, and the waiting call answered 504. Now the name is looked
// up about every second and the waiting call is served. With one name (a
// channel) and with two (a channel each).
// A chat-server (echo provider, SQLite at `db`) on `listen`, not started.
std::unique_ptr<ServerProcess> EchoServerOn(const std::string& listen,
                                            const std::string& db) {
  return std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{absl::StrCat("--listen=", listen),
                               absl::StrCat("--store=sqlite:", db),
                               "--provider=echo", "--echo_delay=1ms",
                               "--shutdown_grace=2s"});
}

class GatewayFollowsANameBackTest : public ::testing::TestWithParam<bool> {};

TEST_P(GatewayFollowsANameBackTest, ACallWaitingMeanwhileIsServed) {
  if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/curl";
  const bool two_names = GetParam();
  const std::string dir = MakeTempDir();
  auto server_on = [&](const std::string& listen, const std::string& db) {
    return EchoServerOn(listen, absl::StrCat(dir, "/", db));
  };
  std::unique_ptr<ServerProcess> old_server = server_on("127.0.0.2:0", "a.db");
  ASSERT_TRUE(old_server->Start().ok()) << old_server->Log();
  const int port = old_server->port();

  FakeDnsServer dns;
  ASSERT_NE(dns.port(), 0);
  const std::vector<std::string> names =
      two_names ? std::vector<std::string>{"chat-a.test", "chat-b.test"}
                : std::vector<std::string>{"chat-server.test"};
  std::vector<std::string> targets;
  for (const std::string& name : names) {
    dns.Set(name, "127.0.0.2");
    targets.push_back(
        absl::StrCat("dns://127.0.0.1:", dns.port(), "/", name, ":", port));
  }
  ServerProcess gateway(
      CHAT_GATEWAY_BINARY,
      {"--listen=127.0.0.1:0",
       absl::StrCat("--backend=", absl::StrJoin(targets, ","))});
  ASSERT_TRUE(gateway.Start().ok()) << gateway.Log();
  const std::string base = absl::StrCat("http://127.0.0.1:", gateway.port());
  auto post = [&](const std::string& session) {
    return Curl(
        {"--max-time", "60", "-X", "POST", base + "/v1/chat", "-H",
         "Content-Type: application/json", "-H", "grpc-timeout: 10S", "-d",
         absl::StrCat(R"({"session_id":")", session, R"(","message":"hi"})")});
  };
  HttpResult before = post("before");
  ASSERT_EQ(before.status, 200) << before.body << gateway.Log();

  // The old server goes, and its name with it, for ten lookups in a row.
  std::vector<int> lookups;
  for (const std::string& name : names) {
    dns.Remove(name);
    lookups.push_back(dns.Lookups(name));
  }
  ASSERT_TRUE(old_server->Stop(SIGKILL).ok());
  const absl::Time gone_at = absl::Now();
  constexpr int kFailedLookups = 10;
  for (size_t i = 0; i < names.size(); ++i) {
    ASSERT_TRUE(dns.WaitForLookups(names[i], lookups[i] + kFailedLookups,
                                   absl::Seconds(90)))
        << gateway.Log();
  }
  const absl::Duration gone_for = absl::Now() - gone_at;

  // The new server, at another address on the same port; a call arrives
  // while its name still does not resolve.
  std::unique_ptr<ServerProcess> new_server =
      server_on(absl::StrCat("127.0.0.3:", port), "b.db");
  ASSERT_TRUE(new_server->Start().ok()) << new_server->Log();
  HttpResult in_flight;
  std::thread call([&] { in_flight = post("in-flight"); });
  // Its connection is open (the scrape's own is the other one).
  EXPECT_TRUE(Eventually([&] {
    return SampleValue(Curl({base + "/metrics"}).body,
                       "chatd_gateway_open_connections") >= 2;
  }));
  for (const std::string& name : names) dns.Set(name, "127.0.0.3");
  const absl::Time back_at = absl::Now();
  call.join();
  const absl::Duration gap = absl::Now() - back_at;
  EXPECT_EQ(in_flight.status, 200) << in_flight.body << gateway.Log();
  HttpResult after = post("after");
  EXPECT_EQ(after.status, 200) << after.body;
  std::cout << names.size() << " name(s) gone for "
            << absl::FormatDuration(gone_for) << " (" << kFailedLookups
            << " failed lookups each); the call waiting meanwhile was served "
            << absl::FormatDuration(gap) << " after the name came back\n";
}

// The server behind a --backend name is replaced while calls keep coming
// (the container check's "server replaced"): SIGTERM, its name gone for a
// few lookups, then the new server. A call the set gave the old channel as
// the old server left (a health or GOAWAY update racing the set's pick)
// used to wait inside that channel, whose lookups were backed off, and
// time out; it now fails there at once, untaken, and is sent again through
// the set. No call may fail.
TEST(GatewayReplacedServerTest, CallsMadeAcrossTheReplacementAllSucceed) {
  if (!HaveCurl()) GTEST_SKIP() << "no " << kCurlBinary;
  const std::string dir = MakeTempDir();
  auto server_on = [&](const std::string& listen, const std::string& db) {
    return EchoServerOn(listen, absl::StrCat(dir, "/", db));
  };
  std::unique_ptr<ServerProcess> old_server = server_on("127.0.0.2:0", "a.db");
  ASSERT_TRUE(old_server->Start().ok()) << old_server->Log();
  const int port = old_server->port();
  FakeDnsServer dns;
  ASSERT_NE(dns.port(), 0);
  dns.Set("chat-server.test", "127.0.0.2");
  ServerProcess gateway(CHAT_GATEWAY_BINARY,
                        {"--listen=127.0.0.1:0",
                         absl::StrCat("--backend=dns://127.0.0.1:", dns.port(),
                                      "/chat-server.test:", port)});
  ASSERT_TRUE(gateway.Start().ok()) << gateway.Log();
  const std::string base = absl::StrCat("http://127.0.0.1:", gateway.port());

  // Callers in a loop, each call with a 20 s deadline, until each has been
  // answered by the new server.
  constexpr int kCallers = 4;
  std::atomic<bool> replaced{false};
  absl::Mutex mu;
  std::vector<std::string> failures;
  int answered = 0;
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      bool served_by_new = false;
      for (int i = 0; !served_by_new && i < 2000; ++i) {
        const bool after = replaced.load();
        HttpResult r = Curl(
            {"--max-time", "30", "-X", "POST", base + "/v1/chat", "-H",
             "Content-Type: application/json", "-H", "grpc-timeout: 20S", "-d",
             absl::StrCat(R"({"session_id":"c)", c, "-", i,
                          R"(","message":"hi"})")});
        absl::MutexLock lock(&mu);
        ++answered;
        if (r.status != 200) {
          failures.push_back(absl::StrCat(r.status, " ", r.body));
        }
        served_by_new = after && r.status == 200;
      }
    });
  }
  auto answered_more_than = [&](int n) {
    return Eventually([&] {
      absl::MutexLock lock(&mu);
      return answered > n;
    });
  };
  ASSERT_TRUE(answered_more_than(kCallers * 5));
  const int lookups = dns.Lookups("chat-server.test");
  dns.Remove("chat-server.test");
  ASSERT_TRUE(old_server->Stop(SIGTERM).ok());
  constexpr int kFailedLookups = 4;
  EXPECT_TRUE(dns.WaitForLookups("chat-server.test", lookups + kFailedLookups,
                                 absl::Seconds(60)))
      << gateway.Log();
  std::unique_ptr<ServerProcess> new_server =
      server_on(absl::StrCat("127.0.0.3:", port), "b.db");
  ASSERT_TRUE(new_server->Start().ok()) << new_server->Log();
  replaced.store(true);
  dns.Set("chat-server.test", "127.0.0.3");
  for (std::thread& t : callers) t.join();
  absl::MutexLock lock(&mu);
  EXPECT_THAT(failures, ::testing::IsEmpty()) << gateway.Log();
  std::cout << answered << " calls across the replacement, " << failures.size()
            << " failed\n";
}

INSTANTIATE_TEST_SUITE_P(OneOrTwoNames, GatewayFollowsANameBackTest,
                         ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "TwoNames" : "OneName";
                         });

}  // namespace
}  // namespace chat::gateway
