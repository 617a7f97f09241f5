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

TEST(ValidateKeyNameTest, AcceptsPrintableUtf8) {
  for (const char* name :
       {"web", "CI deploy #2", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
        "\xf0\x9f\x94\x91 key", "\xc2\xa0nbsp"}) {
    EXPECT_THAT(ValidateKeyName("name", name), IsOk()) << "'" << name << "'";
  }
}

// `keys list` prints names raw: a control character in one could drive the
// operator's terminal.
TEST(ValidateKeyNameTest, RefusesControlCharactersAndBadUtf8) {
  for (const std::string& name : {
           std::string("evil\x1b]0;owned\x07"),  // ESC, BEL (C0)
           std::string("tab\there"),
           std::string("line\nbreak"),
           std::string("nul\0byte", 8),
           std::string("del\x7f"),
           std::string("csi\xc2\x9b"
                       "31m"),                // U+009B (C1)
           std::string("bare \x9b"),          // not UTF-8
           std::string("overlong \xc0\xaf"),  // '/' overlong
           std::string("cut \xe6\x97"),       // truncated
           std::string("surrogate \xed\xa0\x80"),
       }) {
    EXPECT_THAT(ValidateKeyName("name", name),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr("name must be printable UTF-8")))
        << "'" << name << "'";
  }
}

}  // namespace
}  // namespace chat
