#include "server/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/expiry_sweep.h"
#include "server/store/key_columns.h"
#include "server/store/page_token.h"
#include "server/store/turn_tree.h"

namespace chat::store {
namespace {

// How long a call waits for another process's lock on the file before giving
// up with kUnavailable.
constexpr int kBusyTimeoutMs = 5000;

// Read-only connections opened beside the writer (a file database only).
constexpr int kReadConnections = 4;

// kMigrations[i] moves the schema from version i to version i + 1; Open()
// applies the steps a file is missing, in order, one transaction each. Append
// new steps; never edit one that has shipped, since files in the field
// already ran it.
constexpr const char* kMigrations[] = {
    // 1: sessions and their messages.
    R"sql(
CREATE TABLE sessions (
  tenant        TEXT    NOT NULL,
  session_id    TEXT    NOT NULL,
  system_prompt TEXT    NOT NULL,
  created_at_us INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL,
  -- Kept with each turn so GetStats and the optimistic check in AppendTurn
  -- never count messages.
  turn_count    INTEGER NOT NULL,
  input_tokens  INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  PRIMARY KEY (tenant, session_id)
);

-- ListSessions walks this index in listing order, starting at its page
-- token, so a page reads only the rows it returns.
CREATE INDEX sessions_by_recency
  ON sessions (tenant, updated_at_us DESC, session_id);

CREATE TABLE messages (
  tenant        TEXT    NOT NULL,
  session_id    TEXT    NOT NULL,
  -- 0-based position in the conversation: turn n is seq 2n (user) and
  -- 2n + 1 (assistant).
  seq           INTEGER NOT NULL,
  role          TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
  content       TEXT    NOT NULL,
  created_at_us INTEGER NOT NULL,
  -- Set on assistant messages only: what produced the reply.
  model         TEXT,
  stop_reason   TEXT,
  input_tokens  INTEGER,
  output_tokens INTEGER,
  PRIMARY KEY (tenant, session_id, seq),
  FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, session_id)
    ON DELETE CASCADE
);
)sql",
    // 2: an index for the retention sweep (DeleteSessionsIdleSince), which
    // deletes by updated_at_us across all tenants. sessions_by_recency leads
    // with tenant and cannot serve it, so without this index every sweep
    // reads every session. PostgreSQL has had it since its schema 1.
    R"sql(
CREATE INDEX sessions_by_idle ON sessions (updated_at_us);
)sql",
    // 3: API keys, quota counters and daily usage (PostgreSQL schema 2).
    R"sql(
CREATE TABLE api_keys (
  -- The public part of chatd_<id>_<secret>.
  id                  TEXT    NOT NULL PRIMARY KEY,
  tenant              TEXT    NOT NULL,
  name                TEXT    NOT NULL,
  -- Lowercase hex SHA-256 of the secret; the key itself is never stored.
  secret_hash         TEXT    NOT NULL,
  created_at_us       INTEGER NOT NULL,
  -- NULL: never expires; not revoked.
  expires_at_us       INTEGER,
  revoked_at_us       INTEGER,
  -- KeyLimits; 0 (or '') means no limit of that kind.
  requests_per_minute INTEGER NOT NULL,
  tokens_per_minute   INTEGER NOT NULL,
  max_streams         INTEGER NOT NULL,
  max_tokens          INTEGER NOT NULL,
  -- Model names joined with newlines (see key_columns.h).
  allowed_models      TEXT    NOT NULL,
  budget_tokens       INTEGER NOT NULL,
  budget_period       TEXT    NOT NULL
    CHECK (budget_period IN ('', 'day', 'month'))
);

-- ListKeys of one tenant reads this index in listing order.
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at_us, id);

-- One fixed window of one limit ("rpm/KEY_ID" from a minute's start).
CREATE TABLE quota_counters (
  scope           TEXT    NOT NULL,
  window_start_us INTEGER NOT NULL,
  used            INTEGER NOT NULL,
  PRIMARY KEY (scope, window_start_us)
);

-- DeleteCountersBefore deletes by window across every scope.
CREATE INDEX quota_counters_by_window ON quota_counters (window_start_us);

CREATE TABLE usage_daily (
  tenant        TEXT    NOT NULL,
  -- '' for anonymous calls.
  key_id        TEXT    NOT NULL,
  -- Midnight UTC, whole seconds.
  day_us        INTEGER NOT NULL,
  calls         INTEGER NOT NULL,
  input_tokens  INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  PRIMARY KEY (tenant, key_id, day_us)
);
)sql",
    // 4: the cost of each answer in US dollars (PostgreSQL schema 3). NULL
    // on a message: its model had no price; NULL on a session: none of its
    // stored turns has a cost. Rows written before this version have none.
    R"sql(
ALTER TABLE sessions ADD COLUMN cost_usd REAL;
ALTER TABLE messages ADD COLUMN cost_usd REAL;
ALTER TABLE usage_daily ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
)sql",
    // 5: request ids of idempotent turns (PostgreSQL schema 4): who claimed
    // each (owner, a token per claim), the request's fingerprint, and the
    // answer once stored (answered_at_us NOT NULL; the columns say what
    // ChatResponse said). Rows live until expires_at_us; the sweep deletes
    // them by that index.
    R"sql(
CREATE TABLE idempotency_keys (
  tenant         TEXT    NOT NULL,
  request_id     TEXT    NOT NULL,
  fingerprint    TEXT    NOT NULL,
  owner          TEXT    NOT NULL,
  claimed_at_us  INTEGER NOT NULL,
  expires_at_us  INTEGER NOT NULL,
  session_id     TEXT,
  response       BLOB,
  answered_at_us INTEGER,
  turn_count     INTEGER,
  model          TEXT,
  stop_reason    TEXT,
  input_tokens   INTEGER,
  output_tokens  INTEGER,
  cost_usd       REAL,
  PRIMARY KEY (tenant, request_id)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at_us);
)sql",
    // 6: session titles and full-text search (PostgreSQL schema 5). An
    // external-content FTS5 table indexes messages.content without a second
    // copy of the text; the triggers keep it in step with every insert and
    // delete (ON DELETE CASCADE fires them too), and 'rebuild' indexes the
    // rows written before this version. It is keyed by the messages' rowid,
    // which VACUUM may renumber in a table without an INTEGER PRIMARY KEY:
    // run INSERT INTO messages_fts (messages_fts) VALUES ('rebuild') after a
    // VACUUM. unicode61 with diacritics removed: "cafe" finds "Café".
    R"sql(
ALTER TABLE sessions ADD COLUMN title TEXT NOT NULL DEFAULT '';
CREATE VIRTUAL TABLE messages_fts USING fts5(
  content, content = 'messages', content_rowid = 'rowid',
  tokenize = 'unicode61 remove_diacritics 2');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content)
    VALUES ('delete', old.rowid, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
  INSERT INTO messages_fts (messages_fts, rowid, content)
    VALUES ('delete', old.rowid, old.content);
  INSERT INTO messages_fts (rowid, content) VALUES (new.rowid, new.content);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
)sql",
    // 7: branches (PostgreSQL schema 6). Each message names its turn and the
    // turn before it on its branch (0: a first turn); a session records its
    // active leaf and how many turns it stores on all branches (turn_count
    // stays the active branch's length). A turn's messages keep seq 2(id-1)
    // and 2(id-1)+1, so seq still orders by time. A linear history becomes
    // one branch: turn n+1 follows turn n, the last one active.
    R"sql(
ALTER TABLE messages ADD COLUMN turn_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN parent_turn_id INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET turn_id = seq / 2 + 1, parent_turn_id = seq / 2;
ALTER TABLE sessions ADD COLUMN active_turn_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN stored_turns INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET active_turn_id = turn_count, stored_turns = turn_count;
)sql",
    // 8: streamed answers as they are produced, for resuming a stream on any
    // replica (PostgreSQL schema 7). A row per answer: whose it is, until
    // when it is kept, the last time a reader on another replica polled it,
    // whether CancelStream asked to stop it, and its outcome once it ended
    // (status_code NOT NULL; 0 with the final event in `done`). A row per
    // delta, numbered from 1, deleted with its answer.
    R"sql(
CREATE TABLE stream_answers (
  answer_id         TEXT    NOT NULL PRIMARY KEY,
  tenant            TEXT    NOT NULL,
  session_id        TEXT    NOT NULL,
  started_at_us     INTEGER NOT NULL,
  expires_at_us     INTEGER NOT NULL,
  reader_seen_at_us INTEGER,
  cancel_requested  INTEGER NOT NULL DEFAULT 0,
  status_code       INTEGER,
  status_message    TEXT,
  done              BLOB
);
CREATE INDEX stream_answers_by_session
  ON stream_answers (tenant, session_id, started_at_us);
CREATE INDEX stream_answers_by_expiry ON stream_answers (expires_at_us);
CREATE TABLE stream_deltas (
  answer_id TEXT    NOT NULL
    REFERENCES stream_answers (answer_id) ON DELETE CASCADE,
  seq       INTEGER NOT NULL,
  text      BLOB    NOT NULL,
  PRIMARY KEY (answer_id, seq)
);
)sql",
    // 9: messages are indexed for search by the store itself, no longer by
    // a trigger. A statement that fires a trigger may fail halfway, so
    // SQLite wraps it in a statement savepoint, and FTS5 writes its pending
    // index out at every savepoint: a new index segment (and the merging
    // that follows) for each message, the largest cost of storing a turn.
    // InsertTurn inserts each message's row into messages_fts right after
    // the message. The delete and update triggers stay (rare, and a cascade
    // from sessions must reach the index).
    R"sql(
DROP TRIGGER messages_fts_insert;
)sql",
};
static_assert(std::size(kMigrations) == kSqliteSchemaVersion,
              "kSqliteSchemaVersion must equal the number of migrations");

// Failures the caller may retry (a lock held too long, a full or failing
// disk) are kUnavailable; the rest mean a bug or a damaged file.
absl::StatusCode StatusCodeFor(int rc) {
  switch (rc & 0xff) {  // The primary code of an extended result code.
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kInternal;
  }
}

// Call right after the failing call: sqlite3_errmsg() describes the latest.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  return absl::Status(StatusCodeFor(rc),
                      absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db)));
}

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

// The statements the store runs, each prepared once per connection and kept
// (see SqliteConversationStore::Connection).
enum class Sql {
  kBegin,
  kCommit,
  kSavepoint,
  kRollbackToSavepoint,
  kReleaseSavepoint,
  kGetSession,
  kLoadHistory,
  kReadTurnCount,
  kInsertSession,
  kInsertMessage,
  kIndexMessage,
  kCountTurn,
  kClearMessages,
  kResetSession,
  kDeleteSession,
  kListFirst,
  kListAfter,
  kStats,
  kDeleteIdle,
  kInsertKey,
  kGetKey,
  kListKeys,
  kListTenantKeys,
  kRevokeKey,
  kHasActiveKeys,
  kChargeCounter,
  kReadCounter,
  kAdjustCounter,
  kDeleteCounters,
  kAddUsage,
  kGetUsage,
  kClaimRequest,
  kCompleteRequest,
  kReleaseRequest,
  kLookupRequest,
  kDeleteExpiredRequests,
  kSetTitle,
  kSessionExists,
  kSearch,
  kTurnLinks,
  kSwitchBranch,
  kUpsertStream,
  kInsertStreamDelta,
  kFinishStream,
  kStreamControl,
  kFindStream,
  kReadStreamDeltas,
  kTouchStream,
  kCancelStreams,
  kDeleteExpiredStreams,
};
constexpr size_t kSqlCount =
    static_cast<size_t>(Sql::kDeleteExpiredStreams) + 1;

const char* SqlText(Sql id) {
  switch (id) {
    // BEGIN IMMEDIATE takes the write lock at once rather than at the first
    // write (see Transaction).
    case Sql::kBegin:
      return "BEGIN IMMEDIATE";
    case Sql::kCommit:
      return "COMMIT";
    case Sql::kSavepoint:
      return "SAVEPOINT turn";
    case Sql::kRollbackToSavepoint:
      return "ROLLBACK TO turn";
    case Sql::kReleaseSavepoint:
      return "RELEASE turn";
    case Sql::kGetSession:
      return R"sql(
      SELECT system_prompt, created_at_us, updated_at_us, turn_count, title
      FROM sessions WHERE tenant = ?1 AND session_id = ?2)sql";
    // One statement, so one snapshot: the session's existence and its
    // messages cannot disagree even with writers in other processes. A
    // session without messages yields a single row of NULLs. Every branch
    // comes back (SelectBranch picks one): the whole tree, to tell each
    // turn's siblings, in the one snapshot.
    case Sql::kLoadHistory:
      return R"sql(
      SELECT m.role, m.content, m.created_at_us, m.output_tokens, m.turn_id,
             m.parent_turn_id, s.active_turn_id
      FROM sessions AS s
      LEFT JOIN messages AS m
        ON m.tenant = s.tenant AND m.session_id = s.session_id
      WHERE s.tenant = ?1 AND s.session_id = ?2
      ORDER BY m.seq)sql";
    case Sql::kReadTurnCount:
      return "SELECT turn_count, stored_turns, active_turn_id FROM sessions "
             "WHERE tenant = ?1 AND session_id = ?2";
    case Sql::kInsertSession:
      return R"sql(
      INSERT INTO sessions (tenant, session_id, system_prompt, created_at_us,
                            updated_at_us, turn_count, input_tokens,
                            output_tokens)
      VALUES (?1, ?2, ?3, ?4, ?4, 0, 0, 0))sql";
    case Sql::kInsertMessage:
      return R"sql(
      INSERT INTO messages (tenant, session_id, seq, role, content,
                            created_at_us, model, stop_reason, input_tokens,
                            output_tokens, cost_usd, turn_id, parent_turn_id)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13))sql";
    case Sql::kIndexMessage:
      // The message just inserted on this connection (schema version 9).
      return R"sql(
      INSERT INTO messages_fts (rowid, content)
      VALUES (last_insert_rowid(), ?1))sql";
    case Sql::kCountTurn:
      return R"sql(
      UPDATE sessions
      SET turn_count = ?7,
          stored_turns = stored_turns + 1,
          active_turn_id = ?8,
          updated_at_us = ?3,
          input_tokens = input_tokens + ?4,
          output_tokens = output_tokens + ?5,
          -- A turn without a cost (NULL ?6) leaves the sum as it was.
          cost_usd = CASE WHEN ?6 IS NULL THEN cost_usd
                          ELSE COALESCE(cost_usd, 0) + ?6 END
      WHERE tenant = ?1 AND session_id = ?2)sql";
    case Sql::kClearMessages:
      return "DELETE FROM messages WHERE tenant = ?1 AND session_id = ?2";
    case Sql::kResetSession:
      return R"sql(
      UPDATE sessions
      SET turn_count = 0, input_tokens = 0, output_tokens = 0,
          cost_usd = NULL, updated_at_us = ?3, active_turn_id = 0,
          stored_turns = 0
      WHERE tenant = ?1 AND session_id = ?2)sql";
    // ON DELETE CASCADE removes the messages in the same statement.
    case Sql::kDeleteSession:
      return "DELETE FROM sessions WHERE tenant = ?1 AND session_id = ?2";
    // The condition after the cursor is written as a range on updated_at_us
    // plus a filter, so SQLite seeks into sessions_by_recency and reads it in
    // order rather than sorting.
    case Sql::kListFirst:
      return R"sql(
      SELECT session_id, system_prompt, created_at_us, updated_at_us,
             turn_count, title
      FROM sessions
      WHERE tenant = ?1
      ORDER BY updated_at_us DESC, session_id
      LIMIT ?2)sql";
    case Sql::kListAfter:
      return R"sql(
      SELECT session_id, system_prompt, created_at_us, updated_at_us,
             turn_count, title
      FROM sessions
      WHERE tenant = ?1
        AND updated_at_us <= ?3
        AND (updated_at_us < ?3 OR session_id > ?4)
      ORDER BY updated_at_us DESC, session_id
      LIMIT ?2)sql";
    // Session rows carry the per-session sums, so this reads one row per
    // session and never the messages.
    case Sql::kStats:
      return R"sql(
      SELECT COUNT(*), COALESCE(SUM(stored_turns), 0),
             COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
             SUM(cost_usd)
      FROM sessions WHERE tenant = ?1)sql";
    // A range on sessions_by_idle; ON DELETE CASCADE takes the messages.
    // The turn tree of one session, parents first.
    case Sql::kTurnLinks:
      return R"sql(
      SELECT turn_id, parent_turn_id FROM messages
      WHERE tenant = ?1 AND session_id = ?2 AND role = 'user'
      ORDER BY seq)sql";
    case Sql::kSwitchBranch:
      return R"sql(
      UPDATE sessions SET active_turn_id = ?3, turn_count = ?4
      WHERE tenant = ?1 AND session_id = ?2)sql";
    case Sql::kDeleteIdle:
      return "DELETE FROM sessions WHERE updated_at_us < ?1";
    // DO NOTHING rather than a constraint error: a taken id is an answer
    // (kAlreadyExists), told apart by the change count.
    case Sql::kInsertKey:
      return "INSERT INTO api_keys (id, tenant, name, secret_hash, "
             "created_at_us, expires_at_us, revoked_at_us, "
             "requests_per_minute, tokens_per_minute, max_streams, "
             "max_tokens, allowed_models, budget_tokens, budget_period) "
             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
             "?13, ?14) ON CONFLICT (id) DO NOTHING";
    // The three key reads select the columns in the order ReadKey() takes.
    case Sql::kGetKey:
      return "SELECT id, tenant, name, secret_hash, created_at_us, "
             "expires_at_us, "
             "revoked_at_us, requests_per_minute, tokens_per_minute, "
             "max_streams, max_tokens, allowed_models, budget_tokens, "
             "budget_period FROM api_keys "
             "WHERE id = ?1";
    case Sql::kListKeys:
      return "SELECT id, tenant, name, secret_hash, created_at_us, "
             "expires_at_us, "
             "revoked_at_us, requests_per_minute, tokens_per_minute, "
             "max_streams, max_tokens, allowed_models, budget_tokens, "
             "budget_period FROM api_keys "
             "ORDER BY created_at_us, id";
    case Sql::kListTenantKeys:
      return "SELECT id, tenant, name, secret_hash, created_at_us, "
             "expires_at_us, "
             "revoked_at_us, requests_per_minute, tokens_per_minute, "
             "max_streams, max_tokens, allowed_models, budget_tokens, "
             "budget_period FROM api_keys "
             "WHERE tenant = ?1 ORDER BY created_at_us, id";
    // COALESCE keeps the first revocation time. The change count includes
    // a row set to the value it had, so it tells whether the key exists.
    case Sql::kRevokeKey:
      return "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, ?2) "
             "WHERE id = ?1";
    case Sql::kHasActiveKeys:
      return R"sql(
      SELECT EXISTS (
        SELECT 1 FROM api_keys
        WHERE (revoked_at_us IS NULL OR revoked_at_us > ?1)
          AND (expires_at_us IS NULL OR expires_at_us > ?1)))sql";
    // Check and add in one statement, under the write lock: no row comes
    // back when the sum would pass the limit ?4. A new counter takes the
    // amount ?3 as it is; Charge() never runs this with ?3 > ?4.
    case Sql::kChargeCounter:
      return R"sql(
      INSERT INTO quota_counters (scope, window_start_us, used)
      VALUES (?1, ?2, ?3)
      ON CONFLICT (scope, window_start_us) DO UPDATE
        SET used = used + excluded.used
        WHERE used + excluded.used <= ?4
      RETURNING used)sql";
    case Sql::kReadCounter:
      return "SELECT used FROM quota_counters "
             "WHERE scope = ?1 AND window_start_us = ?2";
    // Two-argument MAX is SQLite's scalar maximum: the floor at 0.
    case Sql::kAdjustCounter:
      return R"sql(
      INSERT INTO quota_counters (scope, window_start_us, used)
      VALUES (?1, ?2, MAX(0, ?3))
      ON CONFLICT (scope, window_start_us) DO UPDATE
        SET used = MAX(0, used + ?3))sql";
    case Sql::kDeleteCounters:
      return "DELETE FROM quota_counters WHERE window_start_us < ?1 AND "
             "substr(scope, 1, length(?2)) = ?2";
    case Sql::kAddUsage:
      return R"sql(
      INSERT INTO usage_daily (tenant, key_id, day_us, calls, input_tokens,
                               output_tokens, cost_usd)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
      ON CONFLICT (tenant, key_id, day_us) DO UPDATE
        SET calls = calls + excluded.calls,
            input_tokens = input_tokens + excluded.input_tokens,
            output_tokens = output_tokens + excluded.output_tokens,
            cost_usd = cost_usd + excluded.cost_usd)sql";
    // An empty ?1 or ?2 matches every tenant or key.
    case Sql::kGetUsage:
      return R"sql(
      SELECT tenant, key_id, SUM(calls), SUM(input_tokens),
             SUM(output_tokens), SUM(cost_usd)
      FROM usage_daily
      WHERE (?1 = '' OR tenant = ?1) AND (?2 = '' OR key_id = ?2)
        AND day_us >= ?3 AND day_us < ?4
      GROUP BY tenant, key_id
      ORDER BY tenant, key_id)sql";
    // A new id, or one whose record expired or whose unanswered claim went
    // stale (?7) with the same fingerprint, is (re)claimed; anything else
    // leaves the row as it is and returns nothing. Runs under the write
    // lock, so of concurrent claims exactly one returns a row.
    case Sql::kClaimRequest:
      return R"sql(
      INSERT INTO idempotency_keys (tenant, request_id, fingerprint, owner,
                                    claimed_at_us, expires_at_us)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6)
      ON CONFLICT (tenant, request_id) DO UPDATE
        SET fingerprint = excluded.fingerprint, owner = excluded.owner,
            claimed_at_us = excluded.claimed_at_us,
            expires_at_us = excluded.expires_at_us, session_id = NULL,
            response = NULL, answered_at_us = NULL, turn_count = NULL,
            model = NULL, stop_reason = NULL, input_tokens = NULL,
            output_tokens = NULL, cost_usd = NULL
        WHERE expires_at_us <= ?5
           OR (answered_at_us IS NULL AND fingerprint = excluded.fingerprint
               AND claimed_at_us < ?7)
      RETURNING owner)sql";
    case Sql::kCompleteRequest:
      return R"sql(
      UPDATE idempotency_keys
        SET session_id = ?4, response = ?5, answered_at_us = ?6,
            turn_count = ?7, model = ?8, stop_reason = ?9, input_tokens = ?10,
            output_tokens = ?11, cost_usd = ?12
        WHERE tenant = ?1 AND request_id = ?2 AND owner = ?3)sql";
    case Sql::kReleaseRequest:
      return "DELETE FROM idempotency_keys WHERE tenant = ?1 AND "
             "request_id = ?2 AND owner = ?3 AND answered_at_us IS NULL";
    case Sql::kLookupRequest:
      return R"sql(
      SELECT fingerprint, owner, claimed_at_us, expires_at_us, answered_at_us,
             session_id, response, turn_count, model, stop_reason,
             input_tokens, output_tokens, cost_usd
      FROM idempotency_keys
      WHERE tenant = ?1 AND request_id = ?2 AND expires_at_us > ?3)sql";
    // A bounded batch: the write lock is held for one short statement.
    case Sql::kDeleteExpiredRequests:
      return R"sql(
      DELETE FROM idempotency_keys WHERE rowid IN (
        SELECT rowid FROM idempotency_keys WHERE expires_at_us <= ?1
        ORDER BY expires_at_us LIMIT ?2))sql";
    // ?4 = 1: only a session without a title (see SetTitle).
    case Sql::kSetTitle:
      return R"sql(
      UPDATE sessions SET title = ?3
      WHERE tenant = ?1 AND session_id = ?2 AND (?4 = 0 OR title = ''))sql";
    case Sql::kSessionExists:
      return "SELECT 1 FROM sessions WHERE tenant = ?1 AND session_id = ?2";
    // ?2 is an FTS5 query of quoted words (SearchExpression). rank is bm25,
    // lower is better. The tenant filter comes after the full-text match:
    // the index covers every tenant, the join keeps only ?1's messages.
    case Sql::kSearch:
      return R"sql(
      SELECT m.session_id, s.title, m.seq, m.role,
             snippet(messages_fts, 0, ?5, ?6, '…', 24), m.created_at_us
      FROM messages_fts AS f
      JOIN messages AS m ON m.rowid = f.rowid
      JOIN sessions AS s
        ON s.tenant = m.tenant AND s.session_id = m.session_id
      WHERE messages_fts MATCH ?2 AND m.tenant = ?1
      ORDER BY f.rank, m.created_at_us DESC, m.session_id, m.seq
      LIMIT ?3 OFFSET ?4)sql";
    case Sql::kUpsertStream:
      return R"sql(
      INSERT INTO stream_answers (answer_id, tenant, session_id, started_at_us,
                                  expires_at_us)
      VALUES (?1, ?2, ?3, ?4, ?5)
      ON CONFLICT (answer_id) DO UPDATE
        SET expires_at_us = excluded.expires_at_us)sql";
    // A delta already stored (a retried batch) is left as it was.
    case Sql::kInsertStreamDelta:
      return "INSERT INTO stream_deltas (answer_id, seq, text) "
             "VALUES (?1, ?2, ?3) ON CONFLICT (answer_id, seq) DO NOTHING";
    case Sql::kFinishStream:
      return "UPDATE stream_answers SET status_code = ?2, status_message = ?3, "
             "done = ?4 WHERE answer_id = ?1 AND status_code IS NULL";
    case Sql::kStreamControl:
      return "SELECT cancel_requested, reader_seen_at_us FROM stream_answers "
             "WHERE answer_id = ?1";
    // The named answer (?3), or the session's latest when ?3 is empty.
    case Sql::kFindStream:
      return R"sql(
      SELECT answer_id, status_code, status_message, done FROM stream_answers
      WHERE tenant = ?1 AND session_id = ?2 AND (?3 = '' OR answer_id = ?3)
        AND expires_at_us > ?4
      ORDER BY started_at_us DESC, answer_id DESC LIMIT 1)sql";
    case Sql::kReadStreamDeltas:
      return "SELECT text FROM stream_deltas WHERE answer_id = ?1 AND seq > ?2 "
             "ORDER BY seq";
    case Sql::kTouchStream:
      return "UPDATE stream_answers SET reader_seen_at_us = ?2 "
             "WHERE answer_id = ?1";
    case Sql::kCancelStreams:
      return R"sql(
      UPDATE stream_answers SET cancel_requested = 1
      WHERE tenant = ?1 AND session_id = ?2 AND status_code IS NULL
        AND expires_at_us > ?3
      RETURNING answer_id)sql";
    // A bounded batch, like kDeleteExpiredRequests; ON DELETE CASCADE takes
    // the deltas.
    case Sql::kDeleteExpiredStreams:
      return R"sql(
      DELETE FROM stream_answers WHERE rowid IN (
        SELECT rowid FROM stream_answers WHERE expires_at_us <= ?1
        ORDER BY expires_at_us LIMIT ?2))sql";
  }
  return "";  // Unreachable: the switch names every Sql.
}

// One prepared statement, for one call. A failed Bind() is remembered and
// returned by the next Step(), so a call site binds all its values and checks
// once. Either owned (Prepare: finalized when destroyed) or borrowed from a
// connection's cache (Borrow: reset, unbound and put back when destroyed).
class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, absl::string_view sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc =
        sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt,
                           /*pzTail=*/nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqliteError(db, rc, "prepare");
    }
    return Statement(db, stmt, /*home=*/nullptr);
  }

  // Lends `stmt`, taken out of the cache slot `home`, which must be empty
  // and outlive the Statement; it goes back there when the Statement dies.
  static Statement Borrow(sqlite3* db, sqlite3_stmt* stmt,
                          sqlite3_stmt** home) {
    return Statement(db, stmt, home);
  }

  Statement(Statement&& other) noexcept
      : db_(other.db_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        home_(other.home_),
        status_(std::move(other.status_)) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ == nullptr) return;
    if (home_ == nullptr) {
      sqlite3_finalize(stmt_);
      return;
    }
    // Reset also ends the statement's read of the database: a statement
    // left mid-way would pin a reader's snapshot (it would never see newer
    // commits) and hold back WAL checkpoints.
    Reset();
    if (*home_ == nullptr) {
      *home_ = stmt_;
    } else {
      sqlite3_finalize(stmt_);  // A second copy, lent while the first was out.
    }
  }

  Statement& Bind(int index, absl::string_view text) {
    // A null pointer would bind SQL NULL, not an empty string; and the
    // caller's buffer may die before the statement runs, hence TRANSIENT.
    return Check(sqlite3_bind_text(
        stmt_, index, text.data() == nullptr ? "" : text.data(),
        static_cast<int>(text.size()), SQLITE_TRANSIENT));
  }
  Statement& Bind(int index, int64_t value) {
    return Check(sqlite3_bind_int64(stmt_, index, value));
  }
  Statement& BindNull(int index) {
    return Check(sqlite3_bind_null(stmt_, index));
  }
  // Named apart from Bind so an integer literal is never ambiguous.
  Statement& BindDouble(int index, double value) {
    return Check(sqlite3_bind_double(stmt_, index, value));
  }
  Statement& BindDouble(int index, std::optional<double> value) {
    return value.has_value() ? BindDouble(index, *value) : BindNull(index);
  }

  // Advances to the next row: true if there is one, false when done.
  absl::StatusOr<bool> Step() {
    if (!status_.ok()) return status_;
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, sqlite3_sql(stmt_));
  }

  // Runs a statement that returns no rows.
  absl::Status Run() {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (*row) {
      return absl::InternalError(
          absl::StrCat("sqlite: unexpected row from ", sqlite3_sql(stmt_)));
    }
    return absl::OkStatus();
  }

  // Makes the statement ready to run again, with every parameter NULL.
  void Reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  bool IsNull(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }
  int64_t Int64(int column) const {
    return sqlite3_column_int64(stmt_, column);
  }
  double Double(int column) const {
    return sqlite3_column_double(stmt_, column);
  }
  std::string Text(int column) const {
    // sqlite3_column_bytes() must follow sqlite3_column_text(): the text
    // conversion can change the byte count.
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    const int size = sqlite3_column_bytes(stmt_, column);
    if (text == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(text), size);
  }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt, sqlite3_stmt** home)
      : db_(db), stmt_(stmt), home_(home) {}

  Statement& Check(int rc) {
    if (rc != SQLITE_OK && status_.ok()) status_ = SqliteError(db_, rc, "bind");
    return *this;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  sqlite3_stmt** home_;  // The cache slot to return to; null if owned.
  absl::Status status_;  // The first Bind() failure.
};

// Runs `sql`, which may hold several statements, ignoring any rows.
absl::Status Exec(sqlite3* db, absl::string_view what, const char* sql) {
  const int rc = sqlite3_exec(db, sql, /*callback=*/nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, what);
  return absl::OkStatus();
}

}  // namespace

namespace sqlite_internal {

// Prepares each statement the first time the connection runs it and keeps
// it until the connection closes: a call borrows it, and its Statement
// resets it and puts it back. SQLite re-prepares a kept statement by itself
// if the schema changes underneath (sqlite3_prepare_v3).
class Connection {
 public:
  // Takes ownership of `db` (which may be null after a failed open).
  explicit Connection(sqlite3* db) : db_(db) {}
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    // Every Statement is back by now; close_v2 would otherwise keep the
    // connection alive as a zombie until they were finalized.
    for (sqlite3_stmt* stmt : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  sqlite3* db() const { return db_; }

  // The statement `id`, ready to bind and run. The caller holds the lock
  // guarding this connection until the Statement is destroyed (it goes back
  // to this cache then). Using the same `id` twice at once works (the second
  // gets a fresh copy, finalized on return), but costs a prepare.
  absl::StatusOr<Statement> Prepare(Sql id) {
    sqlite3_stmt** const home = &statements_[static_cast<size_t>(id)];
    sqlite3_stmt* stmt = std::exchange(*home, nullptr);
    if (stmt == nullptr) {
      // PERSISTENT: kept for long, so SQLite allocates it outside its
      // lookaside memory, which is meant for short-lived objects.
      const int rc = sqlite3_prepare_v3(db_, SqlText(id), -1,
                                        SQLITE_PREPARE_PERSISTENT, &stmt,
                                        /*pzTail=*/nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return SqliteError(db_, rc, "prepare");
      }
    }
    return Statement::Borrow(db_, stmt, home);
  }

  // Runs the statement `id`, which returns no rows.
  absl::Status Run(Sql id) {
    absl::StatusOr<Statement> stmt = Prepare(id);
    if (!stmt.ok()) return stmt.status();
    return stmt->Run();
  }

 private:
  sqlite3* const db_;
  std::array<sqlite3_stmt*, kSqlCount> statements_{};  // Null: not prepared.
};

}  // namespace sqlite_internal

namespace {

using sqlite_internal::Connection;

// A write transaction. It takes the write lock at Begin() (BEGIN IMMEDIATE)
// rather than at the first write, so two read-then-write transactions in
// different processes cannot deadlock; the loser waits for busy_timeout. If
// not committed, the destructor rolls back: every early return leaves the
// database as it was.
class Transaction {
 public:
  explicit Transaction(Connection& connection) : connection_(connection) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    // Also covers a failed COMMIT, which can leave the transaction open.
    if (sqlite3_get_autocommit(connection_.db()) == 0) {
      sqlite3_exec(connection_.db(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  absl::Status Begin() { return connection_.Run(Sql::kBegin); }
  absl::Status Commit() { return connection_.Run(Sql::kCommit); }

 private:
  Connection& connection_;
};

absl::StatusOr<int> ReadUserVersion(sqlite3* db) {
  absl::StatusOr<Statement> stmt =
      Statement::Prepare(db, "PRAGMA user_version");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("sqlite: PRAGMA user_version: no row");
  const int64_t version = stmt->Int64(0);
  if (version > kSqliteSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "sqlite: database schema version ", version,
        " is newer than this build supports (", kSqliteSchemaVersion,
        "): the file was written by a newer chatd; upgrade chatd or use "
        "another file"));
  }
  if (version < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("sqlite: invalid database schema version ", version,
                     ": the file was not written by chatd"));
  }
  return static_cast<int>(version);
}

absl::Status Migrate(Connection& connection) {
  sqlite3* const db = connection.db();
  for (;;) {
    absl::StatusOr<int> version = ReadUserVersion(db);
    if (!version.ok()) return version.status();
    if (*version == kSqliteSchemaVersion) return absl::OkStatus();
    Transaction txn(connection);
    if (absl::Status s = txn.Begin(); !s.ok()) return s;
    // Read again under the write lock: another process opening the same file
    // may have migrated it meanwhile.
    version = ReadUserVersion(db);
    if (!version.ok()) return version.status();
    if (*version == kSqliteSchemaVersion) return absl::OkStatus();
    const int next = *version + 1;
    const std::string step = absl::StrCat("migrate to schema ", next);
    // user_version lives in the file header and is written by the same
    // transaction, so a step is applied and recorded together or not at all.
    if (absl::Status s = Exec(db, step, kMigrations[*version]); !s.ok()) {
      return s;
    }
    if (absl::Status s = Exec(
            db, step, absl::StrCat("PRAGMA user_version = ", next).c_str());
        !s.ok()) {
      return s;
    }
    if (absl::Status s = txn.Commit(); !s.ok()) return s;
  }
}

absl::Status Configure(sqlite3* db, bool in_memory) {
  // Waits for a lock held by another process instead of failing at once.
  const int rc = sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (rc != SQLITE_OK) return SqliteError(db, rc, "busy_timeout");
  // Off by default in SQLite; the schema relies on ON DELETE CASCADE.
  if (absl::Status s = Exec(db, "foreign_keys", "PRAGMA foreign_keys = ON");
      !s.ok()) {
    return s;
  }
  // Refuse a file from a newer build before changing anything in it (the
  // journal mode below is stored in the file).
  if (absl::StatusOr<int> version = ReadUserVersion(db); !version.ok()) {
    return version.status();
  }
  // WAL: readers and the writer do not block each other, and a commit
  // appends to the log instead of rewriting the database in place.
  absl::StatusOr<Statement> journal =
      Statement::Prepare(db, "PRAGMA journal_mode = WAL");
  if (!journal.ok()) return journal.status();
  absl::StatusOr<bool> row = journal->Step();
  if (!row.ok()) return row.status();
  const std::string mode = *row ? journal->Text(0) : "";
  // An in-memory database has no file to log to and reports "memory".
  if (mode != "wal" && !(in_memory && mode == "memory")) {
    return absl::UnavailableError(absl::StrCat(
        "sqlite: cannot switch to WAL journal mode (got \"", mode,
        "\"); the file system may not support the shared memory WAL needs"));
  }
  // With WAL, NORMAL would already survive a process crash (a commit is in
  // the log before COMMIT returns), but an OS crash or power loss could drop
  // the last commits. FULL syncs the log at every commit, so a turn that
  // AppendTurn acknowledged is on disk: one fsync per turn, small next to a
  // model call.
  return Exec(db, "synchronous", "PRAGMA synchronous = FULL");
}

absl::Status SessionNotFound(const SessionKey& key) {
  return absl::NotFoundError(
      absl::StrCat("session ", key.session_id, " not found"));
}

// The session's turn count, or nullopt if it does not exist. Inside a write
// transaction, the value cannot change before the transaction ends.
absl::StatusOr<std::optional<int64_t>> ReadTurnCount(Connection& connection,
                                                     const SessionKey& key) {
  absl::StatusOr<Statement> select = connection.Prepare(Sql::kReadTurnCount);
  if (!select.ok()) return select.status();
  select->Bind(1, key.tenant).Bind(2, key.session_id);
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<int64_t>();
  return std::optional<int64_t>(select->Int64(0));
}

// A session's row as a writer sees it.
struct SessionState {
  int64_t turn_count = 0;  // The active branch's length.
  int64_t stored_turns = 0;
  int64_t active_turn_id = 0;
};

// The session's state, or nullopt if it does not exist. Inside a write
// transaction, it cannot change before the transaction ends.
absl::StatusOr<std::optional<SessionState>> ReadSessionState(
    Connection& connection, const SessionKey& key) {
  absl::StatusOr<Statement> select = connection.Prepare(Sql::kReadTurnCount);
  if (!select.ok()) return select.status();
  select->Bind(1, key.tenant).Bind(2, key.session_id);
  absl::StatusOr<bool> row = select->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<SessionState>();
  return std::optional<SessionState>(
      SessionState{select->Int64(0), select->Int64(1), select->Int64(2)});
}

// The session's turn tree.
absl::StatusOr<TurnTree> ReadTurnTree(Connection& connection,
                                      const SessionKey& key) {
  absl::StatusOr<Statement> select = connection.Prepare(Sql::kTurnLinks);
  if (!select.ok()) return select.status();
  select->Bind(1, key.tenant).Bind(2, key.session_id);
  TurnTree tree;
  for (;;) {
    absl::StatusOr<bool> row = select->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    tree.Add(static_cast<int>(select->Int64(0)),
             static_cast<int>(select->Int64(1)));
  }
  return tree;
}

absl::Status TurnNotFound(const SessionKey& key, int turn_id) {
  return absl::NotFoundError(
      absl::StrCat("session ", key.session_id, " has no turn ", turn_id));
}

// Writes `turn` as turn `state.stored_turns + 1`, under `parent_turn_id`, at
// depth `depth`, and makes it the session's active leaf; inside the caller's
// write transaction. Returns the new turn's id.
absl::StatusOr<int> InsertTurn(Connection& db, const SessionKey& key,
                               const SessionState& state, int parent_turn_id,
                               int depth, const Turn& turn) {
  const int64_t created_at_us = ToMicros(turn.created_at);
  const int64_t turn_id = state.stored_turns + 1;
  absl::StatusOr<Statement> insert = db.Prepare(Sql::kInsertMessage);
  if (!insert.ok()) return insert.status();
  absl::StatusOr<Statement> index = db.Prepare(Sql::kIndexMessage);
  if (!index.ok()) return index.status();
  const int64_t user_seq = 2 * state.stored_turns;
  insert->Bind(1, key.tenant)
      .Bind(2, key.session_id)
      .Bind(3, user_seq)
      .Bind(4, "user")
      .Bind(5, turn.user_message)
      .Bind(6, created_at_us)
      .Bind(12, turn_id)
      .Bind(13, int64_t{parent_turn_id});
  if (absl::Status s = insert->Run(); !s.ok()) return s;
  index->Bind(1, turn.user_message);
  if (absl::Status s = index->Run(); !s.ok()) return s;
  index->Reset();
  insert->Reset();
  insert->Bind(1, key.tenant)
      .Bind(2, key.session_id)
      .Bind(3, user_seq + 1)
      .Bind(4, "assistant")
      .Bind(5, turn.assistant_message)
      .Bind(6, created_at_us)
      .Bind(7, turn.model)
      .Bind(8, turn.stop_reason)
      .Bind(9, turn.input_tokens)
      .Bind(10, turn.output_tokens)
      .BindDouble(11, turn.cost_usd)
      .Bind(12, turn_id)
      .Bind(13, int64_t{parent_turn_id});
  if (absl::Status s = insert->Run(); !s.ok()) return s;
  index->Bind(1, turn.assistant_message);
  if (absl::Status s = index->Run(); !s.ok()) return s;

  absl::StatusOr<Statement> update = db.Prepare(Sql::kCountTurn);
  if (!update.ok()) return update.status();
  update->Bind(1, key.tenant)
      .Bind(2, key.session_id)
      .Bind(3, created_at_us)
      .Bind(4, turn.input_tokens)
      .Bind(5, turn.output_tokens)
      .BindDouble(6, turn.cost_usd)
      .Bind(7, int64_t{depth})
      .Bind(8, turn_id);
  if (absl::Status s = update->Run(); !s.ok()) return s;
  return static_cast<int>(turn_id);
}

// A time that may be InfiniteFuture ("never"), kept as NULL.
void BindOptionalTime(Statement& stmt, int index, absl::Time t) {
  if (t == absl::InfiniteFuture()) {
    stmt.BindNull(index);
  } else {
    stmt.Bind(index, ToMicros(t));
  }
}

absl::Time OptionalTimeAt(const Statement& row, int column) {
  return row.IsNull(column) ? absl::InfiniteFuture()
                            : FromMicros(row.Int64(column));
}

// Usage days are kept, and compared, at whole seconds, as the memory store
// keeps them; stored in microseconds like every other time.
int64_t WholeSecondMicros(absl::Time t) {
  return ToMicros(absl::FromUnixSeconds(absl::ToUnixSeconds(t)));
}

// The current row of kGetKey, kListKeys or kListTenantKeys.
absl::StatusOr<ApiKey> ReadKey(const Statement& row) {
  ApiKey key;
  key.id = row.Text(0);
  key.tenant = row.Text(1);
  key.name = row.Text(2);
  key.secret_hash = row.Text(3);
  key.created_at = FromMicros(row.Int64(4));
  key.expires_at = OptionalTimeAt(row, 5);
  key.revoked_at = OptionalTimeAt(row, 6);
  key.limits.requests_per_minute = row.Int64(7);
  key.limits.tokens_per_minute = row.Int64(8);
  key.limits.max_streams = row.Int64(9);
  key.limits.max_tokens = row.Int64(10);
  key.limits.allowed_models = SplitModels(row.Text(11));
  key.limits.budget_tokens = row.Int64(12);
  absl::StatusOr<BudgetPeriod> period = ParseBudgetPeriod(row.Text(13));
  if (!period.ok()) return period.status();
  key.limits.budget_period = *period;
  return key;
}

// Reads every row of a key query.
absl::StatusOr<std::vector<ApiKey>> ReadKeys(Statement& stmt) {
  std::vector<ApiKey> keys;
  for (;;) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    if (!*row) return keys;
    absl::StatusOr<ApiKey> key = ReadKey(stmt);
    if (!key.ok()) return key.status();
    keys.push_back(*std::move(key));
  }
}

// The counter's value, 0 if it has no row.
absl::StatusOr<int64_t> ReadCounter(Connection& connection,
                                    const QuotaCounter& counter) {
  absl::StatusOr<Statement> stmt = connection.Prepare(Sql::kReadCounter);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, counter.scope).Bind(2, ToMicros(counter.window_start));
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  return *row ? stmt->Int64(0) : 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteConversationStore>>
SqliteConversationStore::Open(absl::string_view path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "empty SQLite path (use \":memory:\" for an in-memory database)");
  }
  const std::string file(path);
  const bool in_memory = file == ":memory:";
  if (!in_memory) {
    const std::filesystem::path parent =
        std::filesystem::path(file).parent_path();
    if (!parent.empty()) {
      std::error_code error;
      std::filesystem::create_directories(parent, error);
      if (error) {
        return absl::UnavailableError(
            absl::StrCat("cannot create directory ", parent.string(),
                         " for SQLite file ", file, ": ", error.message()));
      }
    }
  }

  sqlite3* raw = nullptr;
  // NOMUTEX: each connection is used under a mutex of ours (mu_ for the
  // writer, ReadConnection::mu for a reader). EXRESCODE: error messages and
  // codes carry the precise cause (e.g. SQLITE_IOERR_FSYNC).
  const int rc =
      sqlite3_open_v2(file.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                      /*zVfs=*/nullptr);
  // Closed on every error path, even a failed open.
  auto writer = std::make_unique<Connection>(raw);
  if (rc != SQLITE_OK) {
    // Whatever the cause, the caller can only fix the path or retry.
    return absl::UnavailableError(absl::StrCat(
        "sqlite: cannot open ", file, ": ",
        raw == nullptr ? sqlite3_errstr(rc) : sqlite3_errmsg(raw)));
  }
  if (absl::Status s = Configure(raw, in_memory); !s.ok()) return s;
  if (absl::Status s = Migrate(*writer); !s.ok()) return s;
  // The constructor is private, so make_unique cannot call it.
  auto store = std::unique_ptr<SqliteConversationStore>(
      new SqliteConversationStore(std::move(writer)));

  // Read-only connections: in WAL mode they read the last committed state
  // while the writer commits, so a read never waits behind an fsync. A
  // private in-memory database cannot be shared; it reads on the writer.
  if (!in_memory) {
    for (int i = 0; i < kReadConnections; ++i) {
      sqlite3* reader = nullptr;
      const int read_rc = sqlite3_open_v2(
          file.c_str(), &reader,
          SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
          nullptr);
      auto owned = std::make_unique<Connection>(reader);
      if (read_rc != SQLITE_OK) {
        return absl::UnavailableError(
            absl::StrCat("sqlite: cannot open a reader on ", file, ": ",
                         reader == nullptr ? sqlite3_errstr(read_rc)
                                           : sqlite3_errmsg(reader)));
      }
      sqlite3_busy_timeout(reader, kBusyTimeoutMs);
      store->readers_.push_back(
          std::make_unique<ReadConnection>(std::move(owned)));
    }
  }
  return store;
}

SqliteConversationStore::SqliteConversationStore(
    std::unique_ptr<Connection> writer)
    : writer_(std::move(writer)) {}

// Out of line, where Connection is complete.
SqliteConversationStore::~SqliteConversationStore() = default;
SqliteConversationStore::ReadConnection::ReadConnection(
    std::unique_ptr<Connection> c)
    : connection(std::move(c)) {}
SqliteConversationStore::ReadConnection::~ReadConnection() = default;

SqliteConversationStore::Reader SqliteConversationStore::AcquireReader() {
  if (readers_.empty()) {
    mu_.Lock();
    return Reader(&mu_, writer_.get());
  }
  // Round robin, preferring an idle connection.
  const size_t start = next_reader_.fetch_add(1);
  for (size_t i = 0; i < readers_.size(); ++i) {
    ReadConnection& c = *readers_[(start + i) % readers_.size()];
    if (c.mu.TryLock()) return Reader(&c.mu, c.connection.get());
  }
  ReadConnection& c = *readers_[start % readers_.size()];
  c.mu.Lock();
  return Reader(&c.mu, c.connection.get());
}

absl::StatusOr<SessionInfo> SqliteConversationStore::GetSession(
    const SessionKey& key) {
  Reader reader = AcquireReader();
  absl::StatusOr<Statement> stmt =
      reader.connection().Prepare(Sql::kGetSession);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.tenant).Bind(2, key.session_id);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return SessionNotFound(key);
  SessionInfo info;
  info.session_id = key.session_id;
  info.system_prompt = stmt->Text(0);
  info.created_at = FromMicros(stmt->Int64(1));
  info.updated_at = FromMicros(stmt->Int64(2));
  info.turn_count = static_cast<int>(stmt->Int64(3));
  info.title = stmt->Text(4);
  return info;
}

absl::StatusOr<std::vector<StoredMessage>> SqliteConversationStore::LoadHistory(
    const SessionKey& key) {
  return LoadBranchOrActive(key, std::nullopt);
}

absl::StatusOr<std::vector<StoredMessage>> SqliteConversationStore::LoadBranch(
    const SessionKey& key, int turn_id) {
  if (turn_id <= 0) return TurnNotFound(key, turn_id);
  return LoadBranchOrActive(key, turn_id);
}

absl::StatusOr<std::vector<StoredMessage>>
SqliteConversationStore::LoadBranchOrActive(const SessionKey& key,
                                            std::optional<int> turn_id) {
  Reader reader = AcquireReader();
  absl::StatusOr<Statement> stmt =
      reader.connection().Prepare(Sql::kLoadHistory);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.tenant).Bind(2, key.session_id);
  std::vector<StoredMessage> messages;
  bool session_exists = false;
  int active_turn_id = 0;
  for (;;) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    session_exists = true;
    active_turn_id = static_cast<int>(stmt->Int64(6));
    if (stmt->IsNull(0)) continue;  // A session without messages.
    // NULL (a user message) reads as 0: unknown.
    StoredMessage& m = messages.emplace_back();
    m.role = stmt->Text(0);
    m.content = stmt->Text(1);
    m.created_at = FromMicros(stmt->Int64(2));
    m.tokens = stmt->Int64(3);
    m.turn_id = static_cast<int>(stmt->Int64(4));
    m.parent_turn_id = static_cast<int>(stmt->Int64(5));
  }
  if (!session_exists) return SessionNotFound(key);
  std::optional<std::vector<StoredMessage>> branch =
      SelectBranch(messages, turn_id.value_or(active_turn_id));
  if (!branch.has_value()) return TurnNotFound(key, turn_id.value_or(0));
  return *std::move(branch);
}

absl::StatusOr<StoredTurn> SqliteConversationStore::AppendTurn(
    const SessionKey& key, int expected_turn_count,
    absl::string_view system_prompt, const Turn& turn) {
  if (expected_turn_count < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected_turn_count must be >= 0, got ", expected_turn_count));
  }
  Writer w(&key, expected_turn_count, system_prompt, &turn);
  return Write(w);
}

absl::StatusOr<StoredTurn> SqliteConversationStore::Write(Writer& w) {
  absl::MutexLock lock(&queue_mu_);
  writers_.push_back(&w);
  while (!w.done && &w != writers_.front()) w.cv.Wait(&queue_mu_);
  if (w.done) return w.result;  // A leader wrote it.

  // This call leads: it writes everything queued so far, its own first.
  constexpr size_t kMaxBatch = 256;
  std::vector<Writer*> batch(
      writers_.begin(), writers_.begin() + static_cast<long>(std::min(
                                               writers_.size(), kMaxBatch)));
  queue_mu_.Unlock();
  CommitBatch(batch);
  queue_mu_.Lock();
  for (Writer* written : batch) {
    writers_.pop_front();
    if (written != &w) {
      written->done = true;
      written->cv.Signal();
    }
  }
  if (!writers_.empty()) writers_.front()->cv.Signal();  // The next leader.
  return w.result;
}

void SqliteConversationStore::CommitBatch(const std::vector<Writer*>& batch) {
  absl::MutexLock lock(&mu_);
  if (CommitAllLocked(batch) || batch.size() == 1) return;
  CommitEachLocked(batch);
}

bool SqliteConversationStore::CommitAllLocked(
    const std::vector<Writer*>& batch) {
  Connection& db = *writer_;
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) {
    for (Writer* w : batch) w->result = s;
    return true;  // Nothing to write with, whichever way.
  }
  for (Writer* w : batch) {
    const int64_t changes_before = sqlite3_total_changes64(db.db());
    w->result = WriteLocked(*w);
    if (w->result.ok()) continue;
    // A refusal that wrote nothing (a turn count that moved on, a title for
    // a session since deleted) leaves the rest of the batch as it was.
    if (sqlite3_get_autocommit(db.db()) == 0 &&
        sqlite3_total_changes64(db.db()) == changes_before) {
      continue;
    }
    // Half written: the transaction (rolled back by ~Transaction, unless
    // SQLite did already) holds the writes before this one too, and each is
    // written again.
    return false;
  }
  if (absl::Status s = txn.Commit(); !s.ok()) {
    // Nothing of the batch is stored; the destructor rolls back.
    for (Writer* w : batch) w->result = s;
  }
  return true;
}

void SqliteConversationStore::CommitEachLocked(
    const std::vector<Writer*>& batch) {
  for (Writer* w : batch) w->result = absl::UnknownError("not written");
  Connection& db = *writer_;
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) {
    for (Writer* w : batch) w->result = s;
    return;
  }
  for (Writer* w : batch) {
    // A savepoint per turn: a turn that fails halfway is undone alone.
    if (absl::Status s = db.Run(Sql::kSavepoint); !s.ok()) {
      w->result = s;
      continue;
    }
    w->result = WriteLocked(*w);
    if (!w->result.ok() && sqlite3_get_autocommit(db.db()) != 0) {
      // Some errors (a full disk, I/O, out of memory) make SQLite roll the
      // whole transaction back: every turn of the batch is gone, and
      // running on would write the rest outside a transaction.
      const absl::Status lost = w->result.status();
      for (Writer* other : batch) {
        if (other->result.ok() ||
            other->result.status().code() == absl::StatusCode::kUnknown) {
          other->result = lost;
        }
      }
      return;
    }
    if (!w->result.ok()) (void)db.Run(Sql::kRollbackToSavepoint);
    (void)db.Run(Sql::kReleaseSavepoint);
  }
  if (absl::Status s = txn.Commit(); !s.ok()) {
    // Nothing of the batch is stored; the destructor rolls back.
    for (Writer* w : batch) {
      if (w->result.ok()) w->result = s;
    }
  }
}

absl::StatusOr<StoredTurn> SqliteConversationStore::WriteLocked(
    const Writer& w) {
  if (w.turn != nullptr) return AppendLocked(w);
  absl::StatusOr<bool> set =
      SetTitleLocked(*w.key, w.title, w.only_if_untitled);
  if (!set.ok()) return set.status();
  return StoredTurn{0, *set ? 1 : 0};
}

absl::StatusOr<StoredTurn> SqliteConversationStore::AppendLocked(
    const Writer& w) {
  Connection& db = *writer_;
  const SessionKey& key = *w.key;
  const Turn& turn = *w.turn;
  const int expected_turn_count = w.expected_turn_count;
  absl::StatusOr<std::optional<SessionState>> read = ReadSessionState(db, key);
  if (!read.ok()) return read.status();
  std::optional<SessionState> state = *read;
  if (!state.has_value()) {
    if (expected_turn_count != 0) {
      return absl::AbortedError(absl::StrCat(
          "session ", key.session_id, " changed concurrently: expected ",
          expected_turn_count, " turns, found no session"));
    }
    absl::StatusOr<Statement> insert = db.Prepare(Sql::kInsertSession);
    if (!insert.ok()) return insert.status();
    insert->Bind(1, key.tenant)
        .Bind(2, key.session_id)
        .Bind(3, w.system_prompt)
        .Bind(4, ToMicros(turn.created_at));
    if (absl::Status s = insert->Run(); !s.ok()) return s;
    state = SessionState();
  } else if (state->turn_count != expected_turn_count) {
    return absl::AbortedError(absl::StrCat(
        "session ", key.session_id, " changed concurrently: expected ",
        expected_turn_count, " turns, found ", state->turn_count));
  }
  // A child of the active leaf: the active branch grows by one.
  absl::StatusOr<int> turn_id =
      InsertTurn(db, key, *state, static_cast<int>(state->active_turn_id),
                 static_cast<int>(state->turn_count + 1), turn);
  if (!turn_id.ok()) return turn_id.status();

  if (turn.answers.has_value()) {
    // In the turn's savepoint: a lost claim undoes the turn too.
    const RequestClaim& claim = *turn.answers;
    const IdempotentAnswer answer =
        AnswerOfTurn(key, turn, static_cast<int>(state->turn_count + 1));
    absl::StatusOr<Statement> complete = db.Prepare(Sql::kCompleteRequest);
    if (!complete.ok()) return complete.status();
    complete->Bind(1, claim.key.tenant)
        .Bind(2, claim.key.request_id)
        .Bind(3, claim.owner)
        .Bind(4, answer.session_id)
        .Bind(5, answer.response)
        .Bind(6, ToMicros(turn.created_at))
        .Bind(7, static_cast<int64_t>(answer.turn_count))
        .Bind(8, answer.model)
        .Bind(9, answer.stop_reason)
        .Bind(10, answer.input_tokens)
        .Bind(11, answer.output_tokens)
        .BindDouble(12, answer.cost_usd);
    if (absl::Status s = complete->Run(); !s.ok()) return s;
    if (sqlite3_changes(db.db()) != 1) return RequestClaimLostError(claim);
  }

  return StoredTurn{*turn_id, static_cast<int>(state->turn_count + 1)};
}

absl::StatusOr<StoredTurn> SqliteConversationStore::AppendBranchTurn(
    const SessionKey& key, int parent_turn_id, const Turn& turn) {
  absl::MutexLock lock(&mu_);
  Connection& db = *writer_;
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<std::optional<SessionState>> state = ReadSessionState(db, key);
  if (!state.ok()) return state.status();
  if (!state->has_value()) return SessionNotFound(key);
  absl::StatusOr<TurnTree> tree = ReadTurnTree(db, key);
  if (!tree.ok()) return tree.status();
  if (parent_turn_id < 0 ||
      (parent_turn_id > 0 && !tree->Contains(parent_turn_id))) {
    return TurnNotFound(key, parent_turn_id);
  }
  StoredTurn stored;
  stored.turn_count = tree->DepthOf(parent_turn_id) + 1;
  absl::StatusOr<int> turn_id =
      InsertTurn(db, key, **state, parent_turn_id, stored.turn_count, turn);
  if (!turn_id.ok()) return turn_id.status();
  stored.turn_id = *turn_id;
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return stored;
}

absl::StatusOr<int> SqliteConversationStore::SwitchBranch(const SessionKey& key,
                                                          int turn_id) {
  absl::MutexLock lock(&mu_);
  Connection& db = *writer_;
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<std::optional<SessionState>> state = ReadSessionState(db, key);
  if (!state.ok()) return state.status();
  if (!state->has_value()) return SessionNotFound(key);
  absl::StatusOr<TurnTree> tree = ReadTurnTree(db, key);
  if (!tree.ok()) return tree.status();
  if (!tree->Contains(turn_id)) return TurnNotFound(key, turn_id);
  const int leaf = tree->NewestLeafFrom(turn_id);
  const int turn_count = tree->DepthOf(leaf);
  absl::StatusOr<Statement> update = db.Prepare(Sql::kSwitchBranch);
  if (!update.ok()) return update.status();
  update->Bind(1, key.tenant)
      .Bind(2, key.session_id)
      .Bind(3, int64_t{leaf})
      .Bind(4, int64_t{turn_count});
  if (absl::Status s = update->Run(); !s.ok()) return s;
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return turn_count;
}

absl::StatusOr<int> SqliteConversationStore::ResetSession(const SessionKey& key,
                                                          absl::Time now) {
  absl::MutexLock lock(&mu_);
  Connection& db = *writer_;
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;

  absl::StatusOr<std::optional<int64_t>> read = ReadTurnCount(db, key);
  if (!read.ok()) return read.status();
  if (!read->has_value()) return SessionNotFound(key);
  const int64_t turn_count = **read;

  absl::StatusOr<Statement> remove = db.Prepare(Sql::kClearMessages);
  if (!remove.ok()) return remove.status();
  remove->Bind(1, key.tenant).Bind(2, key.session_id);
  if (absl::Status s = remove->Run(); !s.ok()) return s;

  absl::StatusOr<Statement> update = db.Prepare(Sql::kResetSession);
  if (!update.ok()) return update.status();
  update->Bind(1, key.tenant).Bind(2, key.session_id).Bind(3, ToMicros(now));
  if (absl::Status s = update->Run(); !s.ok()) return s;

  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return static_cast<int>(turn_count);
}

absl::StatusOr<bool> SqliteConversationStore::DeleteSession(
    const SessionKey& key) {
  absl::MutexLock lock(&mu_);
  // One statement is its own transaction.
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kDeleteSession);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.tenant).Bind(2, key.session_id);
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  // Counts only the session row, not the cascaded messages.
  return sqlite3_changes(writer_->db()) > 0;
}

absl::StatusOr<SessionPage> SqliteConversationStore::ListSessions(
    absl::string_view tenant, int page_size, absl::string_view page_token) {
  absl::StatusOr<std::optional<PageCursor>> parsed =
      ParsePageRequest(page_size, page_token);
  if (!parsed.ok()) return parsed.status();
  const std::optional<PageCursor>& cursor = *parsed;

  Reader reader = AcquireReader();
  // One row past the page tells whether another page follows, so the last
  // page never carries a token.
  absl::StatusOr<Statement> stmt = reader.connection().Prepare(
      cursor.has_value() ? Sql::kListAfter : Sql::kListFirst);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, tenant).Bind(2, int64_t{page_size} + 1);
  if (cursor.has_value()) {
    stmt->Bind(3, cursor->updated_at_us).Bind(4, cursor->session_id);
  }

  SessionPage page;
  for (;;) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (page.sessions.size() == static_cast<size_t>(page_size)) {
      const SessionInfo& last = page.sessions.back();
      page.next_page_token =
          EncodePageToken({ToMicros(last.updated_at), last.session_id});
      break;
    }
    SessionInfo& info = page.sessions.emplace_back();
    info.session_id = stmt->Text(0);
    info.system_prompt = stmt->Text(1);
    info.created_at = FromMicros(stmt->Int64(2));
    info.updated_at = FromMicros(stmt->Int64(3));
    info.turn_count = static_cast<int>(stmt->Int64(4));
    info.title = stmt->Text(5);
  }
  return page;
}

absl::StatusOr<StoreStats> SqliteConversationStore::GetStats(
    absl::string_view tenant) {
  Reader reader = AcquireReader();
  absl::StatusOr<Statement> stmt = reader.connection().Prepare(Sql::kStats);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, tenant);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("sqlite: stats query returned no row");
  StoreStats stats;
  stats.total_sessions = stmt->Int64(0);
  stats.total_messages = 2 * stmt->Int64(1);
  stats.total_input_tokens = stmt->Int64(2);
  stats.total_output_tokens = stmt->Int64(3);
  if (!stmt->IsNull(4)) stats.total_cost_usd = stmt->Double(4);
  return stats;
}

absl::StatusOr<int64_t> SqliteConversationStore::DeleteSessionsIdleSince(
    absl::Time cutoff) {
  absl::MutexLock lock(&mu_);
  // One statement, one transaction.
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kDeleteIdle);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, ToMicros(cutoff));
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  return static_cast<int64_t>(sqlite3_changes(writer_->db()));
}

absl::StatusOr<bool> SqliteConversationStore::SetTitle(const SessionKey& key,
                                                       absl::string_view title,
                                                       bool only_if_untitled) {
  // In the turns' group commit: a title is mostly written just after a
  // session's first turn, and would otherwise cost a commit (an fsync) of
  // its own.
  Writer w(&key, title, only_if_untitled);
  absl::StatusOr<StoredTurn> set = Write(w);
  if (!set.ok()) return set.status();
  return set->turn_count == 1;
}

absl::StatusOr<bool> SqliteConversationStore::SetTitleLocked(
    const SessionKey& key, absl::string_view title, bool only_if_untitled) {
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kSetTitle);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.tenant)
      .Bind(2, key.session_id)
      .Bind(3, title)
      .Bind(4, int64_t{only_if_untitled ? 1 : 0});
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  if (sqlite3_changes(writer_->db()) > 0) return true;
  // Nothing changed: the session has a title, or does not exist.
  absl::StatusOr<Statement> exists = writer_->Prepare(Sql::kSessionExists);
  if (!exists.ok()) return exists.status();
  exists->Bind(1, key.tenant).Bind(2, key.session_id);
  absl::StatusOr<bool> row = exists->Step();
  if (!row.ok()) return row.status();
  if (!*row) return SessionNotFound(key);
  return false;
}

namespace {

// The user's query as an FTS5 expression that cannot be a syntax error:
// each whitespace-separated word quoted (quotes doubled), so operators and
// punctuation are searched as text and every word must occur. Empty for a
// query with no words.
std::string SearchExpression(absl::string_view query) {
  std::string expression;
  for (absl::string_view word :
       absl::StrSplit(query, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
    if (!expression.empty()) expression += ' ';
    expression += '"';
    expression += absl::StrReplaceAll(word, {{"\"", "\"\""}});
    expression += '"';
  }
  return expression;
}

}  // namespace

absl::StatusOr<SearchPage> SqliteConversationStore::SearchMessages(
    absl::string_view tenant, absl::string_view query, int page_size,
    absl::string_view page_token) {
  absl::StatusOr<int64_t> offset =
      ParseSearchRequest(query, page_size, page_token);
  if (!offset.ok()) return offset.status();
  const std::string expression = SearchExpression(query);
  if (expression.empty()) return SearchPage();
  Reader reader = AcquireReader();
  absl::StatusOr<Statement> stmt = reader.connection().Prepare(Sql::kSearch);
  if (!stmt.ok()) return stmt.status();
  // One row past the page tells whether another follows.
  stmt->Bind(1, tenant)
      .Bind(2, expression)
      .Bind(3, int64_t{page_size} + 1)
      .Bind(4, *offset)
      .Bind(5, kMatchStart)
      .Bind(6, kMatchEnd);
  SearchPage page;
  for (;;) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (page.hits.size() == static_cast<size_t>(page_size)) {
      page.next_page_token = EncodeSearchToken(query, *offset + page_size);
      break;
    }
    SearchHit& hit = page.hits.emplace_back();
    hit.session_id = stmt->Text(0);
    hit.session_title = stmt->Text(1);
    hit.message_index = stmt->Int64(2);
    hit.role = stmt->Text(3);
    hit.snippet = stmt->Text(4);
    hit.created_at = FromMicros(stmt->Int64(5));
  }
  return page;
}

absl::Status SqliteConversationStore::CreateKey(const ApiKey& key) {
  if (absl::Status s = ValidateApiKey(key); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kInsertKey);
  if (!stmt.ok()) return stmt.status();
  const KeyLimits& limits = key.limits;
  stmt->Bind(1, key.id)
      .Bind(2, key.tenant)
      .Bind(3, key.name)
      .Bind(4, key.secret_hash)
      .Bind(5, ToMicros(key.created_at));
  BindOptionalTime(*stmt, 6, key.expires_at);
  BindOptionalTime(*stmt, 7, key.revoked_at);
  stmt->Bind(8, limits.requests_per_minute)
      .Bind(9, limits.tokens_per_minute)
      .Bind(10, limits.max_streams)
      .Bind(11, limits.max_tokens)
      .Bind(12, JoinModels(limits.allowed_models))
      .Bind(13, limits.budget_tokens)
      .Bind(14, BudgetPeriodName(limits.budget_period));
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  if (sqlite3_changes(writer_->db()) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("key ", key.id, " already exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ApiKey> SqliteConversationStore::GetKey(absl::string_view id) {
  Reader reader = AcquireReader();
  absl::StatusOr<Statement> stmt = reader.connection().Prepare(Sql::kGetKey);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id);
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("key ", id, " not found"));
  return ReadKey(*stmt);
}

absl::StatusOr<std::vector<ApiKey>> SqliteConversationStore::ListKeys(
    absl::string_view tenant) {
  Reader reader = AcquireReader();
  absl::StatusOr<Statement> stmt = reader.connection().Prepare(
      tenant.empty() ? Sql::kListKeys : Sql::kListTenantKeys);
  if (!stmt.ok()) return stmt.status();
  if (!tenant.empty()) stmt->Bind(1, tenant);
  return ReadKeys(*stmt);
}

absl::StatusOr<bool> SqliteConversationStore::RevokeKey(absl::string_view id,
                                                        absl::Time now) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kRevokeKey);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, id).Bind(2, ToMicros(now));
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  return sqlite3_changes(writer_->db()) > 0;
}

absl::StatusOr<bool> SqliteConversationStore::HasActiveKeys(absl::Time now) {
  Reader reader = AcquireReader();
  absl::StatusOr<Statement> stmt =
      reader.connection().Prepare(Sql::kHasActiveKeys);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, ToMicros(now));
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("sqlite: EXISTS returned no row");
  return stmt->Int64(0) != 0;
}

absl::StatusOr<QuotaCharge> SqliteConversationStore::Charge(
    const QuotaCounter& counter, int64_t amount, int64_t limit) {
  if (amount < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("quota charge must be >= 0, got ", amount));
  }
  absl::MutexLock lock(&mu_);
  Connection& db = *writer_;
  // BEGIN IMMEDIATE: the check, the add and the read of a refused charge
  // all happen under the write lock, which other processes wait for.
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  QuotaCharge charge;
  // More than the limit on its own is refused without writing a row.
  if (amount <= limit) {
    // Scoped: the statement must be reset before COMMIT.
    absl::StatusOr<Statement> stmt = db.Prepare(Sql::kChargeCounter);
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, counter.scope)
        .Bind(2, ToMicros(counter.window_start))
        .Bind(3, amount)
        .Bind(4, limit);
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (*row) charge = QuotaCharge{true, stmt->Int64(0)};
  }
  if (!charge.accepted) {
    absl::StatusOr<int64_t> used = ReadCounter(db, counter);
    if (!used.ok()) return used.status();
    charge.used = *used;
  }
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return charge;
}

absl::Status SqliteConversationStore::Adjust(const QuotaCounter& counter,
                                             int64_t delta) {
  absl::MutexLock lock(&mu_);
  // One statement, one transaction.
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kAdjustCounter);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, counter.scope)
      .Bind(2, ToMicros(counter.window_start))
      .Bind(3, delta);
  return stmt->Run();
}

absl::StatusOr<int64_t> SqliteConversationStore::Read(
    const QuotaCounter& counter) {
  Reader reader = AcquireReader();
  return ReadCounter(reader.connection(), counter);
}

absl::StatusOr<int64_t> SqliteConversationStore::DeleteCountersBefore(
    absl::string_view scope_prefix, absl::Time cutoff) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kDeleteCounters);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, ToMicros(cutoff));
  stmt->Bind(2, scope_prefix);
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  return static_cast<int64_t>(sqlite3_changes(writer_->db()));
}

absl::Status SqliteConversationStore::AddUsage(
    const std::vector<UsageDelta>& deltas) {
  if (deltas.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  Connection& db = *writer_;
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<Statement> stmt = db.Prepare(Sql::kAddUsage);
  if (!stmt.ok()) return stmt.status();
  for (const UsageDelta& delta : deltas) {
    stmt->Reset();
    stmt->Bind(1, delta.tenant)
        .Bind(2, delta.key_id)
        .Bind(3, WholeSecondMicros(delta.day))
        .Bind(4, delta.calls)
        .Bind(5, delta.input_tokens)
        .Bind(6, delta.output_tokens)
        .BindDouble(7, delta.cost_usd);
    if (absl::Status s = stmt->Run(); !s.ok()) return s;
  }
  stmt->Reset();
  return txn.Commit();
}

absl::StatusOr<std::vector<UsageTotals>> SqliteConversationStore::GetUsage(
    absl::string_view tenant, absl::string_view key_id, absl::Time since,
    absl::Time until) {
  Reader reader = AcquireReader();
  absl::StatusOr<Statement> stmt = reader.connection().Prepare(Sql::kGetUsage);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, tenant)
      .Bind(2, key_id)
      .Bind(3, WholeSecondMicros(since))
      .Bind(4, WholeSecondMicros(until));
  std::vector<UsageTotals> totals;
  for (;;) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) return totals;
    totals.push_back(UsageTotals{stmt->Text(0), stmt->Text(1), stmt->Int64(2),
                                 stmt->Int64(3), stmt->Int64(4),
                                 stmt->Double(5)});
  }
}

namespace {

// The row of kLookupRequest.
RequestRecord RequestRecordAt(const Statement& stmt) {
  RequestRecord record;
  record.fingerprint = stmt.Text(0);
  record.owner = stmt.Text(1);
  record.claimed_at = FromMicros(stmt.Int64(2));
  record.expires_at = FromMicros(stmt.Int64(3));
  if (!stmt.IsNull(4)) {
    IdempotentAnswer& answer = record.answer.emplace();
    answer.timestamp = FromMicros(stmt.Int64(4));
    answer.session_id = stmt.Text(5);
    answer.response = stmt.Text(6);
    answer.turn_count = static_cast<int>(stmt.Int64(7));
    answer.model = stmt.Text(8);
    answer.stop_reason = stmt.Text(9);
    answer.input_tokens = stmt.Int64(10);
    answer.output_tokens = stmt.Int64(11);
    if (!stmt.IsNull(12)) answer.cost_usd = stmt.Double(12);
  }
  return record;
}

absl::StatusOr<std::optional<RequestRecord>> LookupRequest(
    Connection& connection, const RequestKey& key, absl::Time now) {
  absl::StatusOr<Statement> stmt = connection.Prepare(Sql::kLookupRequest);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.tenant).Bind(2, key.request_id).Bind(3, ToMicros(now));
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  return RequestRecordAt(*stmt);
}

}  // namespace

absl::StatusOr<ClaimResult> SqliteConversationStore::Claim(
    const RequestKey& key, absl::string_view fingerprint,
    absl::string_view owner, absl::Time now, absl::Time expires_at,
    absl::Time stale_before) {
  absl::MutexLock lock(&mu_);
  Connection& db = *writer_;
  // The claim and the read of a refusing record under one write lock: the
  // record cannot go in between.
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  ClaimResult result;
  {
    // Scoped: the statement must be reset before COMMIT.
    absl::StatusOr<Statement> stmt = db.Prepare(Sql::kClaimRequest);
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, key.tenant)
        .Bind(2, key.request_id)
        .Bind(3, fingerprint)
        .Bind(4, owner)
        .Bind(5, ToMicros(now))
        .Bind(6, ToMicros(expires_at))
        .Bind(7, ToMicros(stale_before));
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    result.claimed = *row;
  }
  if (!result.claimed) {
    absl::StatusOr<std::optional<RequestRecord>> record =
        LookupRequest(db, key, now);
    if (!record.ok()) return record.status();
    if (!record->has_value()) {
      return absl::InternalError("sqlite: a refused claim found no record");
    }
    result.existing = **std::move(record);
  }
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return result;
}

absl::StatusOr<bool> SqliteConversationStore::Complete(
    const RequestKey& key, absl::string_view owner,
    const IdempotentAnswer& answer) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kCompleteRequest);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.tenant)
      .Bind(2, key.request_id)
      .Bind(3, owner)
      .Bind(4, answer.session_id)
      .Bind(5, answer.response)
      .Bind(6, ToMicros(answer.timestamp))
      .Bind(7, static_cast<int64_t>(answer.turn_count))
      .Bind(8, answer.model)
      .Bind(9, answer.stop_reason)
      .Bind(10, answer.input_tokens)
      .Bind(11, answer.output_tokens)
      .BindDouble(12, answer.cost_usd);
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  return sqlite3_changes(writer_->db()) == 1;
}

absl::Status SqliteConversationStore::Release(const RequestKey& key,
                                              absl::string_view owner) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kReleaseRequest);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.tenant).Bind(2, key.request_id).Bind(3, owner);
  return stmt->Run();
}

absl::StatusOr<RequestRecord> SqliteConversationStore::Lookup(
    const RequestKey& key, absl::Time now) {
  Reader reader = AcquireReader();
  absl::StatusOr<std::optional<RequestRecord>> record =
      LookupRequest(reader.connection(), key, now);
  if (!record.ok()) return record.status();
  if (!record->has_value()) {
    return absl::NotFoundError(
        absl::StrCat("request id ", key.request_id, " not found"));
  }
  return **std::move(record);
}

namespace {

// One batch of a sweep: `statement` deletes up to `limit` rows that expired
// before `now`. Returns how many it deleted.
absl::StatusOr<int64_t> DeleteExpiredWith(sqlite_internal::Connection& db,
                                          Sql statement, absl::Time now,
                                          int limit) {
  if (absl::Status s = CheckSweepLimit(limit); !s.ok()) return s;
  absl::StatusOr<Statement> stmt = db.Prepare(statement);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, ToMicros(now)).Bind(2, static_cast<int64_t>(limit));
  if (absl::Status s = stmt->Run(); !s.ok()) return s;
  return static_cast<int64_t>(sqlite3_changes(db.db()));
}

}  // namespace

absl::StatusOr<int64_t> SqliteConversationStore::DeleteExpired(absl::Time now,
                                                               int limit) {
  absl::MutexLock lock(&mu_);
  return DeleteExpiredWith(*writer_, Sql::kDeleteExpiredRequests, now, limit);
}

absl::StatusOr<StreamControl> SqliteConversationStore::AppendStream(
    const StreamAppend& append) {
  absl::MutexLock lock(&mu_);
  Connection& db = *writer_;
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  {
    absl::StatusOr<Statement> stmt = db.Prepare(Sql::kUpsertStream);
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, append.answer_id)
        .Bind(2, append.session.tenant)
        .Bind(3, append.session.session_id)
        .Bind(4, ToMicros(append.started_at))
        .Bind(5, ToMicros(append.expires_at));
    if (absl::Status s = stmt->Run(); !s.ok()) return s;
  }
  for (size_t i = 0; i < append.deltas.size(); ++i) {
    absl::StatusOr<Statement> stmt = db.Prepare(Sql::kInsertStreamDelta);
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, append.answer_id)
        .Bind(2, append.first_seq + static_cast<int64_t>(i))
        .Bind(3, append.deltas[i]);
    if (absl::Status s = stmt->Run(); !s.ok()) return s;
  }
  if (append.outcome.has_value()) {
    absl::StatusOr<Statement> stmt = db.Prepare(Sql::kFinishStream);
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, append.answer_id)
        .Bind(2, static_cast<int64_t>(append.outcome->status_code))
        .Bind(3, append.outcome->status_message)
        .Bind(4, append.outcome->done);
    if (absl::Status s = stmt->Run(); !s.ok()) return s;
  }
  StreamControl control;
  {
    absl::StatusOr<Statement> stmt = db.Prepare(Sql::kStreamControl);
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, append.answer_id);
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (*row) {
      control.cancel_requested = stmt->Int64(0) != 0;
      if (!stmt->IsNull(1)) control.reader_seen_at = FromMicros(stmt->Int64(1));
    }
  }
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return control;
}

absl::StatusOr<StreamRead> SqliteConversationStore::ReadStream(
    const SessionKey& session, absl::string_view answer_id, int64_t after_seq,
    absl::Time now, std::optional<absl::Time> touch) {
  StreamRead read;
  {
    Reader reader = AcquireReader();
    Connection& db = reader.connection();
    // The answer's row before its deltas: an outcome seen here was committed
    // with or after the last delta, so the deltas read next are complete.
    {
      absl::StatusOr<Statement> stmt = db.Prepare(Sql::kFindStream);
      if (!stmt.ok()) return stmt.status();
      stmt->Bind(1, session.tenant)
          .Bind(2, session.session_id)
          .Bind(3, answer_id)
          .Bind(4, ToMicros(now));
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) {
        return absl::NotFoundError(
            answer_id.empty()
                ? absl::StrCat("session ", session.session_id, " has no stream")
                : absl::StrCat("stream ", answer_id, " of session ",
                               session.session_id, " not found"));
      }
      read.answer_id = stmt->Text(0);
      if (!stmt->IsNull(1)) {
        StreamOutcome& outcome = read.outcome.emplace();
        outcome.status_code = static_cast<int>(stmt->Int64(1));
        outcome.status_message = stmt->Text(2);
        outcome.done = stmt->Text(3);
      }
    }
    absl::StatusOr<Statement> stmt = db.Prepare(Sql::kReadStreamDeltas);
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, read.answer_id).Bind(2, after_seq);
    for (;;) {
      absl::StatusOr<bool> row = stmt->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      read.deltas.push_back(stmt->Text(0));
    }
  }
  if (touch.has_value()) {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kTouchStream);
    if (!stmt.ok()) return stmt.status();
    stmt->Bind(1, read.answer_id).Bind(2, ToMicros(*touch));
    if (absl::Status s = stmt->Run(); !s.ok()) return s;
  }
  return read;
}

absl::StatusOr<std::string> SqliteConversationStore::RequestCancel(
    const SessionKey& session, absl::Time now) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Statement> stmt = writer_->Prepare(Sql::kCancelStreams);
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, session.tenant)
      .Bind(2, session.session_id)
      .Bind(3, ToMicros(now));
  std::string id;
  for (;;) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    id = stmt->Text(0);
  }
  if (id.empty()) {
    return absl::NotFoundError(absl::StrCat("session ", session.session_id,
                                            " has no answer in progress"));
  }
  return id;
}

absl::StatusOr<int64_t> SqliteConversationStore::DeleteExpiredStreams(
    absl::Time now, int limit) {
  absl::MutexLock lock(&mu_);
  return DeleteExpiredWith(*writer_, Sql::kDeleteExpiredStreams, now, limit);
}

absl::StatusOr<std::unique_ptr<ConversationStore>> OpenSqliteConversationStore(
    absl::string_view path) {
  absl::StatusOr<std::unique_ptr<SqliteConversationStore>> store =
      SqliteConversationStore::Open(path);
  if (!store.ok()) return store.status();
  return std::unique_ptr<ConversationStore>(*std::move(store));
}

// Export and import run rarely, so their statements are prepared per call
// rather than kept in the connections' caches.
absl::StatusOr<SessionArchive> SqliteConversationStore::ExportSession(
    const SessionKey& key) {
  Reader reader = AcquireReader();
  // One statement, so one snapshot (as kLoadHistory); a session without
  // messages yields one row of NULL message columns.
  absl::StatusOr<Statement> stmt = Statement::Prepare(reader.connection().db(),
                                                      R"sql(
      SELECT s.system_prompt, s.title, s.created_at_us, s.updated_at_us,
             s.active_turn_id, m.role, m.content, m.created_at_us, m.model,
             m.stop_reason, m.input_tokens, m.output_tokens, m.cost_usd,
             m.turn_id, m.parent_turn_id
      FROM sessions AS s
      LEFT JOIN messages AS m
        ON m.tenant = s.tenant AND m.session_id = s.session_id
      WHERE s.tenant = ?1 AND s.session_id = ?2
      ORDER BY m.seq)sql");
  if (!stmt.ok()) return stmt.status();
  stmt->Bind(1, key.tenant).Bind(2, key.session_id);
  SessionArchive archive;
  archive.session_id = key.session_id;
  bool found = false;
  for (;;) {
    absl::StatusOr<bool> row = stmt->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (!found) {
      found = true;
      archive.system_prompt = stmt->Text(0);
      archive.title = stmt->Text(1);
      archive.created_at = FromMicros(stmt->Int64(2));
      archive.updated_at = FromMicros(stmt->Int64(3));
      archive.active_turn_id = static_cast<int>(stmt->Int64(4));
    }
    if (stmt->IsNull(5)) continue;  // No messages.
    if (stmt->Text(5) == "user") {
      ArchivedTurn turn;
      turn.turn_id = static_cast<int>(stmt->Int64(13));
      turn.parent_turn_id = static_cast<int>(stmt->Int64(14));
      turn.created_at = FromMicros(stmt->Int64(7));
      turn.user_message = stmt->Text(6);
      archive.turns.push_back(std::move(turn));
    } else if (!archive.turns.empty()) {
      ArchivedTurn& turn = archive.turns.back();
      turn.assistant_message = stmt->Text(6);
      turn.model = stmt->Text(8);
      turn.stop_reason = stmt->Text(9);
      turn.input_tokens = stmt->Int64(10);
      turn.output_tokens = stmt->Int64(11);
      if (!stmt->IsNull(12)) turn.cost_usd = stmt->Double(12);
    }
  }
  if (!found) return SessionNotFound(key);
  return archive;
}

absl::Status SqliteConversationStore::ImportSession(
    absl::string_view tenant, const SessionArchive& archive, bool replace) {
  if (absl::Status s = ValidateSessionArchive(archive); !s.ok()) return s;
  const SessionKey key{std::string(tenant), archive.session_id};
  absl::MutexLock lock(&mu_);
  Connection& db = *writer_;
  Transaction txn(db);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<std::optional<SessionState>> state = ReadSessionState(db, key);
  if (!state.ok()) return state.status();
  if (state->has_value()) {
    if (!replace) {
      return absl::AlreadyExistsError(
          absl::StrCat("session ", key.session_id, " already exists"));
    }
    // ON DELETE CASCADE takes the messages (and the FTS triggers their
    // index entries).
    absl::StatusOr<Statement> remove = db.Prepare(Sql::kDeleteSession);
    if (!remove.ok()) return remove.status();
    remove->Bind(1, key.tenant).Bind(2, key.session_id);
    if (absl::Status s = remove->Run(); !s.ok()) return s;
  }
  absl::StatusOr<Statement> insert = db.Prepare(Sql::kInsertSession);
  if (!insert.ok()) return insert.status();
  insert->Bind(1, key.tenant)
      .Bind(2, key.session_id)
      .Bind(3, archive.system_prompt)
      .Bind(4, ToMicros(archive.created_at));
  if (absl::Status s = insert->Run(); !s.ok()) return s;
  // InsertTurn gives turn i + 1 the id stored_turns + 1 and keeps the
  // session's token and cost sums, as for a turn stored live.
  for (size_t i = 0; i < archive.turns.size(); ++i) {
    const ArchivedTurn& archived = archive.turns[i];
    Turn turn;
    turn.user_message = archived.user_message;
    turn.assistant_message = archived.assistant_message;
    turn.model = archived.model;
    turn.stop_reason = archived.stop_reason;
    turn.input_tokens = archived.input_tokens;
    turn.output_tokens = archived.output_tokens;
    turn.cost_usd = archived.cost_usd;
    turn.created_at = archived.created_at;
    SessionState at;
    at.stored_turns = static_cast<int64_t>(i);
    absl::StatusOr<int> id =
        InsertTurn(db, key, at, archived.parent_turn_id, /*depth=*/0, turn);
    if (!id.ok()) return id.status();
  }
  absl::StatusOr<Statement> finish = Statement::Prepare(db.db(), R"sql(
      UPDATE sessions
      SET title = ?3, updated_at_us = ?4, active_turn_id = ?5,
          turn_count = ?6
      WHERE tenant = ?1 AND session_id = ?2)sql");
  if (!finish.ok()) return finish.status();
  finish->Bind(1, key.tenant)
      .Bind(2, key.session_id)
      .Bind(3, archive.title)
      .Bind(4, ToMicros(archive.updated_at))
      .Bind(5, int64_t{archive.active_turn_id})
      .Bind(6, int64_t{BranchLength(archive, archive.active_turn_id)});
  if (absl::Status s = finish->Run(); !s.ok()) return s;
  return txn.Commit();
}

}  // namespace chat::store
