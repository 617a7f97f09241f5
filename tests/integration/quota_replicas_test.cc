// API-key rate limits and budgets across two chat-server replicas on one
// PostgreSQL database.
//
// Strategy: the limits are counters in the shared store, charged with one
// atomic conditional upsert each, so they must hold exactly however the
// calls are spread over replicas. Each test starts two real replicas (echo
// provider, no delay), makes keys with `chat-server keys create` on the same
// database, then fires far more calls than the limit allows from many
// threads at once, released together by one notification, half at each
// replica. It then counts: exactly the limit succeeds for requests per
// minute, no more than the budget is used for tokens, and every refusal is
// RESOURCE_EXHAUSTED with the standard google.rpc.RetryInfo detail and a
// `retry-after` trailer. A per-minute window is a UTC minute; a round that a
// minute boundary splits (checked on the wall clock around it) proves
// nothing about one window, so it runs once more with a fresh key.

#include <atomic>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatRequest;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::testing::HasSubstr;

const bool kFastClientPolling = ::chat::testing::PollIdleChannelsOften();

struct Replica {
  std::unique_ptr<ServerProcess> process;
  std::unique_ptr<ChatService::Stub> stub;
};

absl::StatusOr<Replica> StartReplica(const std::string& store) {
  Replica replica;
  replica.process = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{
          "--listen=127.0.0.1:0", absl::StrCat("--store=", store),
          "--provider=echo", "--echo_delay=0s", "--shutdown_grace=5s"});
  if (absl::Status s = replica.process->Start(); !s.ok()) return s;
  auto channel = grpc::CreateChannel(replica.process->address(),
                                     grpc::InsecureChannelCredentials());
  // Connected before the round starts, so connection set-up does not
  // spread the calls out.
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + absl::Seconds(10)))) {
    return absl::UnavailableError("replica did not accept a connection");
  }
  replica.stub = ChatService::NewStub(channel);
  return replica;
}

// Runs `chat-server keys create` on `store` with `limits` and returns the
// key it prints.
absl::StatusOr<std::string> CreateKey(const std::string& store,
                                      const std::string& name,
                                      std::vector<std::string> limits) {
  std::vector<std::string> argv = {CHAT_SERVER_BINARY,
                                   "keys",
                                   "create",
                                   "--tenant=acme",
                                   absl::StrCat("--name=", name),
                                   absl::StrCat("--store=", store)};
  argv.insert(argv.end(), limits.begin(), limits.end());
  std::string output;
  absl::StatusOr<int> code = RunCommand(argv, &output);
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(absl::StrCat("keys create: ", output));
  }
  std::smatch match;
  if (!std::regex_search(output, match,
                         std::regex("chatd_[0-9a-f]{12}_[0-9a-f]{64}"))) {
    return absl::InternalError(absl::StrCat("no key printed: ", output));
  }
  return match.str();
}

// What one call saw.
struct CallOutcome {
  grpc::Status status;
  ChatResponse response;
  // Trailing metadata the server sent with a refusal.
  std::optional<std::string> retry_after;
  std::optional<std::string> remaining_requests;
};

CallOutcome CallWithKey(ChatService::Stub& stub, const std::string& key,
                        const ChatRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  context.AddMetadata("authorization", "Bearer " + key);
  CallOutcome outcome;
  outcome.status = stub.Chat(&context, request, &outcome.response);
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find("retry-after"); it != trailers.end()) {
    outcome.retry_after = std::string(it->second.data(), it->second.size());
  }
  if (auto it = trailers.find("x-ratelimit-remaining-requests");
      it != trailers.end()) {
    outcome.remaining_requests =
        std::string(it->second.data(), it->second.size());
  }
  return outcome;
}

// The RetryInfo detail of a refusal (from grpc-status-details-bin), if it
// carries one whose google.rpc.Status agrees with the call's status.
std::optional<absl::Duration> RetryDelayOf(const grpc::Status& status) {
  google::rpc::Status details;
  if (status.error_details().empty() ||
      !details.ParseFromString(status.error_details())) {
    return std::nullopt;
  }
  if (details.code() != static_cast<int>(status.error_code()) ||
      details.message() != status.error_message()) {
    return std::nullopt;
  }
  for (const google::protobuf::Any& any : details.details()) {
    google::rpc::RetryInfo retry;
    if (any.UnpackTo(&retry)) {
      return absl::Seconds(retry.retry_delay().seconds()) +
             absl::Nanoseconds(retry.retry_delay().nanos());
    }
  }
  return std::nullopt;
}

// Checks a refusal's RetryInfo and `retry-after`: both present, the delay in
// (0, `at_most`], the header its whole seconds rounded up.
void ExpectRetryHints(const CallOutcome& refused, absl::Duration at_most) {
  std::optional<absl::Duration> delay = RetryDelayOf(refused.status);
  ASSERT_TRUE(delay.has_value()) << "no RetryInfo detail";
  EXPECT_GT(*delay, absl::ZeroDuration());
  EXPECT_LE(*delay, at_most);
  ASSERT_TRUE(refused.retry_after.has_value()) << "no retry-after trailer";
  int64_t seconds = 0;
  ASSERT_TRUE(absl::SimpleAtoi(*refused.retry_after, &seconds))
      << *refused.retry_after;
  EXPECT_EQ(seconds, std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(
                                              *delay, absl::Seconds(1)))));
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

// Runs `calls` calls at once, call i at replica i % 2, all threads released
// together; returns each call's outcome.
template <typename MakeRequest>
std::vector<CallOutcome> FireTogether(ChatService::Stub* replicas[2],
                                      const std::string& key, int calls,
                                      MakeRequest make_request) {
  std::vector<CallOutcome> outcomes(calls);
  absl::Notification go;
  std::vector<std::thread> threads;
  threads.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    threads.emplace_back([&, i] {
      const ChatRequest request = make_request(i);
      go.WaitForNotification();
      outcomes[i] = CallWithKey(*replicas[i % 2], key, request);
    });
  }
  go.Notify();
  for (std::thread& t : threads) t.join();
  return outcomes;
}

TEST(QuotaReplicasTest, RequestsPerMinuteAreExactAcrossTwoReplicas) {
  REQUIRE_POSTGRES(store);
  constexpr int kLimit = 40;
  // A round split by a minute boundary runs again with a fresh key; the
  // keys are made before the replicas start, so both know them at once.
  absl::StatusOr<std::string> keys[2] = {
      CreateKey(store, "rpm-a", {absl::StrCat("--rpm=", kLimit)}),
      CreateKey(store, "rpm-b", {absl::StrCat("--rpm=", kLimit)})};
  ASSERT_TRUE(keys[0].ok()) << keys[0].status();
  ASSERT_TRUE(keys[1].ok()) << keys[1].status();
  absl::StatusOr<Replica> a = StartReplica(store);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Replica> b = StartReplica(store);
  ASSERT_TRUE(b.ok()) << b.status();
  ChatService::Stub* replicas[2] = {a->stub.get(), b->stub.get()};

  for (int round = 0; round < 2; ++round) {
    const absl::Time before = absl::Now();
    std::vector<CallOutcome> outcomes =
        FireTogether(replicas, *keys[round], 2 * kLimit, [&](int i) {
          return ::chat::testing::MakeChatRequest(
              absl::StrCat("rpm-", round, "-", i), "hello");
        });
    const absl::Time after = absl::Now();
    const absl::TimeZone utc = absl::UTCTimeZone();
    if (absl::ToCivilMinute(before, utc) != absl::ToCivilMinute(after, utc)) {
      ASSERT_EQ(round, 0) << "two rounds in a row crossed a minute boundary";
      continue;  // Calls were charged to two windows: count nothing.
    }

    int accepted = 0, refused = 0;
    int accepted_by[2] = {0, 0};
    for (int i = 0; i < 2 * kLimit; ++i) {
      const CallOutcome& outcome = outcomes[i];
      if (outcome.status.ok()) {
        ++accepted;
        ++accepted_by[i % 2];
        continue;
      }
      ASSERT_EQ(outcome.status.error_code(),
                grpc::StatusCode::RESOURCE_EXHAUSTED)
          << outcome.status.error_message();
      ++refused;
      EXPECT_THAT(
          outcome.status.error_message(),
          HasSubstr(absl::StrCat("may make ", kLimit, " requests per minute")));
      // The window ends at the next UTC minute; retry then.
      ExpectRetryHints(outcome, absl::Minutes(1));
      EXPECT_EQ(outcome.remaining_requests, "0");
    }
    EXPECT_EQ(accepted, kLimit);
    EXPECT_EQ(refused, kLimit);
    // Both replicas admitted some: the limit is shared, not per replica.
    EXPECT_GT(accepted_by[0], 0);
    EXPECT_GT(accepted_by[1], 0);
    return;
  }
}

TEST(QuotaReplicasTest, BudgetIsNeverOverspentAndRefusedTurnsAreNotRun) {
  REQUIRE_POSTGRES(store);
  // Each turn reserves its prompt's estimate plus max_tokens (~70 tokens)
  // and then uses ~30: the budget admits a handful of turns out of many,
  // with reservations racing settlements on both replicas.
  constexpr int64_t kBudget = 600;
  constexpr int kClients = 16;
  constexpr int kTurnsEach = 8;
  absl::StatusOr<std::string> key = CreateKey(
      store, "budget",
      {absl::StrCat("--budget_tokens=", kBudget), "--budget_period=day"});
  ASSERT_TRUE(key.ok()) << key.status();
  absl::StatusOr<Replica> a = StartReplica(store);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Replica> b = StartReplica(store);
  ASSERT_TRUE(b.ok()) << b.status();
  ChatService::Stub* replicas[2] = {a->stub.get(), b->stub.get()};

  // Each client holds one session and sends its turns one after another,
  // alternating replicas, all clients at once.
  struct Client {
    std::vector<std::string> answered;  // Messages of successful turns.
    std::vector<CallOutcome> refusals;
    std::vector<std::string> other_errors;
    int64_t used_tokens = 0;
  };
  std::vector<Client> clients(kClients);
  const absl::Time before = absl::Now();
  absl::Notification go;
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      Client& client = clients[c];
      go.WaitForNotification();
      for (int t = 0; t < kTurnsEach; ++t) {
        ChatRequest request = ::chat::testing::MakeChatRequest(
            absl::StrCat("budget-", c),
            absl::StrCat("client ", c, " turn ", t));
        // Above the echo answer's length, so the reservation bounds it.
        request.set_max_tokens(40);
        CallOutcome outcome =
            CallWithKey(*replicas[(c + t) % 2], *key, request);
        if (outcome.status.ok()) {
          client.answered.push_back(request.message());
          client.used_tokens += outcome.response.usage().input_tokens() +
                                outcome.response.usage().output_tokens();
        } else if (outcome.status.error_code() ==
                   grpc::StatusCode::RESOURCE_EXHAUSTED) {
          client.refusals.push_back(std::move(outcome));
        } else {
          client.other_errors.push_back(outcome.status.error_message());
        }
      }
    });
  }
  go.Notify();
  for (std::thread& t : threads) t.join();
  const absl::Time after = absl::Now();

  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilDay day = absl::ToCivilDay(before, utc);
  if (day != absl::ToCivilDay(after, utc)) {
    GTEST_SKIP() << "the run crossed midnight UTC: two budget periods";
  }
  const absl::Time reset = absl::FromCivil(day + 1, utc);
  const std::string reset_text =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", reset, utc);

  int64_t used = 0;
  int answered = 0, refused = 0;
  for (int c = 0; c < kClients; ++c) {
    const Client& client = clients[c];
    EXPECT_THAT(client.other_errors, ::testing::IsEmpty());
    used += client.used_tokens;
    answered += static_cast<int>(client.answered.size());
    refused += static_cast<int>(client.refusals.size());
    for (const CallOutcome& outcome : client.refusals) {
      EXPECT_THAT(outcome.status.error_message(),
                  HasSubstr(absl::StrCat("token budget exceeded: this API "
                                         "key's budget is ",
                                         kBudget, " tokens per day")));
      EXPECT_THAT(outcome.status.error_message(),
                  HasSubstr(absl::StrCat("the budget resets at ", reset_text)));
      ExpectRetryHints(outcome, reset - before);
    }
    // A refused turn never reached the provider and left no trace: the
    // session holds exactly the answered turns, in order.
    grpc::Status status;
    chat::v1::GetHistoryResponse history;
    {
      grpc::ClientContext context;
      context.AddMetadata("authorization", "Bearer " + *key);
      chat::v1::GetHistoryRequest request;
      request.set_session_id(absl::StrCat("budget-", c));
      status = replicas[c % 2]->GetHistory(&context, request, &history);
    }
    if (client.answered.empty()) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
      continue;
    }
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(history.messages_size(), 2 * client.answered.size());
    for (size_t i = 0; i < client.answered.size(); ++i) {
      EXPECT_EQ(history.messages(2 * i).content(), client.answered[i]);
    }
  }
  EXPECT_LE(used, kBudget);
  EXPECT_GT(answered, 0);
  EXPECT_GT(refused, 0) << "the budget was never reached; the test proves "
                           "nothing";
  EXPECT_EQ(answered + refused, kClients * kTurnsEach);
}

}  // namespace
}  // namespace chat
