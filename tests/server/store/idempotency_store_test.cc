// Contract of IdempotencyStore, run against every store (memory, a SQLite
// file, SQLite in memory, and PostgreSQL when CHAT_TEST_POSTGRES_DSN is set)
// through ConversationStore::idempotency().
//
// What matters is that a claim is exclusive across replicas: the shared test
// opens two store instances on one database and races 8 threads, half on
// each, claiming one id; exactly one may win, and the others must see its
// record. The rest pins the record's life: answered, released, expired,
// taken over when stale, swept in bounded batches. Threads start together on
// a notification; nothing sleeps (times are passed in, never read).

#include "server/store/idempotency_store.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/conversation_store.h"
#include "tests/server/store/key_quota_stores.h"
#include "tests/testing/status_matchers.h"

namespace chat::store {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::IsOkAndHolds;
using ::chat::testing::KeyQuotaStoreName;
using ::chat::testing::StatusIs;

// A StoredTurn that leaves its session with `count` turns.
::testing::Matcher<StoredTurn> TurnCountIs(int count) {
  return ::testing::Field(&StoredTurn::turn_count, count);
}

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
const absl::Time kExpires = kNow + absl::Hours(24);
// Claims made at kNow are not stale for a caller whose cutoff is this.
const absl::Time kNotStale = kNow - absl::Minutes(10);
const RequestKey kKey{"acme", "req-1"};

IdempotentAnswer Answer() {
  IdempotentAnswer answer;
  answer.session_id = "s1";
  answer.response = std::string("Echo: hi\0there", 14);
  answer.timestamp = kNow + absl::Microseconds(123);
  answer.turn_count = 3;
  answer.model = "echo";
  answer.stop_reason = "end_turn";
  answer.input_tokens = 7;
  answer.output_tokens = 9;
  answer.cost_usd = 0.25;
  return answer;
}

class IdempotencyStoreTest : public ::chat::testing::KeyQuotaStoreTest {
 protected:
  IdempotencyStore& ids(int i = 0) {
    IdempotencyStore* ids = store(i).idempotency();
    EXPECT_NE(ids, nullptr);
    return *ids;
  }
  absl::StatusOr<ClaimResult> Claim(const RequestKey& key,
                                    const std::string& fingerprint,
                                    const std::string& owner,
                                    absl::Time now = kNow,
                                    absl::Time stale_before = kNotStale,
                                    int i = 0) {
    return ids(i).Claim(key, fingerprint, owner, now, now + absl::Hours(24),
                        stale_before);
  }
};

TEST_P(IdempotencyStoreTest, FirstClaimWinsAndTheSecondSeesItRunning) {
  absl::StatusOr<ClaimResult> first = Claim(kKey, "fp", "owner-a");
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(first->claimed);
  absl::StatusOr<ClaimResult> second = Claim(kKey, "fp", "owner-b");
  ASSERT_THAT(second, IsOk());
  EXPECT_FALSE(second->claimed);
  EXPECT_EQ(second->existing.fingerprint, "fp");
  EXPECT_EQ(second->existing.owner, "owner-a");
  EXPECT_EQ(second->existing.expires_at, kExpires);
  EXPECT_FALSE(second->existing.answer.has_value());
}

TEST_P(IdempotencyStoreTest, CompletedAnswerReadsBackWhole) {
  ASSERT_THAT(Claim(kKey, "fp", "owner-a"), IsOk());
  EXPECT_THAT(ids().Complete(kKey, "owner-b", Answer()), IsOkAndHolds(false));
  EXPECT_THAT(ids().Complete(kKey, "owner-a", Answer()), IsOkAndHolds(true));
  absl::StatusOr<ClaimResult> repeat = Claim(kKey, "other-fp", "owner-c");
  ASSERT_THAT(repeat, IsOk());
  EXPECT_FALSE(repeat->claimed);
  EXPECT_EQ(repeat->existing.fingerprint, "fp");
  ASSERT_TRUE(repeat->existing.answer.has_value());
  const IdempotentAnswer& got = *repeat->existing.answer;
  const IdempotentAnswer want = Answer();
  EXPECT_EQ(got.session_id, want.session_id);
  EXPECT_EQ(got.response, want.response);
  EXPECT_EQ(got.timestamp, want.timestamp);
  EXPECT_EQ(got.turn_count, want.turn_count);
  EXPECT_EQ(got.model, want.model);
  EXPECT_EQ(got.stop_reason, want.stop_reason);
  EXPECT_EQ(got.input_tokens, want.input_tokens);
  EXPECT_EQ(got.output_tokens, want.output_tokens);
  EXPECT_EQ(got.cost_usd, want.cost_usd);
  absl::StatusOr<RequestRecord> looked = ids().Lookup(kKey, kNow);
  ASSERT_THAT(looked, IsOk());
  EXPECT_TRUE(looked->answer.has_value());
  // An answered record is not released.
  EXPECT_THAT(ids().Release(kKey, "owner-a"), IsOk());
  EXPECT_THAT(ids().Lookup(kKey, kNow), IsOk());
}

// The turn of a claimed id: AppendTurn writes the turn and the id's answer
// in one transaction (store::Turn::answers), so no crash between two writes
// can keep the turn and leave the id running.
Turn TurnAnswering(const RequestClaim& claim) {
  Turn turn;
  turn.user_message = "hi";
  turn.assistant_message = "Echo: hi";
  turn.model = "echo";
  turn.stop_reason = "end_turn";
  turn.input_tokens = 4;
  turn.output_tokens = 2;
  turn.cost_usd = 0.5;
  turn.created_at = kNow + absl::Seconds(1);
  turn.answers = claim;
  return turn;
}

TEST_P(IdempotencyStoreTest, AppendTurnStoresTheAnswerWithTheTurn) {
  ASSERT_THAT(Claim(kKey, "fp", "owner-a"), IsOk());
  const SessionKey session{"acme", "s1"};
  const Turn turn = TurnAnswering({kKey, "owner-a"});
  ASSERT_THAT(store().AppendTurn(session, 0, "sys", turn),
              IsOkAndHolds(TurnCountIs(1)));
  absl::StatusOr<RequestRecord> record = ids().Lookup(kKey, kNow);
  ASSERT_THAT(record, IsOk());
  ASSERT_TRUE(record->answer.has_value());
  EXPECT_EQ(record->owner, "owner-a");
  const IdempotentAnswer& got = *record->answer;
  EXPECT_EQ(got.session_id, "s1");
  EXPECT_EQ(got.response, "Echo: hi");
  EXPECT_EQ(got.timestamp, turn.created_at);
  EXPECT_EQ(got.turn_count, 1);
  EXPECT_EQ(got.model, "echo");
  EXPECT_EQ(got.stop_reason, "end_turn");
  EXPECT_EQ(got.input_tokens, 4);
  EXPECT_EQ(got.output_tokens, 2);
  EXPECT_EQ(got.cost_usd, 0.5);
  // The second turn of a session counts from the stored ones.
  ASSERT_THAT(Claim({"acme", "req-2"}, "fp", "owner-a"), IsOk());
  ASSERT_THAT(store().AppendTurn(session, 1, "sys",
                                 TurnAnswering({{"acme", "req-2"}, "owner-a"})),
              IsOkAndHolds(TurnCountIs(2)));
  record = ids().Lookup({"acme", "req-2"}, kNow);
  ASSERT_THAT(record, IsOk());
  ASSERT_TRUE(record->answer.has_value());
  EXPECT_EQ(record->answer->turn_count, 2);
}

TEST_P(IdempotencyStoreTest, AppendTurnOfALostClaimStoresNothing) {
  ASSERT_THAT(Claim(kKey, "fp", "owner-a"), IsOk());
  // owner-a's claim went stale and owner-b took the id over.
  const absl::Time later = kNow + absl::Minutes(20);
  absl::StatusOr<ClaimResult> takeover =
      Claim(kKey, "fp", "owner-b", later, later - absl::Minutes(10));
  ASSERT_THAT(takeover, IsOk());
  ASSERT_TRUE(takeover->claimed);
  const SessionKey fresh{"acme", "s-new"};
  EXPECT_THAT(
      store().AppendTurn(fresh, 0, "sys", TurnAnswering({kKey, "owner-a"})),
      StatusIs(absl::StatusCode::kFailedPrecondition));
  // Neither the session nor the turn exists; the id is still owner-b's,
  // running.
  EXPECT_THAT(store().GetSession(fresh), StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<RequestRecord> record = ids().Lookup(kKey, later);
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(record->owner, "owner-b");
  EXPECT_FALSE(record->answer.has_value());
  // An existing session keeps its turns as they were.
  const SessionKey existing{"acme", "s-old"};
  Turn plain = TurnAnswering({kKey, "owner-a"});
  plain.answers.reset();
  ASSERT_THAT(store().AppendTurn(existing, 0, "sys", plain),
              IsOkAndHolds(TurnCountIs(1)));
  EXPECT_THAT(
      store().AppendTurn(existing, 1, "sys", TurnAnswering({kKey, "owner-a"})),
      StatusIs(absl::StatusCode::kFailedPrecondition));
  absl::StatusOr<std::vector<StoredMessage>> history =
      store().LoadHistory(existing);
  ASSERT_THAT(history, IsOk());
  EXPECT_EQ(history->size(), 2u);
  absl::StatusOr<SessionInfo> info = store().GetSession(existing);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->turn_count, 1);
  // The owner's own turn goes in, with its answer.
  EXPECT_THAT(
      store().AppendTurn(existing, 1, "sys", TurnAnswering({kKey, "owner-b"})),
      IsOkAndHolds(TurnCountIs(2)));
  record = ids().Lookup(kKey, later);
  ASSERT_THAT(record, IsOk());
  ASSERT_TRUE(record->answer.has_value());
  EXPECT_EQ(record->answer->turn_count, 2);
}

TEST_P(IdempotencyStoreTest, IdsArePerTenant) {
  ASSERT_THAT(Claim(kKey, "fp", "owner-a"), IsOk());
  absl::StatusOr<ClaimResult> other =
      Claim({"globex", kKey.request_id}, "fp2", "owner-b");
  ASSERT_THAT(other, IsOk());
  EXPECT_TRUE(other->claimed);
}

TEST_P(IdempotencyStoreTest, ReleasedIdIsFreeAgainButOnlyByItsOwner) {
  ASSERT_THAT(Claim(kKey, "fp", "owner-a"), IsOk());
  ASSERT_THAT(ids().Release(kKey, "owner-b"), IsOk());
  EXPECT_THAT(ids().Lookup(kKey, kNow), IsOk());
  ASSERT_THAT(ids().Release(kKey, "owner-a"), IsOk());
  EXPECT_THAT(ids().Lookup(kKey, kNow), StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<ClaimResult> again = Claim(kKey, "fp", "owner-b");
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again->claimed);
}

TEST_P(IdempotencyStoreTest, ExpiredRecordIsReplaced) {
  ASSERT_THAT(Claim(kKey, "fp", "owner-a"), IsOk());
  ASSERT_THAT(ids().Complete(kKey, "owner-a", Answer()), IsOk());
  EXPECT_THAT(ids().Lookup(kKey, kExpires),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<ClaimResult> later =
      Claim(kKey, "other-fp", "owner-b", kExpires, kExpires - absl::Hours(1));
  ASSERT_THAT(later, IsOk());
  EXPECT_TRUE(later->claimed);
  absl::StatusOr<RequestRecord> record = ids().Lookup(kKey, kExpires);
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(record->fingerprint, "other-fp");
  EXPECT_FALSE(record->answer.has_value());
}

TEST_P(IdempotencyStoreTest, StaleClaimIsTakenOverOnlyWithTheSameFingerprint) {
  ASSERT_THAT(Claim(kKey, "fp", "owner-a"), IsOk());
  const absl::Time later = kNow + absl::Minutes(20);
  const absl::Time stale_before = later - absl::Minutes(10);
  absl::StatusOr<ClaimResult> other =
      Claim(kKey, "other-fp", "owner-b", later, stale_before);
  ASSERT_THAT(other, IsOk());
  EXPECT_FALSE(other->claimed);
  absl::StatusOr<ClaimResult> same =
      Claim(kKey, "fp", "owner-c", later, stale_before);
  ASSERT_THAT(same, IsOk());
  EXPECT_TRUE(same->claimed);
  // The first owner's late answer is not stored over the new claim.
  EXPECT_THAT(ids().Complete(kKey, "owner-a", Answer()), IsOkAndHolds(false));
}

TEST_P(IdempotencyStoreTest, SweepDeletesExpiredRecordsInBoundedBatches) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(Claim({"acme", absl::StrCat("old-", i)}, "fp", "o"), IsOk());
  }
  ASSERT_THAT(Claim({"acme", "new"}, "fp", "o", kNow + absl::Hours(1)), IsOk());
  EXPECT_THAT(ids().DeleteExpired(kExpires, 3), IsOkAndHolds(3));
  EXPECT_THAT(ids().DeleteExpired(kExpires, 3), IsOkAndHolds(2));
  EXPECT_THAT(ids().DeleteExpired(kExpires, 3), IsOkAndHolds(0));
  EXPECT_THAT(ids().Lookup({"acme", "new"}, kExpires), IsOk());
  EXPECT_THAT(ids().DeleteExpired(kExpires, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, IdempotencyStoreTest,
    ::testing::ValuesIn(::chat::testing::AllKeyQuotaStores()),
    KeyQuotaStoreName);

class SharedIdempotencyStoreTest
    : public ::chat::testing::SharedKeyQuotaStoreTest {};

TEST_P(SharedIdempotencyStoreTest, ExactlyOneOfConcurrentClaimsWins) {
  constexpr int kThreads = 8;
  for (int round = 0; round < 5; ++round) {
    const RequestKey key{"acme", absl::StrCat("race-", round)};
    absl::Notification go;
    std::atomic<int> won{0};
    std::atomic<int> saw_record{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        go.WaitForNotification();
        absl::StatusOr<ClaimResult> claim = store(t % 2).idempotency()->Claim(
            key, "fp", absl::StrCat("o", t), kNow, kExpires, kNotStale);
        ASSERT_THAT(claim, IsOk());
        if (claim->claimed) {
          ++won;
        } else if (claim->existing.fingerprint == "fp") {
          ++saw_record;
        }
      });
    }
    go.Notify();
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(won.load(), 1);
    EXPECT_EQ(saw_record.load(), kThreads - 1);
  }
}

INSTANTIATE_TEST_SUITE_P(
    SharedStores, SharedIdempotencyStoreTest,
    ::testing::ValuesIn(::chat::testing::SharedKeyQuotaStores()),
    KeyQuotaStoreName);

}  // namespace
}  // namespace chat::store
