#include "server/store/instrumented_store.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/memory_store.h"
#include "tests/testing/status_matchers.h"

// Strategy: wrap the memory store, and one whose reads fail, and read the
// process-wide registry before and after each call: the decorator must
// forward every answer unchanged, time each operation under its own label,
// and count only infrastructure failures as errors.

namespace chat::store {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;

uint64_t DurationCount(absl::string_view op) {
  // The registry's text is the public face: parse the count from it.
  const std::string text = MetricsRegistry::Default().Render();
  const std::string series = absl::StrCat(
      "chatd_store_operation_duration_seconds_count{op=\"", op, "\"} ");
  size_t at = text.find(series);
  if (at == std::string::npos) return 0;
  return std::stoull(text.substr(at + series.size()));
}

uint64_t ErrorCount(absl::string_view op) {
  const std::string text = MetricsRegistry::Default().Render();
  const std::string series =
      absl::StrCat("chatd_store_errors_total{op=\"", op, "\"} ");
  size_t at = text.find(series);
  if (at == std::string::npos) return 0;
  return std::stoull(text.substr(at + series.size()));
}

// A store whose GetSession fails as `status` says; the rest is the memory
// store's.
class FailingStore final : public ConversationStore {
 public:
  explicit FailingStore(absl::Status status) : status_(std::move(status)) {}
  absl::StatusOr<SessionInfo> GetSession(const SessionKey&) override {
    return status_;
  }
  absl::StatusOr<std::vector<StoredMessage>> LoadHistory(
      const SessionKey& key) override {
    return inner_.LoadHistory(key);
  }
  absl::StatusOr<StoredTurn> AppendTurn(const SessionKey& key, int expected,
                                        absl::string_view system_prompt,
                                        const Turn& turn) override {
    return inner_.AppendTurn(key, expected, system_prompt, turn);
  }
  absl::StatusOr<int> ResetSession(const SessionKey& key,
                                   absl::Time now) override {
    return inner_.ResetSession(key, now);
  }
  absl::StatusOr<bool> DeleteSession(const SessionKey& key) override {
    return inner_.DeleteSession(key);
  }
  absl::StatusOr<SessionPage> ListSessions(absl::string_view tenant,
                                           int page_size,
                                           absl::string_view token) override {
    return inner_.ListSessions(tenant, page_size, token);
  }
  absl::StatusOr<StoreStats> GetStats(absl::string_view tenant) override {
    return inner_.GetStats(tenant);
  }
  absl::StatusOr<int64_t> DeleteSessionsIdleSince(absl::Time cutoff) override {
    return inner_.DeleteSessionsIdleSince(cutoff);
  }
  KeyStore& keys() override { return inner_.keys(); }
  QuotaStore& quotas() override { return inner_.quotas(); }

 private:
  const absl::Status status_;
  MemoryConversationStore inner_;
};

TEST(InstrumentedStoreTest, TimesEachOperationAndForwardsAnswers) {
  auto inner = std::make_unique<MemoryConversationStore>();
  MemoryConversationStore* raw = inner.get();
  InstrumentedConversationStore store(std::move(inner));
  const SessionKey key{"t", "s"};
  const uint64_t appends = DurationCount("append_turn");
  const uint64_t gets = DurationCount("get_session");
  Turn turn;
  turn.user_message = "hi";
  turn.assistant_message = "hello";
  turn.created_at = absl::Now();
  EXPECT_THAT(store.AppendTurn(key, 0, "", turn), IsOk());
  EXPECT_THAT(store.GetSession(key), IsOk());
  EXPECT_THAT(store.GetSession({"t", "missing"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(DurationCount("append_turn"), appends + 1);
  EXPECT_EQ(DurationCount("get_session"), gets + 2);
  // kNotFound is an answer, not a failure of the store.
  EXPECT_EQ(ErrorCount("get_session"), 0u);
  EXPECT_EQ(&store.keys(), &raw->keys());
  EXPECT_EQ(&store.quotas(), &raw->quotas());
}

TEST(InstrumentedStoreTest, CountsInfrastructureFailures) {
  InstrumentedConversationStore store(std::make_unique<FailingStore>(
      absl::UnavailableError("database is down")));
  const uint64_t before = ErrorCount("get_session");
  EXPECT_THAT(store.GetSession({"t", "s"}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(ErrorCount("get_session"), before + 1);
}

TEST(InstrumentedStoreTest, OnlyInfrastructureCodesAreFailures) {
  EXPECT_TRUE(IsStoreFailure(absl::UnavailableError("")));
  EXPECT_TRUE(IsStoreFailure(absl::InternalError("")));
  EXPECT_TRUE(IsStoreFailure(absl::DataLossError("")));
  EXPECT_FALSE(IsStoreFailure(absl::OkStatus()));
  EXPECT_FALSE(IsStoreFailure(absl::NotFoundError("")));
  EXPECT_FALSE(IsStoreFailure(absl::AbortedError("")));
  EXPECT_FALSE(IsStoreFailure(absl::InvalidArgumentError("")));
}

}  // namespace
}  // namespace chat::store
