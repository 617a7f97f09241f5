// Contract of StreamStore, run against every store (memory, a SQLite file,
// SQLite in memory, and PostgreSQL when CHAT_TEST_POSTGRES_DSN is set)
// through ConversationStore::streams(), and across two instances of one
// database: what one replica appends, another reads.
//
// Pins: deltas read back in order from any point, bytes intact; a retried
// batch adds nothing twice; the outcome is set once; the latest answer of a
// session; tenants apart; the cancel flag and the reader stamp reach the
// writer; expiry and the sweep. Times are passed in, never read.

#include "server/store/stream_store.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/store/key_quota_stores.h"
#include "tests/testing/status_matchers.h"

namespace chat::store {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::IsOkAndHolds;
using ::chat::testing::KeyQuotaStoreName;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;

const absl::Time kNow = absl::FromUnixSeconds(1'700'000'000);
const SessionKey kSession{"acme", "s1"};

StreamAppend Batch(const std::string& id, int64_t first_seq,
                   std::vector<std::string> deltas,
                   absl::Time started_at = kNow) {
  StreamAppend append;
  append.session = kSession;
  append.answer_id = id;
  append.started_at = started_at;
  append.first_seq = first_seq;
  append.deltas = std::move(deltas);
  append.expires_at = kNow + absl::Minutes(1);
  return append;
}

class StreamStoreTest : public ::chat::testing::KeyQuotaStoreTest {
 protected:
  StreamStore& streams(int i = 0) {
    StreamStore* streams = store(i).streams();
    EXPECT_NE(streams, nullptr);
    return *streams;
  }
};

TEST_P(StreamStoreTest, DeltasReadBackInOrderFromAnyPoint) {
  ASSERT_THAT(streams().AppendStream(Batch("a1", 1, {"one ", "two "})), IsOk());
  ASSERT_THAT(streams().AppendStream(
                  Batch("a1", 3, {std::string("thr\0ee", 6), "\xe2\x82"})),
              IsOk());
  absl::StatusOr<StreamRead> all =
      streams().ReadStream(kSession, "a1", 0, kNow, std::nullopt);
  ASSERT_THAT(all, IsOk());
  EXPECT_EQ(all->answer_id, "a1");
  EXPECT_THAT(all->deltas, ElementsAre("one ", "two ",
                                       std::string("thr\0ee", 6), "\xe2\x82"));
  EXPECT_FALSE(all->outcome.has_value());
  absl::StatusOr<StreamRead> rest =
      streams().ReadStream(kSession, "a1", 2, kNow, std::nullopt);
  ASSERT_THAT(rest, IsOk());
  EXPECT_EQ(rest->deltas.size(), 2u);
  EXPECT_EQ(rest->deltas[0], std::string("thr\0ee", 6));
}

TEST_P(StreamStoreTest, ARetriedBatchAndASecondOutcomeChangeNothing) {
  ASSERT_THAT(streams().AppendStream(Batch("a1", 1, {"x", "y"})), IsOk());
  ASSERT_THAT(streams().AppendStream(Batch("a1", 1, {"x", "y", "z"})), IsOk());
  StreamAppend end = Batch("a1", 4, {});
  end.outcome = StreamOutcome{0, "", "the done event"};
  ASSERT_THAT(streams().AppendStream(end), IsOk());
  end.outcome = StreamOutcome{1, "cancelled", ""};
  ASSERT_THAT(streams().AppendStream(end), IsOk());
  absl::StatusOr<StreamRead> read =
      streams().ReadStream(kSession, "a1", 0, kNow, std::nullopt);
  ASSERT_THAT(read, IsOk());
  EXPECT_THAT(read->deltas, ElementsAre("x", "y", "z"));
  ASSERT_TRUE(read->outcome.has_value());
  EXPECT_EQ(read->outcome->status_code, 0);
  EXPECT_EQ(read->outcome->done, "the done event");
}

TEST_P(StreamStoreTest, NoIdReadsTheSessionsLatestAnswer) {
  ASSERT_THAT(streams().AppendStream(Batch("old", 1, {"a"}, kNow)), IsOk());
  ASSERT_THAT(
      streams().AppendStream(Batch("new", 1, {"b"}, kNow + absl::Seconds(1))),
      IsOk());
  absl::StatusOr<StreamRead> latest =
      streams().ReadStream(kSession, "", 0, kNow, std::nullopt);
  ASSERT_THAT(latest, IsOk());
  EXPECT_EQ(latest->answer_id, "new");
  EXPECT_THAT(latest->deltas, ElementsAre("b"));
}

TEST_P(StreamStoreTest, AnswersArePerTenantAndSession) {
  ASSERT_THAT(streams().AppendStream(Batch("a1", 1, {"a"})), IsOk());
  EXPECT_THAT(
      streams().ReadStream({"globex", "s1"}, "a1", 0, kNow, std::nullopt),
      StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(streams().ReadStream({"acme", "s2"}, "", 0, kNow, std::nullopt),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(streams().RequestCancel({"globex", "s1"}, kNow),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StreamStoreTest, CancelFlagAndReaderStampReachTheWriter) {
  ASSERT_THAT(streams().AppendStream(Batch("a1", 1, {"a"})), IsOk());
  ASSERT_THAT(
      streams().ReadStream(kSession, "a1", 0, kNow, kNow + absl::Seconds(5)),
      IsOk());
  EXPECT_THAT(streams().RequestCancel(kSession, kNow), IsOkAndHolds("a1"));
  absl::StatusOr<StreamControl> control =
      streams().AppendStream(Batch("a1", 2, {}));
  ASSERT_THAT(control, IsOk());
  EXPECT_TRUE(control->cancel_requested);
  EXPECT_EQ(control->reader_seen_at, kNow + absl::Seconds(5));
  // An ended answer is not running: nothing to cancel.
  StreamAppend end = Batch("a1", 2, {});
  end.outcome = StreamOutcome{1, "cancelled", ""};
  ASSERT_THAT(streams().AppendStream(end), IsOk());
  EXPECT_THAT(streams().RequestCancel(kSession, kNow),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(StreamStoreTest, ExpiredAnswersAreGoneAndSwept) {
  ASSERT_THAT(streams().AppendStream(Batch("a1", 1, {"a"})), IsOk());
  const absl::Time later = kNow + absl::Minutes(2);
  EXPECT_THAT(streams().ReadStream(kSession, "a1", 0, later, std::nullopt),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(streams().DeleteExpiredStreams(later, 10), IsOkAndHolds(1));
  EXPECT_THAT(streams().DeleteExpiredStreams(later, 10), IsOkAndHolds(0));
  EXPECT_THAT(streams().DeleteExpiredStreams(later, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, StreamStoreTest,
    ::testing::ValuesIn(::chat::testing::AllKeyQuotaStores()),
    KeyQuotaStoreName);

class SharedStreamStoreTest : public ::chat::testing::SharedKeyQuotaStoreTest {
};

// Two instances on one database: what replica A writes, replica B reads,
// and B's cancel reaches A.
TEST_P(SharedStreamStoreTest, WhatOneReplicaAppendsTheOtherReads) {
  StreamStore* a = store(0).streams();
  StreamStore* b = store(1).streams();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_THAT(a->AppendStream(Batch("a1", 1, {"hello ", "world"})), IsOk());
  absl::StatusOr<StreamRead> read =
      b->ReadStream(kSession, "a1", 1, kNow, std::nullopt);
  ASSERT_THAT(read, IsOk());
  EXPECT_THAT(read->deltas, ElementsAre("world"));
  EXPECT_THAT(b->RequestCancel(kSession, kNow), IsOkAndHolds("a1"));
  absl::StatusOr<StreamControl> control = a->AppendStream(Batch("a1", 3, {}));
  ASSERT_THAT(control, IsOk());
  EXPECT_TRUE(control->cancel_requested);
  EXPECT_FALSE(read->outcome.has_value());
}

INSTANTIATE_TEST_SUITE_P(
    SharedStores, SharedStreamStoreTest,
    ::testing::ValuesIn(::chat::testing::SharedKeyQuotaStores()),
    KeyQuotaStoreName);

}  // namespace
}  // namespace chat::store
