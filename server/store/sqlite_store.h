#ifndef CHAT_SERVER_STORE_SQLITE_STORE_H_
#define CHAT_SERVER_STORE_SQLITE_STORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
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

namespace chat::store {

namespace sqlite_internal {
// One sqlite3 connection and the statements prepared on it; defined in
// sqlite_store.cc. Not thread-safe: used by whoever holds the mutex guarding
// it.
class Connection;
}  // namespace sqlite_internal

// The schema version (PRAGMA user_version) this build creates and migrates
// files to. A file with a higher version was written by a newer build and is
// refused rather than misread.
inline constexpr int kSqliteSchemaVersion = 9;

// A ConversationStore in a SQLite database file.
//
// Layout: one row per session (its metadata, turn count and token sums) and
// one row per message, so appending a turn writes two rows and updates one;
// the conversation is never rewritten. Stats read only session rows.
//
// Durability: WAL journal with synchronous=FULL, so a turn acknowledged by
// AppendTurn survives a process crash and also an OS crash or power loss.
//
// Group commit: concurrent AppendTurn calls queue up, and the first in line
// writes the whole queue in one transaction (each turn in a savepoint of its
// own, so one failing turn does not undo the others) and one fsync, as
// LevelDB's writers queue does. Every caller still returns only after the
// COMMIT that holds its turn.
//
// Connections: one read-write connection, used under mu_, for every write;
// and, for a file, a few read-only connections, each used under a mutex of
// its own, so reads run beside each other and beside a commit (WAL). Each
// connection prepares a statement the first time it runs it and keeps it
// until the store closes.
//
// Keys and counters: keys() and quotas() are this object, on the same
// connections. Their writes run on the writer connection under mu_ (each one
// statement or one BEGIN IMMEDIATE transaction), outside the turn queue;
// their reads use the read-only connections. Every process that opens the
// file shares them, and a quota charge is atomic across those processes: it
// checks and adds under SQLite's write lock.
//
// Thread-safe. Other processes may open the same file; writers take the
// write lock up front (BEGIN IMMEDIATE) and wait for it up to a busy timeout,
// after which the call fails with kUnavailable.
class SqliteConversationStore final : public ConversationStore,
                                      private KeyStore,
                                      private QuotaStore,
                                      private IdempotencyStore,
                                      private StreamStore {
 public:
  // Opens (creating if absent) the database at `path`, creating its parent
  // directory if needed, and migrates its schema to kSqliteSchemaVersion.
  // ":memory:" opens a private in-memory database. kFailedPrecondition if the
  // file's schema is newer than this build knows; kUnavailable or kInternal
  // if it cannot be opened or migrated.
  static absl::StatusOr<std::unique_ptr<SqliteConversationStore>> Open(
      absl::string_view path);

  ~SqliteConversationStore() override;

  absl::StatusOr<SessionInfo> GetSession(const SessionKey& key) override;
  absl::StatusOr<std::vector<StoredMessage>> LoadHistory(
      const SessionKey& key) override;
  absl::StatusOr<StoredTurn> AppendTurn(const SessionKey& key,
                                        int expected_turn_count,
                                        absl::string_view system_prompt,
                                        const Turn& turn) override;
  absl::StatusOr<std::vector<StoredMessage>> LoadBranch(const SessionKey& key,
                                                        int turn_id) override;
  absl::StatusOr<StoredTurn> AppendBranchTurn(const SessionKey& key,
                                              int parent_turn_id,
                                              const Turn& turn) override;
  absl::StatusOr<int> SwitchBranch(const SessionKey& key, int turn_id) override;
  absl::StatusOr<int> ResetSession(const SessionKey& key,
                                   absl::Time now) override;
  absl::StatusOr<bool> DeleteSession(const SessionKey& key) override;
  absl::StatusOr<SessionPage> ListSessions(
      absl::string_view tenant, int page_size,
      absl::string_view page_token) override;
  absl::StatusOr<StoreStats> GetStats(absl::string_view tenant) override;
  absl::StatusOr<int64_t> DeleteSessionsIdleSince(absl::Time cutoff) override;
  absl::StatusOr<bool> SetTitle(const SessionKey& key, absl::string_view title,
                                bool only_if_untitled) override;
  // FTS5 (bm25 ranking, snippet()); every word of the query must occur.
  absl::StatusOr<SearchPage> SearchMessages(
      absl::string_view tenant, absl::string_view query, int page_size,
      absl::string_view page_token) override;
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

  // One queued write: an AppendTurn call, or a SetTitle call (no turn).
  struct Writer {
    Writer(const SessionKey* key, int expected_turn_count,
           absl::string_view system_prompt, const Turn* turn)
        : key(key),
          expected_turn_count(expected_turn_count),
          system_prompt(system_prompt),
          turn(turn) {}
    Writer(const SessionKey* key, absl::string_view title,
           bool only_if_untitled)
        : key(key),
          expected_turn_count(0),
          turn(nullptr),
          title(title),
          only_if_untitled(only_if_untitled) {}

    const SessionKey* const key;
    const int expected_turn_count;
    const absl::string_view system_prompt;
    const Turn* const turn;
    const absl::string_view title;
    const bool only_if_untitled = false;
    // AppendTurn: where the turn went. SetTitle: turn_count 1 if the title
    // was set, 0 if not.
    absl::StatusOr<StoredTurn> result = absl::UnknownError("not written");
    bool done = false;
    absl::CondVar cv;
  };

  using Connection = sqlite_internal::Connection;

  // Takes ownership of an open, configured and migrated connection.
  explicit SqliteConversationStore(std::unique_ptr<Connection> writer);

  // The branch to `turn_id`, or the active branch when nullopt.
  absl::StatusOr<std::vector<StoredMessage>> LoadBranchOrActive(
      const SessionKey& key, std::optional<int> turn_id);

  // Writes `batch` in one transaction; sets each writer's result.
  void CommitBatch(const std::vector<Writer*>& batch) ABSL_LOCKS_EXCLUDED(mu_);
  // The usual case: one transaction without savepoints (a savepoint costs
  // FTS5 an index segment). A write refused before it changed anything
  // fails alone. Returns false, with nothing stored, when a write failed
  // halfway and the others must be written without it.
  bool CommitAllLocked(const std::vector<Writer*>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A savepoint per turn: a turn that fails halfway is undone alone.
  void CommitEachLocked(const std::vector<Writer*>& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues `w` and waits until it is written, by this call (which then
  // writes what queued meanwhile too) or by the one before; `w.result`.
  absl::StatusOr<StoredTurn> Write(Writer& w)
      ABSL_LOCKS_EXCLUDED(queue_mu_, mu_);
  // Writes one queued call inside the open transaction.
  absl::StatusOr<StoredTurn> WriteLocked(const Writer& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends one turn inside the open transaction.
  absl::StatusOr<StoredTurn> AppendLocked(const Writer& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<bool> SetTitleLocked(const SessionKey& key,
                                      absl::string_view title,
                                      bool only_if_untitled)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A read-only connection and the lock that gives one call use of it.
  struct ReadConnection {
    explicit ReadConnection(std::unique_ptr<Connection> c);
    ~ReadConnection();

    absl::Mutex mu;
    const std::unique_ptr<Connection> connection ABSL_PT_GUARDED_BY(mu);
  };
  // Holds a connection to read on, locked for its lifetime: a reader, or the
  // writer under mu_ when there are no readers (an in-memory database). The
  // lock is taken in AcquireReader() and released here, which the thread
  // safety analysis cannot follow through the return value. Declare it
  // before the statements borrowed from its connection: they go back to the
  // connection's cache when destroyed, which must happen under the lock.
  class Reader {
   public:
    Reader(absl::Mutex* mu, Connection* connection)
        : mu_(mu), connection_(connection) {}
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;
    ~Reader() ABSL_NO_THREAD_SAFETY_ANALYSIS { mu_->Unlock(); }
    Connection& connection() const { return *connection_; }

   private:
    absl::Mutex* const mu_;
    Connection* const connection_;
  };
  Reader AcquireReader() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  std::vector<std::unique_ptr<ReadConnection>> readers_;  // Fixed after Open.
  std::atomic<size_t> next_reader_{0};

  // Guards writers_; never held during I/O, so callers can queue while the
  // leader's batch is being written.
  absl::Mutex queue_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(queue_mu_);

  absl::Mutex mu_;
  // A connection runs one transaction at a time, and its cached statements
  // are used by one call at a time; mu_ also keeps sqlite3_errmsg() tied to
  // the call that failed.
  const std::unique_ptr<Connection> writer_ ABSL_PT_GUARDED_BY(mu_);
};

// Same as SqliteConversationStore::Open(path), typed as the interface.
absl::StatusOr<std::unique_ptr<ConversationStore>> OpenSqliteConversationStore(
    absl::string_view path);

}  // namespace chat::store

#endif  // CHAT_SERVER_STORE_SQLITE_STORE_H_
