// Page tokens: EncodePageToken/DecodePageToken round-trip every cursor, and
// anything EncodePageToken did not make is refused with kInvalidArgument
// before a store sees it. Tables with named rows.

#include "server/store/page_token.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::store {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;

struct CursorRow {
  std::string name;
  PageCursor cursor;
};

class PageTokenRoundTripTest : public ::testing::TestWithParam<CursorRow> {};

TEST_P(PageTokenRoundTripTest, DecodesToTheSameCursor) {
  const PageCursor& cursor = GetParam().cursor;
  const std::string token = EncodePageToken(cursor);
  // Tokens travel in URLs (the gateway's ?page_token=): web-safe only.
  EXPECT_EQ(token.find_first_of("+/ "), std::string::npos) << token;
  absl::StatusOr<PageCursor> decoded = DecodePageToken(token);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->updated_at_us, cursor.updated_at_us);
  EXPECT_EQ(decoded->session_id, cursor.session_id);

  absl::StatusOr<std::optional<PageCursor>> parsed =
      ParsePageRequest(10, token);
  ASSERT_THAT(parsed, IsOk());
  ASSERT_TRUE(parsed->has_value());
  EXPECT_EQ((*parsed)->session_id, cursor.session_id);
}

INSTANTIATE_TEST_SUITE_P(
    Cursors, PageTokenRoundTripTest,
    ::testing::Values(
        CursorRow{"Plain", {1700000000123456, "session-1"}},
        CursorRow{"Zero", {0, "a"}},
        CursorRow{"Negative", {-5, "before-the-epoch"}},
        CursorRow{"Max", {std::numeric_limits<int64_t>::max(), "m"}},
        CursorRow{"Min", {std::numeric_limits<int64_t>::min(), "m"}},
        CursorRow{"EmptyId", {42, ""}},
        CursorRow{"ColonsInId", {42, "a:b::c:"}},
        CursorRow{"Utf8Id", {42, "caf\xc3\xa9-\xe2\x9c\x93"}},
        CursorRow{"LongId", {42, std::string(512, 'x')}},
        CursorRow{"BinaryId", {42, std::string("a\0b\n", 4)}}),
    [](const ::testing::TestParamInfo<CursorRow>& info) {
      return info.param.name;
    });

struct BadTokenRow {
  std::string name;
  std::string token;
};

class PageTokenRejectTest : public ::testing::TestWithParam<BadTokenRow> {};

TEST_P(PageTokenRejectTest, IsInvalidArgument) {
  const std::string& token = GetParam().token;
  EXPECT_THAT(DecodePageToken(token),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::HasSubstr("page_token")));
  EXPECT_THAT(ParsePageRequest(10, token),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

std::string Wrap(const std::string& plain) {
  return absl::WebSafeBase64Escape(plain);
}

// A valid token with one character replaced.
std::string Tampered(size_t at, char c) {
  std::string token = EncodePageToken({1700000000123456, "s"});
  token[at] = c;
  return token;
}

INSTANTIATE_TEST_SUITE_P(
    Garbage, PageTokenRejectTest,
    ::testing::Values(
        BadTokenRow{"NotBase64", "not a token!"},
        BadTokenRow{"StandardBase64Alphabet", "+/+/"},
        BadTokenRow{"PlainTextOfAToken", "v1:1700000000123456:s"},
        BadTokenRow{"NoVersion", Wrap("1700000000123456:s")},
        BadTokenRow{"OtherVersion", Wrap("v2:1700000000123456:s")},
        BadTokenRow{"NoSeparator", Wrap("v1:1700000000123456")},
        BadTokenRow{"EmptyTime", Wrap("v1::s")},
        BadTokenRow{"TimeNotANumber", Wrap("v1:soon:s")},
        BadTokenRow{"TimeOverflows", Wrap("v1:99999999999999999999:s")},
        BadTokenRow{"TimeWithFraction", Wrap("v1:1.5:s")},
        BadTokenRow{"OnlyTheVersion", Wrap("v1:")},
        BadTokenRow{"TamperedVersion", Tampered(0, 'A')},
        BadTokenRow{"TamperedIntoBadBase64", Tampered(3, '*')}),
    [](const ::testing::TestParamInfo<BadTokenRow>& info) {
      return info.param.name;
    });

TEST(ParsePageRequestTest, AnEmptyTokenIsTheFirstPage) {
  absl::StatusOr<std::optional<PageCursor>> parsed = ParsePageRequest(1, "");
  ASSERT_THAT(parsed, IsOk());
  EXPECT_FALSE(parsed->has_value());
}

TEST(ParsePageRequestTest, APageSizeBelowOneIsInvalid) {
  for (int size : {0, -1, std::numeric_limits<int>::min()}) {
    EXPECT_THAT(ParsePageRequest(size, ""),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << size;
  }
}

struct OrderRow {
  std::string name;
  int64_t updated_at_us;
  std::string session_id;
  bool listed_after;
};

class ListedAfterTest : public ::testing::TestWithParam<OrderRow> {};

// Listing order is (updated_at descending, session_id ascending); the cursor
// is (100, "m").
TEST_P(ListedAfterTest, FollowsTheListingOrder) {
  const OrderRow& row = GetParam();
  EXPECT_EQ(ListedAfter({100, "m"}, row.updated_at_us, row.session_id),
            row.listed_after);
}

INSTANTIATE_TEST_SUITE_P(
    Order, ListedAfterTest,
    ::testing::Values(OrderRow{"Older", 99, "a", true},
                      OrderRow{"Newer", 101, "z", false},
                      OrderRow{"SameTimeLaterId", 100, "n", true},
                      OrderRow{"SameTimeEarlierId", 100, "l", false},
                      OrderRow{"TheCursorItself", 100, "m", false}),
    [](const ::testing::TestParamInfo<OrderRow>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace chat::store
