#ifndef CHAT_SERVER_STORE_CONVERSATION_STORE_H_
#define CHAT_SERVER_STORE_CONVERSATION_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/store/idempotency_store.h"
#include "server/store/key_store.h"
#include "server/store/quota_store.h"
#include "server/store/session_archive.h"

namespace chat::store {

class StreamStore;

// Identifies a session: sessions of different tenants never meet.
struct SessionKey {
  std::string tenant;
  std::string session_id;
};

// A session's metadata, without its messages.
struct SessionInfo {
  std::string session_id;
  std::string system_prompt;
  absl::Time created_at;
  // Last time a turn was appended or the session was reset.
  absl::Time updated_at;
  // Completed user/assistant pairs on the active branch (see
  // ConversationStore: branches).
  int turn_count = 0;
  // A short name for the session: made from its first exchange, or set by
  // the user (SetTitle). Empty until then.
  std::string title;
};

// One stored message. Messages alternate user, assistant, user, ...
struct StoredMessage {
  std::string role;  // "user" or "assistant"
  std::string content;
  absl::Time created_at;
  // The message's size in the provider's tokens when the provider reported
  // it (an assistant message: the turn's output tokens); 0 when unknown.
  int64_t tokens = 0;
  // The turn the message belongs to (both messages of a turn share it): 1,
  // 2, 3, ... in the order the session's turns were stored, whatever their
  // branch. Stable until the session is reset, so an export can name turns.
  int turn_id = 0;
  // The turn before it on its branch; 0 for a first turn.
  int parent_turn_id = 0;
  // The versions of this turn: the turns with the same parent, this one
  // included, oldest first (edits and regenerations add to them). Filled by
  // LoadHistory and LoadBranch.
  std::vector<int> sibling_turn_ids;
};

// A completed exchange, appended as a whole.
struct Turn {
  std::string user_message;
  std::string assistant_message;
  std::string model;
  std::string stop_reason;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  // In US dollars; nullopt when the model had no price (kept as NULL).
  std::optional<double> cost_usd;
  absl::Time created_at;
  // The idempotent request this turn answers, if any: AppendTurn then also
  // stores the turn's answer (AnswerOfTurn) in that id's record, in the
  // turn's transaction, so no crash can keep the turn and leave its id
  // running. Only for a claim held in this store's idempotency().
  std::optional<RequestClaim> answers;
};

// The answer a request id's record keeps for `turn`, appended to `key` as
// its `turn_count`th turn: what the caller of the first request was told.
IdempotentAnswer AnswerOfTurn(const SessionKey& key, const Turn& turn,
                              int turn_count);

// AppendTurn's kFailedPrecondition for a `turn.answers` claim no longer held.
absl::Status RequestClaimLostError(const RequestClaim& claim);
// Where AppendTurn or AppendBranchTurn stored a turn.
struct StoredTurn {
  // The new turn's id.
  int turn_id = 0;
  // Turns on the session's active branch, the new one included.
  int turn_count = 0;
};

// One page of ListSessions.
struct SessionPage {
  std::vector<SessionInfo> sessions;
  // Empty on the last page; otherwise pass it back to get the next page.
  std::string next_page_token;
};

// Search snippets mark each match with these two characters (U+E000 and
// U+E001, from Unicode's private use area, so they never clash with markup
// or ordinary text): a client splits the snippet on them and renders the
// parts as text, never as HTML.
inline constexpr absl::string_view kMatchStart = "\xEE\x80\x80";
inline constexpr absl::string_view kMatchEnd = "\xEE\x80\x81";

// One message that matches a search.
struct SearchHit {
  std::string session_id;
  std::string session_title;
  // The message's 0-based position in its session's history (turn n is
  // 2n for the user message, 2n + 1 for the reply).
  int64_t message_index = 0;
  std::string role;
  // Part of the message around the matches, each wrapped in kMatchStart and
  // kMatchEnd.
  std::string snippet;
  absl::Time created_at;
};

// One page of SearchMessages, best match first.
struct SearchPage {
  std::vector<SearchHit> hits;
  // Empty on the last page; otherwise pass it back for the next page.
  std::string next_page_token;
};

// Totals over one tenant's stored sessions. Token sums cover the turns
// currently stored (a reset or delete removes them).
struct StoreStats {
  int64_t total_sessions = 0;
  int64_t total_messages = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  // Sum of the stored turns' costs; turns without one are left out, and
  // nullopt when no stored turn has one.
  std::optional<double> total_cost_usd;
};

// Persistent history of conversations, keyed by (tenant, session_id).
//
// Branches: a session's turns form a tree. Each turn has a parent (the turn
// before it, or none for a first turn) and the session records its active
// leaf; the active branch is the path from a first turn to that leaf. A
// normal turn (AppendTurn) extends the active branch; an edited or
// regenerated turn (AppendBranchTurn) becomes a sibling of the turn it
// replaces, which stays stored. LoadHistory, turn counts and the optimistic
// check of AppendTurn all speak of the active branch; GetStats and the
// token sums count every stored turn.
//
// Safe for concurrent use from any number of threads. Calls block on I/O
// (unless MayBlock() says otherwise): callers on latency-sensitive threads
// hand them to a worker. Every method
// that fails for an infrastructure reason (disk, database) returns
// kUnavailable or kInternal and leaves stored data as it was.
class ConversationStore {
 public:
  ConversationStore() = default;
  ConversationStore(const ConversationStore&) = delete;
  ConversationStore& operator=(const ConversationStore&) = delete;
  virtual ~ConversationStore() = default;

  // Returns the session's metadata. kNotFound if it does not exist.
  virtual absl::StatusOr<SessionInfo> GetSession(const SessionKey& key) = 0;

  // Returns the session's messages, oldest first. kNotFound if the session
  // does not exist (an existing session with no turns gives an empty list).
  virtual absl::StatusOr<std::vector<StoredMessage>> LoadHistory(
      const SessionKey& key) = 0;

  // Appends `turn` (its user message, then its assistant message) in one
  // transaction, provided the session has exactly `expected_turn_count`
  // turns. A session that does not exist is created with `system_prompt`
  // when `expected_turn_count` is 0; `system_prompt` is ignored for an
  // existing session. Returns the new turn's id and the session's turn
  // count after the append.
  // kAborted if the session's turn count is not `expected_turn_count` (or it
  // does not exist and `expected_turn_count` > 0): another writer got there
  // first, and nothing was written. With `turn.answers`, the id's record gets
  // the answer in the same transaction; kFailedPrecondition, and nothing
  // written, if that claim's owner no longer holds the id (it was taken over
  // or swept).
  virtual absl::StatusOr<StoredTurn> AppendTurn(const SessionKey& key,
                                                int expected_turn_count,
                                                absl::string_view system_prompt,
                                                const Turn& turn) = 0;

  // Returns the messages of the branch from the session's first turn to
  // `turn_id`, oldest first, as LoadHistory does for the active branch.
  // kNotFound if the session or the turn does not exist.
  virtual absl::StatusOr<std::vector<StoredMessage>> LoadBranch(
      const SessionKey& key, int turn_id);

  // Stores `turn` as a new child of `parent_turn_id` (0: a new first turn),
  // so a sibling of that turn's other children, and makes it the active
  // leaf. kNotFound if the session does not exist or has no turn
  // `parent_turn_id`. Concurrent calls never conflict: each adds its own
  // sibling, and the last one stored is active.
  virtual absl::StatusOr<StoredTurn> AppendBranchTurn(const SessionKey& key,
                                                      int parent_turn_id,
                                                      const Turn& turn);

  // Makes the branch through `turn_id` active: from that turn it follows the
  // newest child at each step down to a turn without children, which
  // becomes the active leaf. Leaves updated_at as it was. Returns the active
  // branch's turn count. kNotFound if the session or the turn does not exist.
  virtual absl::StatusOr<int> SwitchBranch(const SessionKey& key, int turn_id);

  // Deletes every message of the session (every branch), keeping the session
  // and its system prompt; sets its updated_at to `now`. Returns the turn
  // count (of the active branch) it had.
  // kNotFound if the session does not exist.
  virtual absl::StatusOr<int> ResetSession(const SessionKey& key,
                                           absl::Time now) = 0;

  // Deletes the session and its messages. Returns false if it did not exist.
  virtual absl::StatusOr<bool> DeleteSession(const SessionKey& key) = 0;

  // Lists `tenant`'s sessions, most recently updated first (ties by
  // session_id), at most `page_size` (>= 1) of them, starting after the page
  // that returned `page_token` (empty: from the start). kInvalidArgument for a
  // token this store did not make.
  virtual absl::StatusOr<SessionPage> ListSessions(
      absl::string_view tenant, int page_size,
      absl::string_view page_token) = 0;

  // Totals over `tenant`'s sessions.
  virtual absl::StatusOr<StoreStats> GetStats(absl::string_view tenant) = 0;

  // Sets the session's title (empty clears it), leaving updated_at as it
  // was: renaming does not reorder the listing. With `only_if_untitled`,
  // a session that already has a title keeps it (a generated title never
  // overwrites a rename). Returns whether the title was written. kNotFound
  // if the session does not exist.
  virtual absl::StatusOr<bool> SetTitle(const SessionKey& key,
                                        absl::string_view title,
                                        bool only_if_untitled) {
    (void)key, (void)title, (void)only_if_untitled;
    return absl::UnimplementedError("this store keeps no titles");
  }

  // Full-text search over `tenant`'s messages (never another tenant's):
  // messages containing every word of `query` (a non-empty, user-typed
  // string), best match first, at most `page_size` (>= 1), starting after
  // the page that returned `page_token` (empty: from the start).
  // kInvalidArgument for a token this store did not make for this query.
  // How words are matched and ranked is the store's own (SQLite FTS5,
  // PostgreSQL text search, a substring match in memory).
  virtual absl::StatusOr<SearchPage> SearchMessages(
      absl::string_view tenant, absl::string_view query, int page_size,
      absl::string_view page_token) {
    (void)tenant, (void)query, (void)page_size, (void)page_token;
    return absl::UnimplementedError("this store cannot search");
  }

  // The whole session (every branch, ids and times as stored), read in one
  // snapshot. kNotFound if the session does not exist.
  virtual absl::StatusOr<SessionArchive> ExportSession(const SessionKey& key) {
    (void)key;
    return absl::UnimplementedError("this store cannot export sessions");
  }

  // Stores `archive` as session `archive.session_id` of `tenant`, ids and
  // times as they are, in one transaction: on any failure nothing is
  // written. kInvalidArgument if ValidateSessionArchive refuses it;
  // kAlreadyExists if the session exists, unless `replace`, which deletes
  // it (every message) first in the same transaction.
  virtual absl::Status ImportSession(absl::string_view tenant,
                                     const SessionArchive& archive,
                                     bool replace) {
    (void)tenant, (void)archive, (void)replace;
    return absl::UnimplementedError("this store cannot import sessions");
  }

  // Deletes every session, of every tenant, last updated before `cutoff`,
  // with its messages (the retention sweep). Returns how many were deleted.
  virtual absl::StatusOr<int64_t> DeleteSessionsIdleSince(
      absl::Time cutoff) = 0;

  // The API keys and the quota and usage counters kept in the same database,
  // so every replica that shares the conversations shares them too. Valid as
  // long as this store.
  virtual KeyStore& keys() = 0;
  virtual QuotaStore& quotas() = 0;
  // The request ids of idempotent turns, in the same database; null for a
  // store that keeps none (the engine then keeps them in its own memory, for
  // this process only). Valid as long as this store.
  virtual IdempotencyStore* idempotency() { return nullptr; }
  // The answers of streamed turns as they are produced (resumable streams),
  // in the same database; null for a store that keeps none (the engine then
  // keeps them in its own memory). Valid as long as this store.
  virtual StreamStore* streams() { return nullptr; }

  // Whether a call (of this store, its keys() or its quotas()) may wait on
  // disk or the network. A store that says false answers every call from
  // memory, under locks held only for the call itself, so a caller may run
  // it on a thread that must not block (the provider's I/O thread, a gRPC
  // callback thread) instead of handing it to a worker.
  virtual bool MayBlock() const { return true; }
};

// Settings that apply to some kinds of store only.
struct StoreOptions {
  // PostgreSQL: the most connections the store opens.
  int max_connections = 8;
};

// Opens the store named by `url`, creating or migrating its schema:
//   "memory"            process memory, lost at exit (tests, demos);
//   "sqlite:PATH"       a SQLite file, created with its directory if absent
//                       ("sqlite::memory:" for a private in-memory database);
//   "postgres://..." or "postgresql://..."   a PostgreSQL database (libpq URL);
//   "postgres:KEY=VALUE ..."                 the same, as a libpq key=value
//                                            connection string.
// kInvalidArgument for an unknown scheme; kUnavailable if it cannot be
// opened; kFailedPrecondition if its schema is newer than this build.
absl::StatusOr<std::unique_ptr<ConversationStore>> OpenConversationStore(
    absl::string_view url, const StoreOptions& options = {});

// `url` with any password replaced by "***": the userinfo password and a
// `password` parameter of a URL (of any scheme, so a mistyped one is masked
// too), a `password=` keyword of a "postgres:" key=value connection string. For
// logs and errors, which must never carry a secret.
std::string RedactStoreUrl(absl::string_view url);

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_CONVERSATION_STORE_H_
