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
  // Completed user/assistant pairs currently stored.
  int turn_count = 0;
};

// One stored message. Messages alternate user, assistant, user, ...
struct StoredMessage {
  std::string role;  // "user" or "assistant"
  std::string content;
  absl::Time created_at;
  // The message's size in the provider's tokens when the provider reported
  // it (an assistant message: the turn's output tokens); 0 when unknown.
  int64_t tokens = 0;
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
};

// One page of ListSessions.
struct SessionPage {
  std::vector<SessionInfo> sessions;
  // Empty on the last page; otherwise pass it back to get the next page.
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
  // existing session. Returns the session's turn count after the append.
  // kAborted if the session's turn count is not `expected_turn_count` (or it
  // does not exist and `expected_turn_count` > 0): another writer got there
  // first, and nothing was written.
  virtual absl::StatusOr<int> AppendTurn(const SessionKey& key,
                                         int expected_turn_count,
                                         absl::string_view system_prompt,
                                         const Turn& turn) = 0;

  // Deletes every message of the session, keeping the session and its system
  // prompt; sets its updated_at to `now`. Returns the turn count it had.
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
