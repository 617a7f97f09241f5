// Contract of QuotaStore, run against every store (memory, a SQLite file,
// SQLite in memory, and PostgreSQL when CHAT_TEST_POSTGRES_DSN is set) through
// ConversationStore::quotas().
//
// The promise that matters is exactness under concurrency across processes
// and replicas: the shared tests open two store instances on one database
// (two processes on one SQLite file, two replicas on one PostgreSQL) and
// race 8 threads, half on each instance, charging one unit at a time against
// a limit until refused. Exactly the limit must be accepted in total: an
// over-count would let two replicas both take the last unit, an under-count
// would refuse a caller with budget left. Threads start together on a
// notification; nothing sleeps.

#include "server/store/quota_store.h"

#include <atomic>
#include <cstdint>
#include <ostream>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/store/key_quota_stores.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_turns.h"

namespace chat::store {

// gtest prints these in failure messages (found by argument-dependent lookup,
// so here rather than in the unnamed namespace).
void PrintTo(const QuotaCharge& charge, std::ostream* os) {
  *os << "{accepted=" << charge.accepted << ", used=" << charge.used << "}";
}
void PrintTo(const UsageTotals& totals, std::ostream* os) {
  *os << "{" << totals.tenant << "/" << totals.key_id
      << " calls=" << totals.calls << " in=" << totals.input_tokens
      << " out=" << totals.output_tokens << "}";
}

namespace {

using ::chat::testing::At;
using ::chat::testing::IsOk;
using ::chat::testing::IsOkAndHolds;
using ::chat::testing::KeyQuotaStoreName;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::FieldsAre;
using ::testing::IsEmpty;

// Midnight UTC of day `n` after kT0's day (kT0 is not itself midnight).
absl::Time Day(int n) {
  const int64_t day_seconds = 24 * 60 * 60;
  const int64_t t0 = absl::ToUnixSeconds(::chat::testing::kT0);
  return absl::FromUnixSeconds((t0 / day_seconds + n) * day_seconds);
}

const QuotaCounter kRpm{"rpm/k1", At(60'000'000)};

// The limit the concurrent charges race against.
constexpr int64_t kLimit = 500;

class QuotaStoreTest : public ::chat::testing::KeyQuotaStoreTest {
 protected:
  QuotaStore& quotas(int i = 0) { return store(i).quotas(); }
};

TEST_P(QuotaStoreTest, AbsentCounterReadsZero) {
  EXPECT_THAT(quotas().Read(kRpm), IsOkAndHolds(0));
}

TEST_P(QuotaStoreTest, ChargeAcceptsUpToTheLimitThenRefuses) {
  EXPECT_THAT(quotas().Charge(kRpm, 4, 10), IsOkAndHolds(FieldsAre(true, 4)));
  // Reaching the limit exactly is allowed.
  EXPECT_THAT(quotas().Charge(kRpm, 6, 10), IsOkAndHolds(FieldsAre(true, 10)));
  EXPECT_THAT(quotas().Charge(kRpm, 1, 10), IsOkAndHolds(FieldsAre(false, 10)));
  EXPECT_THAT(quotas().Charge(kRpm, 0, 10), IsOkAndHolds(FieldsAre(true, 10)));
  EXPECT_THAT(quotas().Read(kRpm), IsOkAndHolds(10));
  // A larger limit (a key's limit raised) lets the same counter go on.
  EXPECT_THAT(quotas().Charge(kRpm, 5, 20), IsOkAndHolds(FieldsAre(true, 15)));
}

TEST_P(QuotaStoreTest, RefusedChargeAddsNothing) {
  ASSERT_THAT(quotas().Charge(kRpm, 7, 10), IsOkAndHolds(FieldsAre(true, 7)));
  EXPECT_THAT(quotas().Charge(kRpm, 4, 10), IsOkAndHolds(FieldsAre(false, 7)));
  EXPECT_THAT(quotas().Charge(kRpm, 3, 10), IsOkAndHolds(FieldsAre(true, 10)));
}

TEST_P(QuotaStoreTest, FirstChargeOverTheLimitIsRefused) {
  EXPECT_THAT(quotas().Charge(kRpm, 11, 10), IsOkAndHolds(FieldsAre(false, 0)));
  EXPECT_THAT(quotas().Read(kRpm), IsOkAndHolds(0));
  EXPECT_THAT(quotas().Charge(kRpm, 10, 10), IsOkAndHolds(FieldsAre(true, 10)));
}

TEST_P(QuotaStoreTest, NegativeChargeIsInvalid) {
  EXPECT_THAT(quotas().Charge(kRpm, -1, 10),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(quotas().Read(kRpm), IsOkAndHolds(0));
}

TEST_P(QuotaStoreTest, CountersAreNamedByScopeAndWindow) {
  const QuotaCounter next_window{"rpm/k1", At(120'000'000)};
  const QuotaCounter other_scope{"rpm/k2", At(60'000'000)};
  ASSERT_THAT(quotas().Charge(kRpm, 3, 10), IsOk());
  ASSERT_THAT(quotas().Charge(next_window, 5, 10), IsOk());
  ASSERT_THAT(quotas().Charge(other_scope, 7, 10), IsOk());
  EXPECT_THAT(quotas().Read(kRpm), IsOkAndHolds(3));
  EXPECT_THAT(quotas().Read(next_window), IsOkAndHolds(5));
  EXPECT_THAT(quotas().Read(other_scope), IsOkAndHolds(7));
  // Windows are told apart at microseconds.
  const QuotaCounter a_micro_later{"rpm/k1", At(60'000'001)};
  EXPECT_THAT(quotas().Read(a_micro_later), IsOkAndHolds(0));
}

TEST_P(QuotaStoreTest, AdjustAddsWithoutLimitAndNeverGoesBelowZero) {
  ASSERT_THAT(quotas().Adjust(kRpm, 5), IsOk());  // Creates the counter.
  EXPECT_THAT(quotas().Read(kRpm), IsOkAndHolds(5));
  ASSERT_THAT(quotas().Adjust(kRpm, -3), IsOk());
  EXPECT_THAT(quotas().Read(kRpm), IsOkAndHolds(2));
  ASSERT_THAT(quotas().Adjust(kRpm, -10), IsOk());
  EXPECT_THAT(quotas().Read(kRpm), IsOkAndHolds(0));
  // No limit applies, even past the one Charge uses.
  ASSERT_THAT(quotas().Adjust(kRpm, 50), IsOk());
  EXPECT_THAT(quotas().Charge(kRpm, 1, 10), IsOkAndHolds(FieldsAre(false, 50)));

  const QuotaCounter fresh{"tpm/k1", At(0)};
  ASSERT_THAT(quotas().Adjust(fresh, -4), IsOk());
  EXPECT_THAT(quotas().Read(fresh), IsOkAndHolds(0));
  EXPECT_THAT(quotas().Charge(fresh, 4, 4), IsOkAndHolds(FieldsAre(true, 4)));
}

TEST_P(QuotaStoreTest, DeleteCountersBeforeDropsOnlyOlderWindows) {
  const QuotaCounter old_a{"rpm/a", At(0)};
  const QuotaCounter old_b{"rpm/b", At(59'999'999)};
  const QuotaCounter edge{"rpm/a", At(60'000'000)};
  const QuotaCounter recent{"rpm/b", At(120'000'000)};
  for (const QuotaCounter& counter : {old_a, old_b, edge, recent}) {
    ASSERT_THAT(quotas().Charge(counter, 2, 10), IsOk());
  }
  // Strictly before the cutoff: the window starting at it stays.
  EXPECT_THAT(quotas().DeleteCountersBefore("rpm/", At(60'000'000)),
              IsOkAndHolds(2));
  EXPECT_THAT(quotas().Read(old_a), IsOkAndHolds(0));
  EXPECT_THAT(quotas().Read(old_b), IsOkAndHolds(0));
  EXPECT_THAT(quotas().Read(edge), IsOkAndHolds(2));
  EXPECT_THAT(quotas().Read(recent), IsOkAndHolds(2));
  EXPECT_THAT(quotas().DeleteCountersBefore("rpm/", At(60'000'000)),
              IsOkAndHolds(0));
  // Only the scopes named by the prefix go.
  const QuotaCounter other_scope{"budget-day/a", At(0)};
  ASSERT_THAT(quotas().Charge(other_scope, 3, 10), IsOk());
  EXPECT_THAT(quotas().DeleteCountersBefore("rpm/", At(60'000'000)),
              IsOkAndHolds(0));
  EXPECT_THAT(quotas().Read(other_scope), IsOkAndHolds(3));
  // A deleted counter starts again from zero.
  EXPECT_THAT(quotas().Charge(old_a, 10, 10),
              IsOkAndHolds(FieldsAre(true, 10)));
}

TEST_P(QuotaStoreTest, NoUsageIsEmpty) {
  EXPECT_THAT(quotas().AddUsage({}), IsOk());
  EXPECT_THAT(quotas().GetUsage("", "", Day(0), Day(10)),
              IsOkAndHolds(IsEmpty()));
}

TEST_P(QuotaStoreTest, UsageSumsPerTenantAndKeyOverTheDayRange) {
  ASSERT_THAT(quotas().AddUsage({
                  {"acme", "k1", Day(0), 1, 10, 20},
                  {"acme", "k1", Day(1), 2, 5, 5},
                  {"acme", "k2", Day(0), 1, 1, 1},
                  {"acme", "", Day(0), 1, 2, 3},  // Anonymous.
                  {"other", "k3", Day(0), 4, 40, 400},
                  // The same row twice in one call: both count.
                  {"acme", "k1", Day(0), 1, 1, 1},
              }),
              IsOk());
  // A later call adds to the same rows.
  ASSERT_THAT(quotas().AddUsage({{"acme", "k1", Day(2), 1, 100, 100},
                                 {"acme", "k1", Day(0), 1, 1, 1}}),
              IsOk());

  // One tenant, every key, ordered by key_id ("" first).
  EXPECT_THAT(quotas().GetUsage("acme", "", Day(0), Day(3)),
              IsOkAndHolds(ElementsAre(FieldsAre("acme", "", 1, 2, 3, 0),
                                       FieldsAre("acme", "k1", 6, 117, 127, 0),
                                       FieldsAre("acme", "k2", 1, 1, 1, 0))));
  // Every tenant, ordered by tenant.
  EXPECT_THAT(
      quotas().GetUsage("", "", Day(0), Day(1)),
      IsOkAndHolds(ElementsAre(FieldsAre("acme", "", 1, 2, 3, 0),
                               FieldsAre("acme", "k1", 3, 12, 22, 0),
                               FieldsAre("acme", "k2", 1, 1, 1, 0),
                               FieldsAre("other", "k3", 4, 40, 400, 0))));
  // One key; `until` is exclusive, `since` inclusive.
  EXPECT_THAT(quotas().GetUsage("acme", "k1", Day(1), Day(2)),
              IsOkAndHolds(ElementsAre(FieldsAre("acme", "k1", 2, 5, 5, 0))));
  EXPECT_THAT(
      quotas().GetUsage("acme", "k1", Day(1), Day(3)),
      IsOkAndHolds(ElementsAre(FieldsAre("acme", "k1", 3, 105, 105, 0))));
  // A key id on its own matches across tenants.
  EXPECT_THAT(
      quotas().GetUsage("", "k3", Day(0), Day(3)),
      IsOkAndHolds(ElementsAre(FieldsAre("other", "k3", 4, 40, 400, 0))));
  EXPECT_THAT(quotas().GetUsage("other", "k1", Day(0), Day(3)),
              IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(quotas().GetUsage("acme", "", Day(3), Day(10)),
              IsOkAndHolds(IsEmpty()));
}

TEST_P(QuotaStoreTest, UsageSumsCost) {
  UsageDelta first{"acme", "k1", Day(0), 1, 10, 20};
  first.cost_usd = 0.5;
  UsageDelta second{"acme", "k1", Day(1), 1, 10, 20};
  second.cost_usd = 0.25;
  UsageDelta unpriced{"acme", "k2", Day(0), 1, 10, 20};
  ASSERT_THAT(quotas().AddUsage({first, second, unpriced}), IsOk());
  ASSERT_THAT(quotas().AddUsage({first}), IsOk());
  EXPECT_THAT(quotas().GetUsage("acme", "", Day(0), Day(3)),
              IsOkAndHolds(ElementsAre(FieldsAre("acme", "k1", 3, 30, 60, 1.25),
                                       FieldsAre("acme", "k2", 1, 10, 20, 0))));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, QuotaStoreTest,
    ::testing::ValuesIn(::chat::testing::AllKeyQuotaStores()),
    KeyQuotaStoreName);

class SharedQuotaStoreTest : public ::chat::testing::SharedKeyQuotaStoreTest {
 protected:
  QuotaStore& quotas(int i) { return store(i).quotas(); }
};

TEST_P(SharedQuotaStoreTest, ConcurrentChargesAcceptExactlyTheLimit) {
  constexpr int kThreads = 8;
  absl::Notification start;
  std::atomic<int64_t> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &start, &accepted] {
      QuotaStore& quotas = this->quotas(t % 2);
      start.WaitForNotification();
      // Each accepted charge adds 1, so at most kLimit + 1 rounds.
      for (int64_t i = 0; i <= kLimit; ++i) {
        absl::StatusOr<QuotaCharge> charge = quotas.Charge(kRpm, 1, kLimit);
        ASSERT_THAT(charge, IsOk());
        if (!charge->accepted) {
          // Refused only once the counter is full.
          EXPECT_EQ(charge->used, kLimit);
          return;
        }
        EXPECT_LE(charge->used, kLimit);
        accepted.fetch_add(1);
      }
      ADD_FAILURE() << "thread " << t << " was never refused";
    });
  }
  start.Notify();
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(accepted.load(), kLimit);
  EXPECT_THAT(quotas(0).Read(kRpm), IsOkAndHolds(kLimit));
  EXPECT_THAT(quotas(1).Read(kRpm), IsOkAndHolds(kLimit));
}

TEST_P(SharedQuotaStoreTest, CountersAndUsageAreShared) {
  ASSERT_THAT(quotas(0).Charge(kRpm, 6, 10), IsOkAndHolds(FieldsAre(true, 6)));
  EXPECT_THAT(quotas(1).Read(kRpm), IsOkAndHolds(6));
  EXPECT_THAT(quotas(1).Charge(kRpm, 5, 10), IsOkAndHolds(FieldsAre(false, 6)));
  ASSERT_THAT(quotas(1).Adjust(kRpm, -2), IsOk());
  EXPECT_THAT(quotas(0).Charge(kRpm, 6, 10), IsOkAndHolds(FieldsAre(true, 10)));

  ASSERT_THAT(quotas(0).AddUsage({{"acme", "k1", Day(0), 1, 10, 20}}), IsOk());
  ASSERT_THAT(quotas(1).AddUsage({{"acme", "k1", Day(0), 2, 1, 2}}), IsOk());
  EXPECT_THAT(quotas(0).GetUsage("acme", "k1", Day(0), Day(1)),
              IsOkAndHolds(ElementsAre(FieldsAre("acme", "k1", 3, 11, 22, 0))));

  EXPECT_THAT(quotas(1).DeleteCountersBefore("rpm/", At(60'000'001)),
              IsOkAndHolds(1));
  EXPECT_THAT(quotas(0).Read(kRpm), IsOkAndHolds(0));
}

INSTANTIATE_TEST_SUITE_P(
    SharedStores, SharedQuotaStoreTest,
    ::testing::ValuesIn(::chat::testing::SharedKeyQuotaStores()),
    KeyQuotaStoreName);

}  // namespace
}  // namespace chat::store
