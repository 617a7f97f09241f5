// Contract of KeyStore, run against every store (memory, a SQLite file,
// SQLite in memory, and PostgreSQL when CHAT_TEST_POSTGRES_DSN is set) through
// ConversationStore::keys(), so the tests state the contract and nothing
// else. Every field is compared after a round trip, times at whole
// microseconds (the precision every store keeps); the SQL stores must give
// back exactly what the memory store does.
//
// The shared tests open two store instances on one database (two processes
// on one SQLite file, two replicas on one PostgreSQL) and check that a key
// written through one is read and revoked through the other: nothing about
// keys is cached in a store instance.

#include "server/store/key_store.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/store/key_quota_stores.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_turns.h"

namespace chat::store {
namespace {

using ::chat::testing::At;
using ::chat::testing::IsOk;
using ::chat::testing::IsOkAndHolds;
using ::chat::testing::KeyQuotaStoreName;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A key with every field set to something a default would not produce.
ApiKey FullKey(std::string id, std::string tenant, absl::Time created_at) {
  ApiKey key;
  key.id = std::move(id);
  key.tenant = std::move(tenant);
  key.name = "web frontend";
  key.secret_hash =
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  key.created_at = created_at;
  key.expires_at = created_at + absl::Hours(720) + absl::Microseconds(7);
  key.limits.requests_per_minute = 60;
  key.limits.tokens_per_minute = 40'000;
  key.limits.max_streams = 3;
  key.limits.max_tokens = 4096;
  key.limits.allowed_models = {"claude-sonnet-4-5", "gpt-4o-mini"};
  key.limits.budget_tokens = 5'000'000'000;  // Past 32 bits.
  key.limits.budget_period = BudgetPeriod::kMonth;
  return key;
}

// A key with nothing but its identity: no expiry, no limits.
ApiKey PlainKey(std::string id, std::string tenant, absl::Time created_at) {
  ApiKey key;
  key.id = std::move(id);
  key.tenant = std::move(tenant);
  key.name = "plain";
  key.secret_hash = "00";
  key.created_at = created_at;
  return key;
}

void ExpectSameKey(const ApiKey& actual, const ApiKey& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.tenant, expected.tenant);
  EXPECT_EQ(actual.name, expected.name);
  EXPECT_EQ(actual.secret_hash, expected.secret_hash);
  EXPECT_EQ(actual.created_at, expected.created_at);
  EXPECT_EQ(actual.expires_at, expected.expires_at);
  EXPECT_EQ(actual.revoked_at, expected.revoked_at);
  const KeyLimits& a = actual.limits;
  const KeyLimits& e = expected.limits;
  EXPECT_EQ(a.requests_per_minute, e.requests_per_minute);
  EXPECT_EQ(a.tokens_per_minute, e.tokens_per_minute);
  EXPECT_EQ(a.max_streams, e.max_streams);
  EXPECT_EQ(a.max_tokens, e.max_tokens);
  EXPECT_EQ(a.allowed_models, e.allowed_models);
  EXPECT_EQ(a.budget_tokens, e.budget_tokens);
  EXPECT_EQ(a.budget_period, e.budget_period);
}

std::vector<std::string> Ids(const std::vector<ApiKey>& keys) {
  std::vector<std::string> ids;
  for (const ApiKey& key : keys) ids.push_back(key.id);
  return ids;
}

class KeyStoreTest : public ::chat::testing::KeyQuotaStoreTest {
 protected:
  KeyStore& keys(int i = 0) { return store(i).keys(); }
};

TEST_P(KeyStoreTest, UnknownKeyIsNotFound) {
  EXPECT_THAT(keys().GetKey("nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(keys().ListKeys(""), IsOkAndHolds(IsEmpty()));
  EXPECT_THAT(keys().RevokeKey("nope", At(1)), IsOkAndHolds(false));
  EXPECT_THAT(keys().HasActiveKeys(At(1)), IsOkAndHolds(false));
}

TEST_P(KeyStoreTest, EveryFieldRoundTrips) {
  const ApiKey full = FullKey("k1", "acme", At(123'457));
  ASSERT_THAT(keys().CreateKey(full), IsOk());
  absl::StatusOr<ApiKey> got = keys().GetKey("k1");
  ASSERT_THAT(got, IsOk());
  ExpectSameKey(*got, full);
}

TEST_P(KeyStoreTest, DefaultsRoundTrip) {
  // No expiry, not revoked, no limits, no models, no budget period.
  const ApiKey plain = PlainKey("k1", "acme", At(0));
  ASSERT_THAT(keys().CreateKey(plain), IsOk());
  absl::StatusOr<ApiKey> got = keys().GetKey("k1");
  ASSERT_THAT(got, IsOk());
  ExpectSameKey(*got, plain);
  EXPECT_EQ(got->expires_at, absl::InfiniteFuture());
  EXPECT_EQ(got->revoked_at, absl::InfiniteFuture());
  EXPECT_THAT(got->limits.allowed_models, IsEmpty());
}

TEST_P(KeyStoreTest, OneAllowedModelAndBudgetPerDayRoundTrip) {
  ApiKey key = PlainKey("k1", "acme", At(0));
  key.limits.allowed_models = {"m"};
  key.limits.budget_tokens = 1000;
  key.limits.budget_period = BudgetPeriod::kDay;
  ASSERT_THAT(keys().CreateKey(key), IsOk());
  absl::StatusOr<ApiKey> got = keys().GetKey("k1");
  ASSERT_THAT(got, IsOk());
  ExpectSameKey(*got, key);
}

TEST_P(KeyStoreTest, TimesKeepTheirMicroseconds) {
  // Before the epoch too: negative microseconds must not be rounded.
  ApiKey key = PlainKey("k1", "acme", absl::FromUnixMicros(-1'234'567));
  key.expires_at = absl::FromUnixMicros(1'700'000'000'123'457);
  key.revoked_at = absl::FromUnixMicros(1'700'000'000'000'001);
  ASSERT_THAT(keys().CreateKey(key), IsOk());
  absl::StatusOr<ApiKey> got = keys().GetKey("k1");
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->created_at, key.created_at);
  EXPECT_EQ(got->expires_at, key.expires_at);
  EXPECT_EQ(got->revoked_at, key.revoked_at);
}

TEST_P(KeyStoreTest, DuplicateIdIsAlreadyExistsAndKeepsTheFirst) {
  const ApiKey first = FullKey("k1", "acme", At(1));
  ASSERT_THAT(keys().CreateKey(first), IsOk());
  EXPECT_THAT(keys().CreateKey(PlainKey("k1", "other", At(2))),
              StatusIs(absl::StatusCode::kAlreadyExists));
  absl::StatusOr<ApiKey> got = keys().GetKey("k1");
  ASSERT_THAT(got, IsOk());
  ExpectSameKey(*got, first);
  EXPECT_THAT(keys().ListKeys(""), IsOkAndHolds(::testing::SizeIs(1)));
}

TEST_P(KeyStoreTest, KeysThatCannotRoundTripAreRejected) {
  ApiKey newline = PlainKey("k1", "acme", At(0));
  newline.limits.allowed_models = {"a\nb"};
  ApiKey empty_model = PlainKey("k2", "acme", At(0));
  empty_model.limits.allowed_models = {"a", ""};
  ApiKey nul = PlainKey("k3", "acme", At(0));
  nul.name = std::string("a\0b", 3);
  for (const ApiKey& key : {newline, empty_model, nul}) {
    SCOPED_TRACE(key.id);
    EXPECT_THAT(keys().CreateKey(key),
                StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(keys().GetKey(key.id), StatusIs(absl::StatusCode::kNotFound));
  }
}

TEST_P(KeyStoreTest, ListKeysOldestFirstTiesById) {
  ASSERT_THAT(keys().CreateKey(PlainKey("c", "acme", At(5))), IsOk());
  ASSERT_THAT(keys().CreateKey(PlainKey("a", "acme", At(5))), IsOk());
  ASSERT_THAT(keys().CreateKey(PlainKey("b", "acme", At(1))), IsOk());
  ASSERT_THAT(keys().CreateKey(PlainKey("d", "other", At(3))), IsOk());
  // Upper case sorts before lower case byte-wise, whatever a locale says.
  ASSERT_THAT(keys().CreateKey(PlainKey("Z", "acme", At(5))), IsOk());

  absl::StatusOr<std::vector<ApiKey>> acme = keys().ListKeys("acme");
  ASSERT_THAT(acme, IsOk());
  EXPECT_THAT(Ids(*acme), ElementsAre("b", "Z", "a", "c"));
  absl::StatusOr<std::vector<ApiKey>> all = keys().ListKeys("");
  ASSERT_THAT(all, IsOk());
  EXPECT_THAT(Ids(*all), ElementsAre("b", "d", "Z", "a", "c"));
  EXPECT_THAT(keys().ListKeys("nobody"), IsOkAndHolds(IsEmpty()));
}

TEST_P(KeyStoreTest, ListedKeysCarryEveryField) {
  const ApiKey full = FullKey("k1", "acme", At(3));
  ASSERT_THAT(keys().CreateKey(full), IsOk());
  absl::StatusOr<std::vector<ApiKey>> listed = keys().ListKeys("acme");
  ASSERT_THAT(listed, IsOk());
  ASSERT_EQ(listed->size(), 1u);
  ExpectSameKey((*listed)[0], full);
}

TEST_P(KeyStoreTest, RevokeKeepsTheFirstRevocationTime) {
  ASSERT_THAT(keys().CreateKey(FullKey("k1", "acme", At(1))), IsOk());
  ASSERT_THAT(keys().CreateKey(FullKey("k2", "acme", At(2))), IsOk());
  EXPECT_THAT(keys().RevokeKey("k1", At(10)), IsOkAndHolds(true));
  EXPECT_THAT(keys().RevokeKey("k1", At(20)), IsOkAndHolds(true));

  absl::StatusOr<ApiKey> revoked = keys().GetKey("k1");
  ASSERT_THAT(revoked, IsOk());
  EXPECT_EQ(revoked->revoked_at, At(10));
  absl::StatusOr<ApiKey> other = keys().GetKey("k2");
  ASSERT_THAT(other, IsOk());
  EXPECT_EQ(other->revoked_at, absl::InfiniteFuture());
  // Still listed, with its revocation.
  absl::StatusOr<std::vector<ApiKey>> listed = keys().ListKeys("acme");
  ASSERT_THAT(listed, IsOk());
  EXPECT_THAT(Ids(*listed), ElementsAre("k1", "k2"));
  EXPECT_EQ((*listed)[0].revoked_at, At(10));
}

TEST_P(KeyStoreTest, HasActiveKeysHonoursExpiryAndRevocation) {
  ApiKey expiring = PlainKey("expiring", "acme", At(0));
  expiring.expires_at = At(100);
  ASSERT_THAT(keys().CreateKey(expiring), IsOk());
  EXPECT_THAT(keys().HasActiveKeys(At(99)), IsOkAndHolds(true));
  // A key is dead from its expiry time on.
  EXPECT_THAT(keys().HasActiveKeys(At(100)), IsOkAndHolds(false));
  EXPECT_THAT(keys().HasActiveKeys(At(150)), IsOkAndHolds(false));

  ASSERT_THAT(keys().CreateKey(PlainKey("forever", "other", At(0))), IsOk());
  EXPECT_THAT(keys().HasActiveKeys(At(150)), IsOkAndHolds(true));
  ASSERT_THAT(keys().RevokeKey("forever", At(200)), IsOkAndHolds(true));
  // Revocation at a time, like expiry: active before it, dead from it on.
  EXPECT_THAT(keys().HasActiveKeys(At(199)), IsOkAndHolds(true));
  EXPECT_THAT(keys().HasActiveKeys(At(200)), IsOkAndHolds(false));
  EXPECT_THAT(keys().HasActiveKeys(At(50)), IsOkAndHolds(true));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, KeyStoreTest,
    ::testing::ValuesIn(::chat::testing::AllKeyQuotaStores()),
    KeyQuotaStoreName);

class SharedKeyStoreTest : public ::chat::testing::SharedKeyQuotaStoreTest {
 protected:
  KeyStore& keys(int i) { return store(i).keys(); }
};

TEST_P(SharedKeyStoreTest, KeyCreatedThroughOneIsFoundAndRevokedThroughOther) {
  const ApiKey key = FullKey("k1", "acme", At(1));
  ASSERT_THAT(keys(0).CreateKey(key), IsOk());

  absl::StatusOr<ApiKey> seen = keys(1).GetKey("k1");
  ASSERT_THAT(seen, IsOk());
  ExpectSameKey(*seen, key);
  EXPECT_THAT(keys(1).HasActiveKeys(At(2)), IsOkAndHolds(true));
  EXPECT_THAT(keys(1).CreateKey(PlainKey("k1", "acme", At(3))),
              StatusIs(absl::StatusCode::kAlreadyExists));

  EXPECT_THAT(keys(1).RevokeKey("k1", At(10)), IsOkAndHolds(true));
  absl::StatusOr<ApiKey> revoked = keys(0).GetKey("k1");
  ASSERT_THAT(revoked, IsOk());
  EXPECT_EQ(revoked->revoked_at, At(10));
  EXPECT_THAT(keys(0).HasActiveKeys(At(11)), IsOkAndHolds(false));
  absl::StatusOr<std::vector<ApiKey>> listed = keys(0).ListKeys("acme");
  ASSERT_THAT(listed, IsOk());
  EXPECT_THAT(Ids(*listed), ElementsAre("k1"));
}

INSTANTIATE_TEST_SUITE_P(
    SharedStores, SharedKeyStoreTest,
    ::testing::ValuesIn(::chat::testing::SharedKeyQuotaStores()),
    KeyQuotaStoreName);

}  // namespace
}  // namespace chat::store
