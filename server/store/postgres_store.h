#ifndef CHAT_SERVER_STORE_POSTGRES_STORE_H_
#define CHAT_SERVER_STORE_POSTGRES_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/conversation_store.h"
#include "server/store/idempotency_store.h"
#include "server/store/key_store.h"
#include "server/store/quota_store.h"
#include "server/store/stream_store.h"
#include "server/store/turn_tree.h"

namespace chat::store {

// The schema version this build creates and migrates databases to.
inline constexpr int kPostgresSchemaVersion = 7;

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
// Keys and counters: keys() and quotas() are this object, on the same pool.
// A quota charge is one INSERT ... ON CONFLICT DO UPDATE whose update runs
// only while the sum stays within the limit, so replicas charging the same
// counter at once never both take the last unit.
//
// Thread-safe: calls take a connection from a bounded pool.
class PostgresConversationStore final : public ConversationStore,
                                        private KeyStore,
                                        private QuotaStore,
                                        private IdempotencyStore,
                                        private StreamStore {
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
  absl::StatusOr<StoredTurn> AppendTurn(const SessionKey& key,
                                        int expected_turn_count,
                                        absl::string_view system_prompt,
                                        const Turn& turn) override;
  absl::StatusOr<int> ResetSession(const SessionKey& key,
                                   absl::Time now) override;
  absl::StatusOr<bool> DeleteSession(const SessionKey& key) override;
  absl::StatusOr<std::vector<StoredMessage>> LoadBranch(const SessionKey& key,
                                                        int turn_id) override;
  absl::StatusOr<StoredTurn> AppendBranchTurn(const SessionKey& key,
                                              int parent_turn_id,
                                              const Turn& turn) override;
  absl::StatusOr<int> SwitchBranch(const SessionKey& key, int turn_id) override;
  absl::StatusOr<SessionPage> ListSessions(
      absl::string_view tenant, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<bool> SetTitle(const SessionKey& key, absl::string_view title,
                                bool only_if_untitled) override;
  // websearch_to_tsquery, ts_rank and ts_headline over a GIN-indexed
  // tsvector of each message.
  absl::StatusOr<SearchPage> SearchMessages(
      absl::string_view tenant, absl::string_view query, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<StoreStats> GetStats(absl::string_view tenant) override;
  absl::StatusOr<int64_t> DeleteSessionsIdleSince(absl::Time cutoff) override;
  absl::StatusOr<SessionArchive> ExportSession(const SessionKey& key) override;
  absl::Status ImportSession(absl::string_view tenant,
                             const SessionArchive& archive,
                             bool replace) override;
  KeyStore& keys() override { return *this; }
  QuotaStore& quotas() override { return *this; }
  IdempotencyStore* idempotency() override { return this; }
  StreamStore* streams() override { return this; }

 private:
  // KeyStore, reached through keys().
  absl::Status CreateKey(const ApiKey& key) override;
  absl::StatusOr<ApiKey> GetKey(absl::string_view id) override;
  absl::StatusOr<std::vector<ApiKey>> ListKeys(
      absl::string_view tenant) override;
  absl::StatusOr<bool> RevokeKey(absl::string_view id, absl::Time now) override;
  absl::StatusOr<bool> HasActiveKeys(absl::Time now) override;

  // QuotaStore, reached through quotas().
  absl::StatusOr<QuotaCharge> Charge(const QuotaCounter& counter,
                                     int64_t amount, int64_t limit) override;
  absl::Status Adjust(const QuotaCounter& counter, int64_t delta) override;
  absl::StatusOr<int64_t> Read(const QuotaCounter& counter) override;
  absl::StatusOr<int64_t> DeleteCountersBefore(absl::string_view scope_prefix,
                                               absl::Time cutoff) override;
  absl::Status AddUsage(const std::vector<UsageDelta>& deltas) override;
  absl::StatusOr<std::vector<UsageTotals>> GetUsage(absl::string_view tenant,
                                                    absl::string_view key_id,
                                                    absl::Time since,
                                                    absl::Time until) override;

  // IdempotencyStore, reached through idempotency().
  absl::StatusOr<ClaimResult> Claim(const RequestKey& key,
                                    absl::string_view fingerprint,
                                    absl::string_view owner, absl::Time now,
                                    absl::Time expires_at,
                                    absl::Time stale_before) override;
  absl::StatusOr<bool> Complete(const RequestKey& key, absl::string_view owner,
                                const IdempotentAnswer& answer) override;
  absl::Status Release(const RequestKey& key, absl::string_view owner) override;
  absl::StatusOr<RequestRecord> Lookup(const RequestKey& key,
                                       absl::Time now) override;
  absl::StatusOr<int64_t> DeleteExpired(absl::Time now, int limit) override;

  // StreamStore, reached through streams().
  absl::StatusOr<StreamControl> AppendStream(
      const StreamAppend& append) override;
  absl::StatusOr<StreamRead> ReadStream(
      const SessionKey& session, absl::string_view answer_id, int64_t after_seq,
      absl::Time now, std::optional<absl::Time> touch) override;
  absl::StatusOr<std::string> RequestCancel(const SessionKey& session,
                                            absl::Time now) override;
  absl::StatusOr<int64_t> DeleteExpiredStreams(absl::Time now,
                                               int limit) override;

  // One batch of a sweep: the prepared `statement` deletes up to `limit`
  // rows that expired before `now`. Returns how many it deleted.
  absl::StatusOr<int64_t> DeleteExpiredWith(const char* statement,
                                            absl::Time now, int limit);

  class Connection;
  class Lease;
  friend class Lease;

  PostgresConversationStore(std::string conninfo, PostgresOptions options);

  absl::Status MigrateSchema(Connection& connection);

  // The branch to `turn_id`, or the active branch when nullopt.
  absl::StatusOr<std::vector<StoredMessage>> LoadBranchOrActive(
      const SessionKey& key, std::optional<int> turn_id);
  // Inside the caller's transaction, with the session row locked: writes
  // `turn` as turn `stored_turns + 1` under `parent_turn_id`, at depth
  // `depth`, and makes it the active leaf.
  static absl::Status InsertTurn(Lease& c, const SessionKey& key,
                                 int64_t stored_turns, int64_t parent_turn_id,
                                 int64_t depth, const Turn& turn);
  // The session's turn tree, read on `c`.
  static absl::StatusOr<TurnTree> ReadTurnTree(Lease& c, const SessionKey& key);

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
