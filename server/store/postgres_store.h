#ifndef CHAT_SERVER_STORE_POSTGRES_STORE_H_
#define CHAT_SERVER_STORE_POSTGRES_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/conversation_store.h"
#include "server/store/memory_key_quota_store.h"

namespace chat::store {

// The schema version this build creates and migrates databases to.
inline constexpr int kPostgresSchemaVersion = 1;

struct PostgresOptions {
  // Most connections open at once; a call waits for a free one up to
  // `acquire_timeout`, then fails with kUnavailable.
  int max_connections = 8;
  absl::Duration acquire_timeout = absl::Seconds(5);
  // libpq's connect_timeout for each new connection.
  absl::Duration connect_timeout = absl::Seconds(5);
};

// A ConversationStore in PostgreSQL, shared by any number of chat-server
// replicas. Same layout as the SQLite store (tables, columns, indexes;
// tests/server/store/schema_test.cc compares them): a row per session (with
// its turn count and token sums) and a row per message.
//
// Concurrency across replicas: AppendTurn locks the session row (SELECT ...
// FOR UPDATE) and appends only if the turn count is the one the caller read,
// so two replicas never interleave turns; the loser gets kAborted.
//
// Availability: a connection that fails is dropped and replaced on a later
// call, so the store recovers by itself when the server comes back; while it
// is down, calls fail with kUnavailable. Every write is one transaction, and
// a turn is acknowledged only after COMMIT returned.
//
// Thread-safe: calls take a connection from a bounded pool.
class PostgresConversationStore final : public ConversationStore {
 public:
  // Connects to `conninfo` (a postgres:// URL or a libpq "key=value" string),
  // creates or migrates the schema under an advisory lock (replicas starting
  // together do not race), and returns the store. kUnavailable if the server
  // cannot be reached; kFailedPrecondition if its schema is newer than this
  // build.
  static absl::StatusOr<std::unique_ptr<PostgresConversationStore>> Open(
      absl::string_view conninfo, PostgresOptions options = {});

  ~PostgresConversationStore() override;

  absl::StatusOr<SessionInfo> GetSession(const SessionKey& key) override;
  absl::StatusOr<std::vector<StoredMessage>> LoadHistory(
      const SessionKey& key) override;
  absl::StatusOr<int> AppendTurn(const SessionKey& key, int expected_turn_count,
                                 absl::string_view system_prompt,
                                 const Turn& turn) override;
  absl::StatusOr<int> ResetSession(const SessionKey& key,
                                   absl::Time now) override;
  absl::StatusOr<bool> DeleteSession(const SessionKey& key) override;
  absl::StatusOr<SessionPage> ListSessions(
      absl::string_view tenant, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<StoreStats> GetStats(absl::string_view tenant) override;
  absl::StatusOr<int64_t> DeleteSessionsIdleSince(absl::Time cutoff) override;
  KeyStore& keys() override { return keys_; }
  QuotaStore& quotas() override { return quotas_; }

 private:
  // Placeholder until the keys and counters move into the database.
  MemoryKeyStore keys_;
  MemoryQuotaStore quotas_;
  class Connection;
  class Lease;
  friend class Lease;

  PostgresConversationStore(std::string conninfo, PostgresOptions options);

  absl::Status MigrateSchema(Connection& connection);

  // A healthy connection for one call, opened if none is idle.
  absl::StatusOr<Lease> Acquire();
  void Return(std::unique_ptr<Connection> connection, bool healthy);

  const std::string conninfo_;
  const PostgresOptions options_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  // Connections open, idle or leased.
  int open_ ABSL_GUARDED_BY(mu_) = 0;
};

// Same as PostgresConversationStore::Open with `max_connections`, typed as
// the interface.
absl::StatusOr<std::unique_ptr<ConversationStore>>
OpenPostgresConversationStore(absl::string_view conninfo, int max_connections);

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_POSTGRES_STORE_H_
