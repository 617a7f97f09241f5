#include "server/store/page_token.h"

#include <cstdint>
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

namespace {

constexpr absl::string_view kSearchPrefix = "s1:";

// Ties a token to its query without carrying the query itself. Must not
// change between processes or builds (tokens pass between replicas), so not
// absl::Hash, which is seeded per process: FNV-1a.
uint64_t QueryFingerprint(absl::string_view query) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : query) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

absl::Status MalformedSearchToken() {
  return absl::InvalidArgumentError(
      "malformed page_token: pass back the next_page_token of a previous "
      "SearchMessages call with the same query, unchanged");
}

}  // namespace

std::string EncodeSearchToken(absl::string_view query, int64_t offset) {
  return absl::WebSafeBase64Escape(
      absl::StrCat(kSearchPrefix, QueryFingerprint(query), ":", offset));
}

absl::StatusOr<int64_t> ParseSearchRequest(absl::string_view query,
                                           int page_size,
                                           absl::string_view page_token) {
  if (page_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be >= 1, got ", page_size));
  }
  if (page_token.empty()) return 0;
  std::string plain;
  if (!absl::WebSafeBase64Unescape(page_token, &plain)) {
    return MalformedSearchToken();
  }
  absl::string_view rest = plain;
  if (!absl::ConsumePrefix(&rest, kSearchPrefix)) return MalformedSearchToken();
  const size_t colon = rest.find(':');
  uint64_t fingerprint = 0;
  int64_t offset = 0;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, colon), &fingerprint) ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &offset) || offset < 0 ||
      fingerprint != QueryFingerprint(query)) {
    return MalformedSearchToken();
  }
  return offset;
}

}  // namespace chat::store
