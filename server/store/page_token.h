#ifndef CHAT_SERVER_STORE_PAGE_TOKEN_H_
#define CHAT_SERVER_STORE_PAGE_TOKEN_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chat::store {

// Where a ListSessions page ended: the last session it returned. Listing order
// is (updated_at_us descending, session_id ascending), so the next page starts
// strictly after this key. Keyset pagination rather than an offset: a page
// costs the same however deep it is, and sessions created while a client pages
// do not shift the rest of the listing under it.
struct PageCursor {
  int64_t updated_at_us = 0;
  std::string session_id;
};

// Returns the opaque token for `cursor`. Every store uses this format, so a
// token stays valid if a deployment switches between stores.
std::string EncodePageToken(const PageCursor& cursor);

// Parses a token made by EncodePageToken. kInvalidArgument for anything else.
absl::StatusOr<PageCursor> DecodePageToken(absl::string_view token);

// Checks a ListSessions request: kInvalidArgument for a page_size below 1 or
// a token EncodePageToken did not make. Returns the cursor to list after, or
// nullopt for the first page (empty token).
absl::StatusOr<std::optional<PageCursor>> ParsePageRequest(
    int page_size, absl::string_view page_token);

// Whether a session with (`updated_at_us`, `session_id`) is listed after
// `cursor`, i.e. belongs to a page following the one that ended at `cursor`.
bool ListedAfter(const PageCursor& cursor, int64_t updated_at_us,
                 absl::string_view session_id);

// Where a SearchMessages page ended: how many hits came before the next
// page, for the query the token was made for. An offset rather than a key:
// ranks are not unique, and a search is a snapshot a user pages through a
// few times, not a listing to walk to the end.
struct SearchCursor {
  int64_t offset = 0;
};

// The opaque token for the page after `offset` hits of `query`.
std::string EncodeSearchToken(absl::string_view query, int64_t offset);

// Checks a SearchMessages request: kInvalidArgument for a page_size below 1
// or a token EncodeSearchToken did not make for this same query. Returns the
// number of hits to skip (0 for an empty token).
absl::StatusOr<int64_t> ParseSearchRequest(absl::string_view query,
                                           int page_size,
                                           absl::string_view page_token);

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_PAGE_TOKEN_H_
