// Several real chat-server processes on one store, crashes and a database
// restart. Strategy: drive real gRPC load at the replicas, then read every
// history back and check the invariants a client relies on: each turn a
// client was answered for is stored, whole and in order; no turn is stored
// twice or half; turns never interleave. PostgreSQL tests use a fresh schema
// on the cluster scripts/test.sh starts (CHAT_TEST_POSTGRES_DSN), or a
// private cluster when they restart it.

#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/eventually.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::Eventually;
using ::chat::testing::MakeTempDir;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatRequest;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::chat::v1::ChatStreamResponse;
using ::testing::HasSubstr;

const bool kFastClientPolling = ::chat::testing::PollIdleChannelsOften();

// A started replica and a stub to it.
struct Replica {
  std::unique_ptr<ServerProcess> process;
  std::unique_ptr<ChatService::Stub> stub;
};

absl::StatusOr<Replica> StartReplica(const std::string& store,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {
      "--listen=127.0.0.1:0", absl::StrCat("--store=", store),
      "--provider=echo", "--echo_delay=0s", "--shutdown_grace=5s"};
  args.insert(args.end(), extra.begin(), extra.end());
  Replica replica;
  replica.process = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, args);
  if (absl::Status s = replica.process->Start(); !s.ok()) return s;
  replica.stub = ChatService::NewStub(grpc::CreateChannel(
      replica.process->address(), grpc::InsecureChannelCredentials()));
  return replica;
}

grpc::Status Chat(ChatService::Stub& stub, const std::string& session,
                  const std::string& message, ChatResponse* response) {
  return ::chat::testing::CallChat(
      stub, ::chat::testing::MakeChatRequest(session, message), response);
}

chat::v1::GetHistoryResponse History(ChatService::Stub& stub,
                                     const std::string& session) {
  grpc::Status status;
  chat::v1::GetHistoryResponse response =
      ::chat::testing::CallGetHistory(stub, session, &status);
  EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::NOT_FOUND)
      << status.error_message();
  return response;
}

// The stored history is whole turns in order: user, assistant, user, ...,
// each reply answering the message just before it (the echo provider quotes
// it).
void ExpectWholeTurns(const chat::v1::GetHistoryResponse& history) {
  ASSERT_EQ(history.messages_size() % 2, 0) << "a half turn is stored";
  EXPECT_EQ(history.turn_count(), history.messages_size() / 2);
  for (int i = 0; i + 1 < history.messages_size(); i += 2) {
    EXPECT_EQ(history.messages(i).role(), "user");
    EXPECT_EQ(history.messages(i + 1).role(), "assistant");
    EXPECT_THAT(history.messages(i + 1).content(),
                HasSubstr(absl::StrCat("You said: \"",
                                       history.messages(i).content(), "\"")));
  }
}

std::string PostgresStoreOrSkip() {
  absl::StatusOr<std::string> conninfo =
      ::chat::testing::MakeFreshPostgresSchema();
  if (!conninfo.ok()) return "";
  return absl::StrCat("postgres:", *conninfo);
}

#define REQUIRE_POSTGRES(store_var)                                         \
  std::string store_var = PostgresStoreOrSkip();                            \
  if (store_var.empty()) {                                                  \
    if (::chat::testing::PostgresRequired()) {                              \
      GTEST_FAIL() << "PostgreSQL required (CHAT_TEST_REQUIRE_POSTGRES=1) " \
                      "but CHAT_TEST_POSTGRES_DSN is unusable";             \
    }                                                                       \
    GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run";                    \
  }

TEST(ReplicasTest, TwoReplicasOnePostgresKeepEveryConversationWhole) {
  REQUIRE_POSTGRES(store);
  absl::StatusOr<Replica> a = StartReplica(store);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Replica> b = StartReplica(store);
  ASSERT_TRUE(b.ok()) << b.status();
  ChatService::Stub* replicas[] = {a->stub.get(), b->stub.get()};

  // 50 sessions x 20 turns, all sessions at once; each turn goes to the
  // other replica than the one before, so every conversation continues on
  // whichever replica serves the next call.
  constexpr int kSessions = 50;
  constexpr int kTurns = 20;
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int s = 0; s < kSessions; ++s) {
    clients.emplace_back([&, s] {
      for (int t = 0; t < kTurns; ++t) {
        ChatResponse response;
        grpc::Status status =
            Chat(*replicas[(s + t) % 2], absl::StrCat("s", s),
                 absl::StrCat("session ", s, " turn ", t), &response);
        if (!status.ok() || response.turn_count() != t + 1) ++failures;
      }
    });
  }
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(failures.load(), 0);

  for (int s = 0; s < kSessions; ++s) {
    chat::v1::GetHistoryResponse history =
        History(*replicas[s % 2], absl::StrCat("s", s));
    ASSERT_EQ(history.messages_size(), 2 * kTurns);
    ExpectWholeTurns(history);
    for (int t = 0; t < kTurns; ++t) {
      EXPECT_EQ(history.messages(2 * t).content(),
                absl::StrCat("session ", s, " turn ", t));
    }
  }
}

TEST(ReplicasTest, OneSessionHammeredThroughTwoReplicasNeverInterleaves) {
  REQUIRE_POSTGRES(store);
  // A slow provider widens the window in which the replicas race.
  absl::StatusOr<Replica> a = StartReplica(store, {"--echo_delay=5ms"});
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Replica> b = StartReplica(store, {"--echo_delay=5ms"});
  ASSERT_TRUE(b.ok()) << b.status();
  ChatService::Stub* replicas[] = {a->stub.get(), b->stub.get()};

  // Streams: their callers have seen deltas, so a lost race is ABORTED.
  constexpr int kClients = 8;
  constexpr int kCallsEach = 6;
  std::atomic<int> stored{0}, aborted{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kCallsEach; ++i) {
        grpc::ClientContext context;
        ChatRequest request;
        request.set_session_id("shared");
        request.set_message(absl::StrCat("client ", c, " call ", i));
        auto reader = replicas[c % 2]->ChatStream(
            &context, ::chat::testing::ToStreamRequest(request));
        ChatStreamResponse event;
        while (reader->Read(&event)) {
        }
        grpc::Status status = reader->Finish();
        if (status.ok()) {
          ++stored;
        } else if (status.error_code() == grpc::StatusCode::ABORTED) {
          EXPECT_THAT(status.error_message(), HasSubstr("busy"));
          ++aborted;
        } else {
          ADD_FAILURE() << status.error_message();
          ++other;
        }
      }
    });
  }
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(aborted.load(), 0)
      << "the replicas never raced; the test proves nothing";
  chat::v1::GetHistoryResponse history = History(*replicas[0], "shared");
  ExpectWholeTurns(history);
  EXPECT_EQ(history.turn_count(), stored.load());

  // Unary calls retry a lost race once against the fresh history, so far
  // fewer fail; whatever succeeded is stored exactly once.
  std::atomic<int> unary_stored{0};
  clients.clear();
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kCallsEach; ++i) {
        ChatResponse response;
        grpc::Status status =
            Chat(*replicas[c % 2], "shared", absl::StrCat("unary ", c, " ", i),
                 &response);
        if (status.ok()) {
          ++unary_stored;
        } else {
          EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
        }
      }
    });
  }
  for (std::thread& c : clients) c.join();
  history = History(*replicas[1], "shared");
  ExpectWholeTurns(history);
  EXPECT_EQ(history.turn_count(), stored.load() + unary_stored.load());
}

// Streams turns at a replica, kills it with SIGKILL mid-stream, restarts it
// on the same store: every turn whose `done` a client received is stored,
// and nothing else but whole turns.
void CrashMidStream(const std::string& store) {
  absl::StatusOr<Replica> replica = StartReplica(store, {"--echo_delay=3ms"});
  ASSERT_TRUE(replica.ok()) << replica.status();
  constexpr int kClients = 6;
  absl::Mutex mu;
  std::map<std::string, std::vector<std::string>>
      acknowledged;  // session -> messages
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      ChatService::Stub& stub = *replica->stub;
      const std::string session = absl::StrCat("crash-", c);
      for (int i = 0; i < 200 && !stop.load(); ++i) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(10));
        ChatRequest request;
        request.set_session_id(session);
        request.set_message(absl::StrCat("message ", i));
        auto reader = stub.ChatStream(
            &context, ::chat::testing::ToStreamRequest(request));
        ChatStreamResponse event;
        bool done = false;
        while (reader->Read(&event)) done = done || event.has_done();
        if (reader->Finish().ok() && done) {
          absl::MutexLock lock(&mu);
          acknowledged[session].push_back(request.message());
        } else {
          return;  // The server is gone.
        }
      }
    });
  }
  // Kill it under load: once every client has had turns acknowledged, while
  // they all keep streaming.
  {
    absl::MutexLock lock(&mu);
    auto every_client_acknowledged = [&] {
      if (acknowledged.size() < kClients) return false;
      for (const auto& [session, acked] : acknowledged) {
        if (acked.size() < 2) return false;
      }
      return true;
    };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&every_client_acknowledged),
                                    absl::Seconds(30)))
        << "the load did not get going";
  }
  ASSERT_EQ(kill(replica->process->pid(), SIGKILL), 0);
  stop.store(true);
  for (std::thread& c : clients) c.join();
  absl::StatusOr<int> code = replica->process->Stop(SIGKILL);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 128 + SIGKILL);

  absl::StatusOr<Replica> restarted = StartReplica(store);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  int total_acknowledged = 0;
  for (int c = 0; c < kClients; ++c) {
    const std::string session = absl::StrCat("crash-", c);
    chat::v1::GetHistoryResponse history = History(*restarted->stub, session);
    ExpectWholeTurns(history);
    absl::MutexLock lock(&mu);
    const std::vector<std::string>& acked = acknowledged[session];
    total_acknowledged += static_cast<int>(acked.size());
    // Every acknowledged turn is there, in order. At most one more turn may
    // be: stored just before the crash, its answer lost on the way.
    ASSERT_GE(history.turn_count(), static_cast<int>(acked.size()));
    EXPECT_LE(history.turn_count(), static_cast<int>(acked.size()) + 1);
    for (size_t i = 0; i < acked.size(); ++i) {
      EXPECT_EQ(history.messages(2 * i).content(), acked[i]);
    }
  }
  EXPECT_GT(total_acknowledged, kClients)
      << "no load reached the server before the crash";
}

TEST(CrashTest, KilledSqliteReplicaLosesNoAcknowledgedTurn) {
  CrashMidStream(absl::StrCat("sqlite:", MakeTempDir(), "/chat.db"));
}

TEST(CrashTest, KilledPostgresReplicaLosesNoAcknowledgedTurn) {
  REQUIRE_POSTGRES(store);
  CrashMidStream(store);
}

TEST(PostgresOutageTest,
     UnderLoadCallsFailUnavailableThenRecoverWithoutRestart) {
  const char* script = std::getenv("CHAT_TEST_PG_CLUSTER_SCRIPT");
  if (script == nullptr) {
    if (::chat::testing::PostgresRequired())
      GTEST_FAIL() << "CHAT_TEST_PG_CLUSTER_SCRIPT unset";
    GTEST_SKIP() << "set CHAT_TEST_PG_CLUSTER_SCRIPT (scripts/test.sh does)";
  }
  // A private cluster: stopping the shared one would break other tests.
  const std::string parent = MakeTempDir();
  chmod(parent.c_str(), 0755);  // The server runs as `postgres` under root.
  const std::string dir = parent + "/pg";
  std::string dsn;
  absl::StatusOr<int> started =
      RunCommand({"/bin/bash", script, "start", dir}, &dsn);
  ASSERT_TRUE(started.ok() && *started == 0) << dsn;
  while (!dsn.empty() && dsn.back() == '\n') dsn.pop_back();
  struct StopCluster {
    std::string script, dir;
    ~StopCluster() {
      std::string ignored;
      (void)RunCommand({"/bin/bash", script, "stop", dir}, &ignored);
    }
  } stop_cluster{script, dir};

  absl::StatusOr<Replica> replica =
      StartReplica(absl::StrCat("postgres:", dsn), {"--store_connections=4"});
  ASSERT_TRUE(replica.ok()) << replica.status();
  ChatResponse response;
  ASSERT_TRUE(Chat(*replica->stub, "outage", "before", &response).ok());

  // Load throughout: clients chat in a loop on sessions of their own while
  // the database goes away and comes back.
  constexpr int kClients = 4;
  struct Client {
    std::vector<std::string> attempted, acknowledged;
    int failures = 0, successes_after_restart = 0;
    std::vector<std::string> unexpected;  // Failures other than UNAVAILABLE.
  };
  std::vector<Client> clients(kClients);
  std::atomic<bool> restarted{false}, stop{false};
  // How many clients have reached each stage: the main thread moves on once
  // all of them have, rather than after a guessed pause.
  std::atomic<int> clients_served{0}, clients_failed{0}, clients_recovered{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      Client& client = clients[c];
      for (int i = 0; i < 2000 && !stop.load(); ++i) {
        const std::string message = absl::StrCat("load ", c, " call ", i);
        client.attempted.push_back(message);
        ChatResponse r;
        grpc::Status s =
            Chat(*replica->stub, absl::StrCat("outage-load-", c), message, &r);
        if (s.ok()) {
          client.acknowledged.push_back(message);
          if (client.acknowledged.size() == 1) ++clients_served;
          if (restarted.load() && ++client.successes_after_restart == 1) {
            ++clients_recovered;
          }
        } else {
          if (++client.failures == 1) ++clients_failed;
          if (s.error_code() != grpc::StatusCode::UNAVAILABLE) {
            client.unexpected.push_back(s.error_message());
          }
          absl::SleepFor(absl::Milliseconds(20));  // Paces the retries.
        }
      }
    });
  }
  EXPECT_TRUE(Eventually([&] { return clients_served.load() == kClients; },
                         absl::Seconds(30)))
      << "the load did not get going";

  std::string output;
  ASSERT_EQ(*RunCommand({"/bin/bash", script, "kill", dir}, &output), 0)
      << output;
  // Every client has met the outage: the store knows the database is gone.
  EXPECT_TRUE(Eventually([&] { return clients_failed.load() == kClients; },
                         absl::Seconds(30)));
  for (int i = 0; i < 3; ++i) {
    grpc::Status status =
        Chat(*replica->stub, "outage", "while down", &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("postgres"));
  }

  ASSERT_EQ(*RunCommand({"/bin/bash", script, "start", dir}, &output), 0)
      << output;
  restarted.store(true);
  // Pooled connections died with the server; the first calls may still
  // meet one, after which the store reconnects by itself: no restart of
  // chat-server.
  grpc::Status status;
  Eventually(
      [&] {
        status = Chat(*replica->stub, "outage", "after", &response);
        EXPECT_TRUE(status.ok() ||
                    status.error_code() == grpc::StatusCode::UNAVAILABLE)
            << status.error_message();
        return status.ok();
      },
      absl::Seconds(60), absl::Milliseconds(200));
  ASSERT_TRUE(status.ok()) << status.error_message();
  // Let the load run on the recovered database until every client has had
  // a turn stored on it.
  EXPECT_TRUE(Eventually([&] { return clients_recovered.load() == kClients; },
                         absl::Seconds(30)));
  stop.store(true);
  for (std::thread& t : threads) t.join();

  chat::v1::GetHistoryResponse history = History(*replica->stub, "outage");
  ExpectWholeTurns(history);
  ASSERT_EQ(history.turn_count(), 2);
  EXPECT_EQ(history.messages(2).content(), "after");
  for (int c = 0; c < kClients; ++c) {
    const Client& client = clients[c];
    EXPECT_THAT(client.unexpected, ::testing::IsEmpty());
    EXPECT_GT(client.failures, 0) << "client " << c << " never saw the outage";
    EXPECT_GT(client.successes_after_restart, 0)
        << "client " << c << " never recovered";
    chat::v1::GetHistoryResponse h =
        History(*replica->stub, absl::StrCat("outage-load-", c));
    ExpectWholeTurns(h);
    // Stored turns are attempted messages in order, and include every
    // acknowledged one (a turn committed as the server died may be stored
    // though its answer was lost).
    std::vector<std::string> stored;
    for (int i = 0; i < h.messages_size(); i += 2)
      stored.push_back(h.messages(i).content());
    size_t a = 0, k = 0;
    for (const std::string& m : stored) {
      while (a < client.attempted.size() && client.attempted[a] != m) ++a;
      ASSERT_LT(a, client.attempted.size())
          << m << " was stored out of order or never sent";
      if (k < client.acknowledged.size() && client.acknowledged[k] == m) ++k;
    }
    EXPECT_EQ(k, client.acknowledged.size())
        << "an acknowledged turn is missing";
  }
}

// A full disk under the SQLite file: the turn that does not fit fails
// UNAVAILABLE and leaves no trace; the turns before it are intact.
TEST(DiskFullTest, TurnThatDoesNotFitFailsWhole) {
  const std::string disk = MakeTempDir() + "/disk";
  std::string output;
  mkdir(disk.c_str(), 0755);
  absl::StatusOr<int> mounted = RunCommand(
      {"/bin/mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk}, &output);
  if (!mounted.ok() || *mounted != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root): " << output;
  }
  struct Unmount {
    std::string path;
    ~Unmount() {
      std::string ignored;
      (void)RunCommand({"/bin/umount", "-l", path}, &ignored);
    }
  } unmount{disk};

  absl::StatusOr<Replica> replica =
      StartReplica(absl::StrCat("sqlite:", disk, "/chat.db"));
  ASSERT_TRUE(replica.ok()) << replica.status();
  const std::string big(60 * 1024, 'x');
  int stored = 0;
  grpc::Status status;
  for (int i = 0; i < 40; ++i) {
    ChatResponse response;
    status = Chat(*replica->stub, "full", absl::StrCat(i, big), &response);
    if (!status.ok()) break;
    ++stored;
  }
  ASSERT_FALSE(status.ok()) << "the disk never filled up";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
  EXPECT_GT(stored, 0);
  chat::v1::GetHistoryResponse history = History(*replica->stub, "full");
  ExpectWholeTurns(history);
  EXPECT_EQ(history.turn_count(), stored);
}

TEST(RetentionTest, IdleSessionsAreSweptAway) {
  absl::StatusOr<Replica> replica = StartReplica(
      absl::StrCat("sqlite:", MakeTempDir(), "/chat.db"), {"--session_ttl=1s"});
  ASSERT_TRUE(replica.ok()) << replica.status();
  ChatResponse response;
  ASSERT_TRUE(Chat(*replica->stub, "ephemeral", "hi", &response).ok());
  // The sweep runs every second and removes sessions idle for over 1 s.
  grpc::Status status;
  Eventually(
      [&] {
        grpc::ClientContext context;
        chat::v1::GetHistoryRequest request;
        request.set_session_id("ephemeral");
        chat::v1::GetHistoryResponse history;
        status = replica->stub->GetHistory(&context, request, &history);
        return status.error_code() == grpc::StatusCode::NOT_FOUND;
      },
      absl::Seconds(60), absl::Milliseconds(200));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  // Logged after the deletion commits, so maybe after the read above.
  EXPECT_TRUE(Eventually([&] {
    return absl::StrContains(replica->process->Log(),
                             "retention sweep deleted 1 session");
  })) << replica->process->Log();
}

TEST(LimitsTest, TurnAndSessionCapsAnswerResourceExhausted) {
  absl::StatusOr<Replica> replica = StartReplica(
      "memory", {"--max_turns_per_session=1", "--max_sessions_per_tenant=1"});
  ASSERT_TRUE(replica.ok()) << replica.status();
  ChatResponse response;
  ASSERT_TRUE(Chat(*replica->stub, "one", "hi", &response).ok());
  grpc::Status turns = Chat(*replica->stub, "one", "again", &response);
  EXPECT_EQ(turns.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(turns.error_message(), HasSubstr("max_turns_per_session"));
  grpc::Status sessions = Chat(*replica->stub, "two", "hi", &response);
  EXPECT_EQ(sessions.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(sessions.error_message(), HasSubstr("max_sessions_per_tenant"));
}

}  // namespace
}  // namespace chat
