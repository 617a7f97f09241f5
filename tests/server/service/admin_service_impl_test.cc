// The request checks AdminService shares with `chat-server keys`, as tables.
// The RPCs themselves, through the admin key, are in
// tests/integration/auth_test.cc.

#include "server/service/admin_service_impl.h"

#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ParseKeyLifetimeTest, AcceptsUpToAHundredYears) {
  absl::StatusOr<absl::Duration> month = ParseKeyLifetime("expires_in", "720h");
  ASSERT_THAT(month, IsOk());
  EXPECT_EQ(*month, absl::Hours(720));
  absl::StatusOr<absl::Duration> century =
      ParseKeyLifetime("expires_in", "876600h");
  ASSERT_THAT(century, IsOk());
  EXPECT_EQ(*century, absl::Hours(876600));
}

TEST(ParseKeyLifetimeTest, RefusesWhatIsNotALifetimeNamingTheField) {
  for (const char* text :
       {"", "soon", "-1h", "0s", "inf", "876601h", "9999999999h"}) {
    EXPECT_THAT(ParseKeyLifetime("--expires", text),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("--expires must be")))
        << "'" << text << "'";
  }
}

}  // namespace
}  // namespace chat
