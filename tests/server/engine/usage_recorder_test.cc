// UsageRecorder against the memory quota store: sums per tenant, key and UTC
// day, written on Flush (and at destruction), kept when a write fails.

#include "server/engine/usage_recorder.h"

#include <vector>

#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/memory_key_quota_store.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOkAndHolds;
using ::testing::ElementsAre;
using ::testing::FieldsAre;
using ::testing::IsEmpty;

absl::Time Day(int day) {
  return absl::FromCivil(absl::CivilDay(2026, 11, day), absl::UTCTimeZone());
}

// A QuotaStore whose AddUsage fails until told otherwise.
class FlakyUsageStore final : public store::QuotaStore {
 public:
  absl::StatusOr<store::QuotaCharge> Charge(const store::QuotaCounter& c,
                                            int64_t amount,
                                            int64_t limit) override {
    return inner_.Charge(c, amount, limit);
  }
  absl::Status Adjust(const store::QuotaCounter& c, int64_t delta) override {
    return inner_.Adjust(c, delta);
  }
  absl::StatusOr<int64_t> Read(const store::QuotaCounter& c) override {
    return inner_.Read(c);
  }
  absl::StatusOr<int64_t> DeleteCountersBefore(absl::string_view prefix,
                                               absl::Time cutoff) override {
    return inner_.DeleteCountersBefore(prefix, cutoff);
  }
  absl::Status AddUsage(const std::vector<store::UsageDelta>& d) override {
    if (failing_) return absl::UnavailableError("database down");
    return inner_.AddUsage(d);
  }
  absl::StatusOr<std::vector<store::UsageTotals>> GetUsage(
      absl::string_view tenant, absl::string_view key_id, absl::Time since,
      absl::Time until) override {
    return inner_.GetUsage(tenant, key_id, since, until);
  }
  void set_failing(bool failing) { failing_ = failing; }

 private:
  store::MemoryQuotaStore inner_;
  bool failing_ = false;
};

TEST(UsageRecorderTest, SumsPerTenantKeyAndDayAndWritesOnFlush) {
  store::MemoryQuotaStore store;
  KeyQuotas quotas(&store);
  // An interval long enough that only Flush writes during the test.
  UsageRecorder recorder(&store, &quotas, absl::Hours(1));
  recorder.Record("acme", "k1", Day(30) + absl::Hours(10), 10, 2);
  recorder.Record("acme", "k1", Day(30) + absl::Hours(23), 5, 1);
  recorder.Record("acme", "k1", Day(29) + absl::Hours(1), 7, 7);
  recorder.Record("beta", "", Day(30), 1, 1);
  EXPECT_THAT(store.GetUsage("", "", Day(1), Day(31) + absl::Hours(24)),
              IsOkAndHolds(IsEmpty()));
  recorder.Flush();
  EXPECT_THAT(store.GetUsage("acme", "k1", Day(30), Day(30) + absl::Hours(24)),
              IsOkAndHolds(ElementsAre(FieldsAre("acme", "k1", 2, 15, 3))));
  EXPECT_THAT(store.GetUsage("", "", Day(29), Day(30) + absl::Hours(24)),
              IsOkAndHolds(ElementsAre(FieldsAre("acme", "k1", 3, 22, 10),
                                       FieldsAre("beta", "", 1, 1, 1))));
}

TEST(UsageRecorderTest, KeepsWhatAFailedWriteHeldForTheNextOne) {
  FlakyUsageStore store;
  KeyQuotas quotas(&store);
  UsageRecorder recorder(&store, &quotas, absl::Hours(1));
  store.set_failing(true);
  recorder.Record("acme", "k1", Day(30), 10, 2);
  recorder.Flush();
  recorder.Record("acme", "k1", Day(30), 1, 1);
  store.set_failing(false);
  recorder.Flush();
  EXPECT_THAT(store.GetUsage("acme", "k1", Day(30), Day(31)),
              IsOkAndHolds(ElementsAre(FieldsAre("acme", "k1", 2, 11, 3))));
}

TEST(UsageRecorderTest, WritesWhatIsPendingWhenDestroyed) {
  store::MemoryQuotaStore store;
  KeyQuotas quotas(&store);
  {
    UsageRecorder recorder(&store, &quotas, absl::Hours(1));
    recorder.Record("acme", "k1", Day(30), 3, 4);
  }
  EXPECT_THAT(store.GetUsage("acme", "", Day(30), Day(31)),
              IsOkAndHolds(ElementsAre(FieldsAre("acme", "k1", 1, 3, 4))));
}

}  // namespace
}  // namespace chat
