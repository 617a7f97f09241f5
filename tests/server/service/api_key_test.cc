// The API key format. Strategy: generate real keys and check their shape,
// that only the secret's hash is kept and that it verifies; then a table of
// malformed keys, every one of which must get the same answer as an unknown
// key (NOT_FOUND "invalid API key"), never echoing what was presented.

#include "server/service/api_key.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/memory_key_quota_store.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::MatchesRegex;

TEST(ApiKeyTest, GeneratedKeyHasTheDocumentedShape) {
  absl::StatusOr<GeneratedApiKey> key =
      GenerateApiKey("acme", "web", absl::Now(), absl::InfiniteFuture(), {});
  ASSERT_THAT(key, IsOk());
  EXPECT_THAT(key->plaintext, MatchesRegex("chatd_[0-9a-f]{12}_[0-9a-f]{64}"));
  EXPECT_THAT(key->record.id, MatchesRegex("[0-9a-f]{12}"));
  EXPECT_TRUE(absl::StartsWith(key->plaintext, "chatd_" + key->record.id));
  EXPECT_EQ(key->record.tenant, "acme");
  EXPECT_EQ(key->record.name, "web");
  EXPECT_THAT(key->record.secret_hash, MatchesRegex("[0-9a-f]{64}"));
  const std::string secret = key->plaintext.substr(6 + 12 + 1);
  EXPECT_FALSE(absl::StrContains(key->record.secret_hash, secret));
  EXPECT_EQ(key->record.secret_hash, HashSecret(secret));
}

TEST(ApiKeyTest, TwoKeysDiffer) {
  absl::StatusOr<GeneratedApiKey> a =
      GenerateApiKey("t", "n", absl::Now(), absl::InfiniteFuture(), {});
  absl::StatusOr<GeneratedApiKey> b =
      GenerateApiKey("t", "n", absl::Now(), absl::InfiniteFuture(), {});
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE(a->plaintext, b->plaintext);
  EXPECT_NE(a->record.id, b->record.id);
}

TEST(ApiKeyTest, ParseThenVerifyAcceptsTheKeyAndNothingElse) {
  absl::StatusOr<GeneratedApiKey> key =
      GenerateApiKey("t", "n", absl::Now(), absl::InfiniteFuture(), {});
  ASSERT_THAT(key, IsOk());
  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(key->plaintext);
  ASSERT_THAT(parsed, IsOk());
  EXPECT_EQ(parsed->id, key->record.id);
  EXPECT_TRUE(VerifySecret(parsed->secret, key->record));
  std::string other = parsed->secret;
  other[0] = other[0] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(VerifySecret(other, key->record));
  EXPECT_FALSE(VerifySecret("", key->record));
}

TEST(ApiKeyTest, HashIsSha256Hex) {
  // echo -n abc | sha256sum
  EXPECT_EQ(HashSecret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeyTest, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("admin-key-123456789012345",
                                 "admin-key-123456789012345"));
  EXPECT_FALSE(ConstantTimeEquals("admin-key-123456789012345",
                                  "admin-key-12345678901234"));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
}

class MalformedKeyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MalformedKeyTest, AnswersLikeAnUnknownKey) {
  absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(GetParam());
  EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kNotFound, "invalid API key"));
}

INSTANTIATE_TEST_SUITE_P(
    Table, MalformedKeyTest,
    ::testing::Values("", "chatd_", "sk-abc",
                      // Wrong prefix.
                      "chatx_0123456789ab_" + std::string(64, 'a'),
                      // Upper-case hex.
                      "chatd_0123456789AB_" + std::string(64, 'a'),
                      // Id one digit short, secret one long.
                      "chatd_0123456789a_" + std::string(65, 'a'),
                      // Missing separator.
                      "chatd_0123456789abX" + std::string(64, 'a'),
                      // Secret too short / too long.
                      "chatd_0123456789ab_" + std::string(63, 'a'),
                      "chatd_0123456789ab_" + std::string(65, 'a'),
                      // Not hex.
                      "chatd_0123456789ab_" + std::string(64, 'g'),
                      // Whitespace inside.
                      "chatd_0123456789ab_" + std::string(63, 'a') + " "),
    [](const ::testing::TestParamInfo<std::string>& info) {
      return "Case" + std::to_string(info.index);
    });

TEST(ApiKeyTest, IsApiKeyId) {
  EXPECT_TRUE(IsApiKeyId("0123456789ab"));
  EXPECT_FALSE(IsApiKeyId("0123456789AB"));
  EXPECT_FALSE(IsApiKeyId("0123456789a"));
  EXPECT_FALSE(IsApiKeyId(""));
}

TEST(ApiKeyTest, CreateStoredApiKeyStoresTheRecord) {
  store::MemoryKeyStore keys;
  store::KeyLimits limits;
  limits.requests_per_minute = 7;
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  absl::StatusOr<GeneratedApiKey> key = CreateStoredApiKey(
      keys, "acme", "web", now, now + absl::Hours(1), limits);
  ASSERT_THAT(key, IsOk());
  absl::StatusOr<store::ApiKey> stored = keys.GetKey(key->record.id);
  ASSERT_THAT(stored, IsOk());
  EXPECT_EQ(stored->tenant, "acme");
  EXPECT_EQ(stored->secret_hash, key->record.secret_hash);
  EXPECT_EQ(stored->expires_at, now + absl::Hours(1));
  EXPECT_EQ(stored->limits.requests_per_minute, 7);
}

}  // namespace
}  // namespace chat
