#include "server/store/page_token.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace chat::store {
namespace {

// Versioned so the format can change without misreading old tokens.
constexpr absl::string_view kPrefix = "v1:";

absl::Status MalformedToken() {
  return absl::InvalidArgumentError(
      "malformed page_token: pass back the next_page_token of a previous "
      "ListSessions call unchanged");
}

}  // namespace

std::string EncodePageToken(const PageCursor& cursor) {
  return absl::WebSafeBase64Escape(
      absl::StrCat(kPrefix, cursor.updated_at_us, ":", cursor.session_id));
}

absl::StatusOr<PageCursor> DecodePageToken(absl::string_view token) {
  std::string plain;
  if (!absl::WebSafeBase64Unescape(token, &plain)) return MalformedToken();
  absl::string_view rest = plain;
  if (!absl::ConsumePrefix(&rest, kPrefix)) return MalformedToken();
  // The session id comes last because it may itself contain ':'.
  const size_t colon = rest.find(':');
  if (colon == absl::string_view::npos) return MalformedToken();
  PageCursor cursor;
  if (!absl::SimpleAtoi(rest.substr(0, colon), &cursor.updated_at_us)) {
    return MalformedToken();
  }
  cursor.session_id = std::string(rest.substr(colon + 1));
  return cursor;
}

absl::StatusOr<std::optional<PageCursor>> ParsePageRequest(
    int page_size, absl::string_view page_token) {
  if (page_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be >= 1, got ", page_size));
  }
  if (page_token.empty()) return std::optional<PageCursor>();
  absl::StatusOr<PageCursor> cursor = DecodePageToken(page_token);
  if (!cursor.ok()) return cursor.status();
  return std::optional<PageCursor>(*std::move(cursor));
}

bool ListedAfter(const PageCursor& cursor, int64_t updated_at_us,
                 absl::string_view session_id) {
  if (updated_at_us != cursor.updated_at_us) {
    return updated_at_us < cursor.updated_at_us;
  }
  return session_id > cursor.session_id;
}

}  // namespace chat::store
