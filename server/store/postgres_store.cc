#include "server/store/postgres_store.h"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "server/store/expiry_sweep.h"
#include "server/store/key_columns.h"
#include "server/store/page_token.h"
#include "server/store/turn_tree.h"

namespace chat::store {
namespace {

// Any fixed number: replicas migrating at once serialize on it.
constexpr int64_t kMigrationLockId = 0x63686174640001;  // "chatd" + 1

// kMigrations[i] moves the schema from version i to i + 1, in one transaction
// with the version bump. Append new steps; never edit a shipped one.
constexpr const char* kMigrations[] = {
    // 1: sessions and their messages.
    R"sql(
CREATE TABLE sessions (
  tenant        TEXT    NOT NULL,
  session_id    TEXT    NOT NULL,
  system_prompt TEXT    NOT NULL,
  created_at_us BIGINT  NOT NULL,
  updated_at_us BIGINT  NOT NULL,
  turn_count    INTEGER NOT NULL,
  input_tokens  BIGINT  NOT NULL,
  output_tokens BIGINT  NOT NULL,
  PRIMARY KEY (tenant, session_id)
);
CREATE INDEX sessions_by_recency
  ON sessions (tenant, updated_at_us DESC, session_id);
CREATE INDEX sessions_by_idle ON sessions (updated_at_us);
CREATE TABLE messages (
  tenant        TEXT    NOT NULL,
  session_id    TEXT    NOT NULL,
  seq           INTEGER NOT NULL,
  role          TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
  -- BYTEA, not TEXT: a message may hold any bytes, NUL included, which
  -- TEXT cannot store. Written and read in hex form (see HexBytes).
  content       BYTEA   NOT NULL,
  created_at_us BIGINT  NOT NULL,
  model         TEXT,
  stop_reason   TEXT,
  input_tokens  BIGINT,
  output_tokens BIGINT,
  PRIMARY KEY (tenant, session_id, seq),
  FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, session_id)
    ON DELETE CASCADE
);
)sql",
    // 2: API keys, quota counters and daily usage (SQLite schema 3; the
    // comments there say what each column holds).
    R"sql(
CREATE TABLE api_keys (
  id                  TEXT    NOT NULL PRIMARY KEY,
  tenant              TEXT    NOT NULL,
  name                TEXT    NOT NULL,
  secret_hash         TEXT    NOT NULL,
  created_at_us       BIGINT  NOT NULL,
  expires_at_us       BIGINT,
  revoked_at_us       BIGINT,
  requests_per_minute BIGINT  NOT NULL,
  tokens_per_minute   BIGINT  NOT NULL,
  max_streams         BIGINT  NOT NULL,
  max_tokens          BIGINT  NOT NULL,
  allowed_models      TEXT    NOT NULL,
  budget_tokens       BIGINT  NOT NULL,
  budget_period       TEXT    NOT NULL
    CHECK (budget_period IN ('', 'day', 'month'))
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at_us, id);
CREATE TABLE quota_counters (
  scope           TEXT    NOT NULL,
  window_start_us BIGINT  NOT NULL,
  used            BIGINT  NOT NULL,
  PRIMARY KEY (scope, window_start_us)
);
CREATE INDEX quota_counters_by_window ON quota_counters (window_start_us);
CREATE TABLE usage_daily (
  tenant        TEXT    NOT NULL,
  key_id        TEXT    NOT NULL,
  day_us        BIGINT  NOT NULL,
  calls         BIGINT  NOT NULL,
  input_tokens  BIGINT  NOT NULL,
  output_tokens BIGINT  NOT NULL,
  PRIMARY KEY (tenant, key_id, day_us)
);
)sql",
    // 3: the cost of each answer in US dollars (SQLite schema 4); NULL on a
    // message or session: no price, no cost.
    R"sql(
ALTER TABLE sessions ADD COLUMN cost_usd DOUBLE PRECISION;
ALTER TABLE messages ADD COLUMN cost_usd DOUBLE PRECISION;
ALTER TABLE usage_daily
  ADD COLUMN cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0;
)sql",
    // 4: request ids of idempotent turns (SQLite schema 5): who claimed
    // each, and the answer once stored (answered_at_us NOT NULL). Rows live
    // until expires_at_us; the sweep deletes them by that index.
    R"sql(
CREATE TABLE idempotency_keys (
  tenant         TEXT    NOT NULL,
  request_id     TEXT    NOT NULL,
  fingerprint    TEXT    NOT NULL,
  owner          TEXT    NOT NULL,
  claimed_at_us  BIGINT  NOT NULL,
  expires_at_us  BIGINT  NOT NULL,
  session_id     TEXT,
  response       BYTEA,
  answered_at_us BIGINT,
  turn_count     BIGINT,
  model          TEXT,
  stop_reason    TEXT,
  input_tokens   BIGINT,
  output_tokens  BIGINT,
  cost_usd       DOUBLE PRECISION,
  PRIMARY KEY (tenant, request_id)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at_us);
)sql",
    // 5: session titles and full-text search (SQLite schema 6). Each
    // message's tsvector is a stored generated column, so PostgreSQL fills
    // it for the rows already there when the column is added and keeps it
    // for every insert; the GIN index serves @@. The 'simple' configuration
    // (no stemming, no stop words), as SQLite's unicode61 tokenizer: users
    // write in any language. content is BYTEA (it may hold NUL, which TEXT
    // cannot): chat_message_text reads it as UTF-8, or, for the rare message
    // that is not valid UTF-8 or holds NUL, as escaped text, rather than
    // failing the insert. IMMUTABLE as a generated column requires; true for
    // the database's fixed encoding.
    R"sql(
ALTER TABLE sessions ADD COLUMN title TEXT NOT NULL DEFAULT '';
CREATE FUNCTION chat_message_text(content BYTEA) RETURNS TEXT
  LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  RETURN convert_from(content, 'UTF8');
EXCEPTION WHEN OTHERS THEN
  RETURN encode(content, 'escape');
END
$$;
ALTER TABLE messages ADD COLUMN search TSVECTOR
  GENERATED ALWAYS AS
    (to_tsvector('simple'::regconfig, chat_message_text(content))) STORED;
CREATE INDEX messages_search ON messages USING GIN (search);
)sql",
    // 6: branches (SQLite schema 7; the comment there says what each column
    // holds). A linear history becomes one branch, its last turn active.
    R"sql(
ALTER TABLE messages ADD COLUMN turn_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN parent_turn_id INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET turn_id = seq / 2 + 1, parent_turn_id = seq / 2;
ALTER TABLE sessions ADD COLUMN active_turn_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN stored_turns INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET active_turn_id = turn_count, stored_turns = turn_count;
)sql",
    // 7: streamed answers as they are produced, for resuming a stream on any
    // replica (SQLite schema 8; the comments there say what each column
    // holds).
    R"sql(
CREATE TABLE stream_answers (
  answer_id         TEXT    NOT NULL PRIMARY KEY,
  tenant            TEXT    NOT NULL,
  session_id        TEXT    NOT NULL,
  started_at_us     BIGINT  NOT NULL,
  expires_at_us     BIGINT  NOT NULL,
  reader_seen_at_us BIGINT,
  cancel_requested  BIGINT  NOT NULL DEFAULT 0,
  status_code       BIGINT,
  status_message    TEXT,
  done              BYTEA
);
CREATE INDEX stream_answers_by_session
  ON stream_answers (tenant, session_id, started_at_us);
CREATE INDEX stream_answers_by_expiry ON stream_answers (expires_at_us);
CREATE TABLE stream_deltas (
  answer_id TEXT    NOT NULL
    REFERENCES stream_answers (answer_id) ON DELETE CASCADE,
  seq       BIGINT  NOT NULL,
  text      BYTEA   NOT NULL,
  PRIMARY KEY (answer_id, seq)
);
)sql",
};
static_assert(std::size(kMigrations) == kPostgresSchemaVersion,
              "kPostgresSchemaVersion must equal the number of migrations");

// Prepared once per connection: (name, SQL).
struct PreparedSql {
  const char* name;
  const char* sql;
};
constexpr PreparedSql kStatements[] = {
    {"get_session",
     "SELECT system_prompt, created_at_us, updated_at_us, turn_count, title "
     "FROM sessions WHERE tenant = $1 AND session_id = $2"},
    {"load_history",
     "SELECT m.role, m.content, m.created_at_us, m.output_tokens, m.turn_id, "
     "m.parent_turn_id, s.active_turn_id FROM sessions s "
     "LEFT JOIN messages m ON m.tenant = s.tenant AND m.session_id = "
     "s.session_id WHERE s.tenant = $1 AND s.session_id = $2 ORDER BY m.seq"},
    {"lock_session",
     "SELECT turn_count, stored_turns, active_turn_id FROM sessions "
     "WHERE tenant = $1 AND session_id = $2 FOR UPDATE"},
    {"create_session",
     "INSERT INTO sessions (tenant, session_id, system_prompt, created_at_us, "
     "updated_at_us, turn_count, input_tokens, output_tokens) "
     "VALUES ($1, $2, $3, $4, $4, 0, 0, 0) ON CONFLICT DO NOTHING"},
    {"insert_turn",
     "INSERT INTO messages (tenant, session_id, seq, role, content, "
     "created_at_us, model, stop_reason, input_tokens, output_tokens, "
     "cost_usd, turn_id, parent_turn_id) "
     "VALUES ($1, $2, $3, 'user', $4, $5, NULL, NULL, NULL, NULL, NULL, $12, "
     "$13), ($1, $2, $3 + 1, 'assistant', $6, $5, $7, $8, $9, $10, "
     "$11::double precision, $12, $13)"},
    {"count_turn",
     "UPDATE sessions SET turn_count = $7, stored_turns = stored_turns + 1, "
     "active_turn_id = $8, updated_at_us = $3, "
     "input_tokens = input_tokens + $4, output_tokens = output_tokens + $5, "
     "cost_usd = CASE WHEN $6::double precision IS NULL THEN cost_usd "
     "ELSE COALESCE(cost_usd, 0) + $6::double precision END "
     "WHERE tenant = $1 AND session_id = $2"},
    {"clear_messages",
     "DELETE FROM messages WHERE tenant = $1 AND session_id = $2"},
    {"reset_session",
     "UPDATE sessions SET turn_count = 0, input_tokens = 0, output_tokens = 0, "
     "cost_usd = NULL, updated_at_us = $3, active_turn_id = 0, "
     "stored_turns = 0 WHERE tenant = $1 AND session_id = $2"},
    {"delete_session",
     "DELETE FROM sessions WHERE tenant = $1 AND session_id = $2"},
    {"list_first",
     "SELECT session_id, system_prompt, created_at_us, updated_at_us, "
     "turn_count, title FROM sessions WHERE tenant = $1 "
     "ORDER BY updated_at_us DESC, session_id LIMIT $2"},
    {"list_after",
     "SELECT session_id, system_prompt, created_at_us, updated_at_us, "
     "turn_count, title FROM sessions WHERE tenant = $1 "
     "AND updated_at_us <= $3 "
     "AND (updated_at_us < $3 OR session_id > $4) "
     "ORDER BY updated_at_us DESC, session_id LIMIT $2"},
    {"stats",
     "SELECT COUNT(*), COALESCE(SUM(stored_turns), 0), "
     "COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
     "SUM(cost_usd) FROM sessions WHERE tenant = $1"},
    // The turn tree of one session, parents first.
    {"turn_links",
     "SELECT turn_id, parent_turn_id FROM messages WHERE tenant = $1 AND "
     "session_id = $2 AND role = 'user' ORDER BY seq"},
    {"switch_branch",
     "UPDATE sessions SET active_turn_id = $3, turn_count = $4 "
     "WHERE tenant = $1 AND session_id = $2"},
    {"delete_idle", "DELETE FROM sessions WHERE updated_at_us < $1"},
    // ExportSession: the session and every message in one snapshot; a
    // session without messages gives one row of NULL message columns.
    {"export_session",
     "SELECT s.system_prompt, s.title, s.created_at_us, s.updated_at_us, "
     "s.active_turn_id, m.role, m.content, m.created_at_us, m.model, "
     "m.stop_reason, m.input_tokens, m.output_tokens, m.cost_usd, m.turn_id, "
     "m.parent_turn_id FROM sessions s LEFT JOIN messages m "
     "ON m.tenant = s.tenant AND m.session_id = s.session_id "
     "WHERE s.tenant = $1 AND s.session_id = $2 ORDER BY m.seq"},
    // ImportSession, once its turns are in: what the turns do not set.
    {"finish_import",
     "UPDATE sessions SET title = $3, updated_at_us = $4, "
     "active_turn_id = $5, turn_count = $6 "
     "WHERE tenant = $1 AND session_id = $2"},
    // $4 = true: only a session without a title (see SetTitle).
    {"set_title",
     "UPDATE sessions SET title = $3 WHERE tenant = $1 AND session_id = $2 "
     "AND (NOT $4::boolean OR title = '')"},
    {"session_exists",
     "SELECT 1 FROM sessions WHERE tenant = $1 AND session_id = $2"},
    // Ranks and pages first, then makes headlines for that page only:
    // ts_headline re-parses the whole message, the costly part.
    // websearch_to_tsquery accepts anything a user types (words, "phrases",
    // or, -not) without syntax errors.
    {"search",
     "WITH q AS (SELECT websearch_to_tsquery('simple'::regconfig, $2) AS "
     "query), hits AS (SELECT m.session_id, m.seq, m.role, m.content, "
     "m.created_at_us, ts_rank(m.search, q.query) AS rank FROM messages m, q "
     "WHERE m.tenant = $1 AND m.search @@ q.query "
     "ORDER BY rank DESC, m.created_at_us DESC, m.session_id, m.seq "
     "LIMIT $3 OFFSET $4) "
     "SELECT h.session_id, s.title, h.seq, h.role, "
     "ts_headline('simple'::regconfig, chat_message_text(h.content), "
     "q.query, 'StartSel=' || $5 || ', StopSel=' || $6 || "
     "', MaxWords=24, MinWords=8, MaxFragments=1'), h.created_at_us "
     "FROM hits h CROSS JOIN q JOIN sessions s "
     "ON s.tenant = $1 AND s.session_id = h.session_id "
     "ORDER BY h.rank DESC, h.created_at_us DESC, h.session_id, h.seq"},
    // DO NOTHING: a taken id is told apart by the row count, and does not
    // abort anything.
    {"insert_key",
     "INSERT INTO api_keys (id, tenant, name, secret_hash, created_at_us, "
     "expires_at_us, revoked_at_us, requests_per_minute, tokens_per_minute, "
     "max_streams, max_tokens, allowed_models, budget_tokens, budget_period) "
     "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
     "ON CONFLICT (id) DO NOTHING"},
    // The key reads select the columns in the order KeyAt() takes. Ids
    // compare as bytes (COLLATE "C"), as in the other stores, whatever the
    // database's locale.
    {"get_key",
     "SELECT id, tenant, name, secret_hash, created_at_us, expires_at_us, "
     "revoked_at_us, requests_per_minute, tokens_per_minute, max_streams, "
     "max_tokens, allowed_models, budget_tokens, budget_period "
     "FROM api_keys WHERE id = $1"},
    {"list_keys",
     "SELECT id, tenant, name, secret_hash, created_at_us, expires_at_us, "
     "revoked_at_us, requests_per_minute, tokens_per_minute, max_streams, "
     "max_tokens, allowed_models, budget_tokens, budget_period "
     "FROM api_keys WHERE $1::text = '' OR tenant = $1 "
     "ORDER BY created_at_us, id COLLATE \"C\""},
    // COALESCE keeps the first revocation time; the row count includes a
    // key already revoked, so it tells whether the key exists.
    {"revoke_key",
     "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, $2) "
     "WHERE id = $1"},
    {"has_active_keys",
     "SELECT EXISTS (SELECT 1 FROM api_keys "
     "WHERE (revoked_at_us IS NULL OR revoked_at_us > $1) "
     "AND (expires_at_us IS NULL OR expires_at_us > $1))"},
    // Check and add in one statement: the conflicting row is locked, so
    // concurrent charges of one counter apply one after the other, each
    // seeing the sum the previous one committed. No row comes back when the
    // sum would pass the limit $4. A new counter takes the amount $3 as it
    // is; Charge() never runs this with $3 > $4.
    {"charge_counter",
     "INSERT INTO quota_counters (scope, window_start_us, used) "
     "VALUES ($1, $2, $3) ON CONFLICT (scope, window_start_us) DO UPDATE "
     "SET used = quota_counters.used + EXCLUDED.used "
     "WHERE quota_counters.used + EXCLUDED.used <= $4::bigint "
     "RETURNING used"},
    {"read_counter",
     "SELECT used FROM quota_counters "
     "WHERE scope = $1 AND window_start_us = $2"},
    {"adjust_counter",
     "INSERT INTO quota_counters (scope, window_start_us, used) "
     "VALUES ($1, $2, GREATEST(0, $3::bigint)) "
     "ON CONFLICT (scope, window_start_us) DO UPDATE "
     "SET used = GREATEST(0, quota_counters.used + $3::bigint)"},
    {"delete_counters",
     "DELETE FROM quota_counters "
     "WHERE starts_with(scope, $1) AND window_start_us < $2"},
    {"add_usage",
     "INSERT INTO usage_daily (tenant, key_id, day_us, calls, input_tokens, "
     "output_tokens, cost_usd) VALUES ($1, $2, $3, $4, $5, $6, $7) "
     "ON CONFLICT (tenant, key_id, day_us) DO UPDATE "
     "SET calls = usage_daily.calls + EXCLUDED.calls, "
     "input_tokens = usage_daily.input_tokens + EXCLUDED.input_tokens, "
     "output_tokens = usage_daily.output_tokens + EXCLUDED.output_tokens, "
     "cost_usd = usage_daily.cost_usd + EXCLUDED.cost_usd"},
    // An empty $1 or $2 matches every tenant or key.
    {"get_usage",
     "SELECT tenant, key_id, SUM(calls), SUM(input_tokens), "
     "SUM(output_tokens), SUM(cost_usd) FROM usage_daily "
     "WHERE ($1::text = '' OR tenant = $1) AND ($2::text = '' OR key_id = $2) "
     "AND day_us >= $3 AND day_us < $4 "
     "GROUP BY tenant, key_id "
     "ORDER BY tenant COLLATE \"C\", key_id COLLATE \"C\""},
    // A new id, or one whose record expired or whose unanswered claim went
    // stale ($7) with the same fingerprint, is (re)claimed; anything else
    // leaves the row as it is and returns nothing. The conflicting row is
    // locked, so of concurrent claims exactly one returns a row.
    {"claim_request",
     "INSERT INTO idempotency_keys (tenant, request_id, fingerprint, owner, "
     "claimed_at_us, expires_at_us) VALUES ($1, $2, $3, $4, $5, $6) "
     "ON CONFLICT (tenant, request_id) DO UPDATE SET "
     "fingerprint = EXCLUDED.fingerprint, owner = EXCLUDED.owner, "
     "claimed_at_us = EXCLUDED.claimed_at_us, "
     "expires_at_us = EXCLUDED.expires_at_us, session_id = NULL, "
     "response = NULL, answered_at_us = NULL, turn_count = NULL, "
     "model = NULL, stop_reason = NULL, input_tokens = NULL, "
     "output_tokens = NULL, cost_usd = NULL "
     "WHERE idempotency_keys.expires_at_us <= $5 OR "
     "(idempotency_keys.answered_at_us IS NULL AND "
     "idempotency_keys.fingerprint = EXCLUDED.fingerprint AND "
     "idempotency_keys.claimed_at_us < $7::bigint) "
     "RETURNING owner"},
    {"complete_request",
     "UPDATE idempotency_keys SET session_id = $4, response = $5, "
     "answered_at_us = $6, turn_count = $7, model = $8, stop_reason = $9, "
     "input_tokens = $10, output_tokens = $11, "
     "cost_usd = $12::double precision "
     "WHERE tenant = $1 AND request_id = $2 AND owner = $3"},
    {"release_request",
     "DELETE FROM idempotency_keys WHERE tenant = $1 AND request_id = $2 "
     "AND owner = $3 AND answered_at_us IS NULL"},
    {"lookup_request",
     "SELECT fingerprint, owner, claimed_at_us, expires_at_us, "
     "answered_at_us, session_id, response, turn_count, model, stop_reason, "
     "input_tokens, output_tokens, cost_usd FROM idempotency_keys "
     "WHERE tenant = $1 AND request_id = $2 AND expires_at_us > $3"},
    // A bounded batch, skipping rows another sweeper holds: no long lock.
    {"delete_expired_requests",
     "DELETE FROM idempotency_keys WHERE ctid IN (SELECT ctid FROM "
     "idempotency_keys WHERE expires_at_us <= $1 ORDER BY expires_at_us "
     "LIMIT $2 FOR UPDATE SKIP LOCKED)"},
    // One round trip per batch: the answer's row (created, or its expiry
    // moved and its outcome set once), its new deltas ($7, a bytea array,
    // numbered from $6; numbers already stored are skipped), and its control
    // flags back. The deltas' foreign key is checked at the statement's end,
    // after the row exists.
    {"append_stream",
     "WITH answer AS (INSERT INTO stream_answers (answer_id, tenant, "
     "session_id, started_at_us, expires_at_us, status_code, status_message, "
     "done) VALUES ($1, $2, $3, $4, $5, $8::bigint, $9, $10::bytea) "
     "ON CONFLICT (answer_id) DO UPDATE SET "
     "expires_at_us = EXCLUDED.expires_at_us, "
     "status_code = COALESCE(stream_answers.status_code, "
     "EXCLUDED.status_code), "
     "status_message = CASE WHEN stream_answers.status_code IS NULL THEN "
     "EXCLUDED.status_message ELSE stream_answers.status_message END, "
     "done = CASE WHEN stream_answers.status_code IS NULL THEN EXCLUDED.done "
     "ELSE stream_answers.done END "
     "RETURNING cancel_requested, reader_seen_at_us), "
     "deltas AS (INSERT INTO stream_deltas (answer_id, seq, text) "
     "SELECT $1, $6::bigint + u.ord - 1, u.d "
     "FROM unnest($7::bytea[]) WITH ORDINALITY AS u(d, ord) "
     "ON CONFLICT (answer_id, seq) DO NOTHING) "
     "SELECT cancel_requested, reader_seen_at_us FROM answer"},
    // The named answer ($3), or the session's latest when $3 is empty.
    {"find_stream",
     "SELECT answer_id, status_code, status_message, done FROM stream_answers "
     "WHERE tenant = $1 AND session_id = $2 AND ($3::text = '' OR "
     "answer_id = $3) AND expires_at_us > $4 "
     "ORDER BY started_at_us DESC, answer_id DESC LIMIT 1"},
    {"read_stream_deltas",
     "SELECT text FROM stream_deltas WHERE answer_id = $1 AND seq > $2 "
     "ORDER BY seq"},
    {"touch_stream",
     "UPDATE stream_answers SET reader_seen_at_us = $2 WHERE answer_id = $1"},
    {"cancel_streams",
     "UPDATE stream_answers SET cancel_requested = 1 WHERE tenant = $1 AND "
     "session_id = $2 AND status_code IS NULL AND expires_at_us > $3 "
     "RETURNING answer_id"},
    {"delete_expired_streams",
     "DELETE FROM stream_answers WHERE ctid IN (SELECT ctid FROM "
     "stream_answers WHERE expires_at_us <= $1 ORDER BY expires_at_us "
     "LIMIT $2 FOR UPDATE SKIP LOCKED)"},
};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Why a failure happened decides its code: the server being unreachable, shut
// down or out of resources is worth a retry (kUnavailable); a serialization
// conflict is a retry higher up (kAborted); anything else is a bug.
absl::StatusCode CodeForSqlState(absl::string_view state) {
  if (absl::StartsWith(state, "08") ||  // connection exception
      absl::StartsWith(state, "57") ||  // operator intervention (shutdown)
      absl::StartsWith(state, "53")) {  // insufficient resources (disk full)
    return absl::StatusCode::kUnavailable;
  }
  if (state == "40001" || state == "40P01" || state == "23505") {
    return absl::StatusCode::kAborted;
  }
  // A statement or lock wait that ran into its timeout: the database is
  // overloaded or a row is held too long; worth a retry later.
  if (state == "57014" || state == "55P03")
    return absl::StatusCode::kUnavailable;
  // Data exceptions: a value the column cannot hold (e.g. a NUL byte in a
  // system prompt): the request, not the server, is at fault.
  if (absl::StartsWith(state, "22")) return absl::StatusCode::kInvalidArgument;
  return absl::StatusCode::kInternal;
}

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

int64_t Int64At(const PGresult* r, int row, int column) {
  int64_t value = 0;
  (void)absl::SimpleAtoi(PQgetvalue(r, row, column), &value);
  return value;
}

double DoubleAt(const PGresult* r, int row, int column) {
  double value = 0;
  (void)absl::SimpleAtod(PQgetvalue(r, row, column), &value);
  return value;
}

// Every digit a double needs to read back the same (StrCat keeps six).
std::string DoubleText(double value) { return absl::StrFormat("%.17g", value); }

std::optional<std::string> OptionalDoubleText(std::optional<double> value) {
  if (!value.has_value()) return std::nullopt;
  return DoubleText(*value);
}

std::string TextAt(const PGresult* r, int row, int column) {
  return std::string(PQgetvalue(r, row, column), PQgetlength(r, row, column));
}

// bytea's text input form, "\x" then two hex digits per byte: keeps every
// parameter in text format.
std::string HexBytes(absl::string_view bytes) {
  return absl::StrCat("\\x", absl::BytesToHexString(bytes));
}

// Reads a bytea column returned in text format ("\x..." hex).
std::string BytesAt(const PGresult* r, int row, int column) {
  absl::string_view hex(PQgetvalue(r, row, column),
                        PQgetlength(r, row, column));
  absl::ConsumePrefix(&hex, "\\x");
  return absl::HexStringToBytes(hex);
}

absl::Status TurnNotFound(const SessionKey& key, int turn_id) {
  return absl::NotFoundError(
      absl::StrCat("session ", key.session_id, " has no turn ", turn_id));
}

absl::Status SessionNotFound(const SessionKey& key) {
  return absl::NotFoundError(
      absl::StrCat("session ", key.session_id, " not found"));
}

// A time that may be InfiniteFuture ("never"), kept as NULL.
std::optional<std::string> OptionalMicros(absl::Time t) {
  if (t == absl::InfiniteFuture()) return std::nullopt;
  return absl::StrCat(ToMicros(t));
}

absl::Time OptionalTimeAt(const PGresult* r, int row, int column) {
  return PQgetisnull(r, row, column)
             ? absl::InfiniteFuture()
             : absl::FromUnixMicros(Int64At(r, row, column));
}

// Usage days are kept, and compared, at whole seconds, as the memory store
// keeps them; stored in microseconds like every other time.
std::string WholeSecondMicros(absl::Time t) {
  return absl::StrCat(ToMicros(absl::FromUnixSeconds(absl::ToUnixSeconds(t))));
}

// Row `row` of get_key or list_keys.
absl::StatusOr<ApiKey> KeyAt(const PGresult* r, int row) {
  ApiKey key;
  key.id = TextAt(r, row, 0);
  key.tenant = TextAt(r, row, 1);
  key.name = TextAt(r, row, 2);
  key.secret_hash = TextAt(r, row, 3);
  key.created_at = absl::FromUnixMicros(Int64At(r, row, 4));
  key.expires_at = OptionalTimeAt(r, row, 5);
  key.revoked_at = OptionalTimeAt(r, row, 6);
  key.limits.requests_per_minute = Int64At(r, row, 7);
  key.limits.tokens_per_minute = Int64At(r, row, 8);
  key.limits.max_streams = Int64At(r, row, 9);
  key.limits.max_tokens = Int64At(r, row, 10);
  key.limits.allowed_models = SplitModels(TextAt(r, row, 11));
  key.limits.budget_tokens = Int64At(r, row, 12);
  absl::StatusOr<BudgetPeriod> period = ParseBudgetPeriod(TextAt(r, row, 13));
  if (!period.ok()) return period.status();
  key.limits.budget_period = *period;
  return key;
}

// The row of lookup_request.
RequestRecord RequestRecordAt(const PGresult* r, int row) {
  RequestRecord record;
  record.fingerprint = TextAt(r, row, 0);
  record.owner = TextAt(r, row, 1);
  record.claimed_at = absl::FromUnixMicros(Int64At(r, row, 2));
  record.expires_at = absl::FromUnixMicros(Int64At(r, row, 3));
  if (!PQgetisnull(r, row, 4)) {
    IdempotentAnswer& answer = record.answer.emplace();
    answer.timestamp = absl::FromUnixMicros(Int64At(r, row, 4));
    answer.session_id = TextAt(r, row, 5);
    answer.response = BytesAt(r, row, 6);
    answer.turn_count = static_cast<int>(Int64At(r, row, 7));
    answer.model = TextAt(r, row, 8);
    answer.stop_reason = TextAt(r, row, 9);
    answer.input_tokens = Int64At(r, row, 10);
    answer.output_tokens = Int64At(r, row, 11);
    if (!PQgetisnull(r, row, 12)) answer.cost_usd = DoubleAt(r, row, 12);
  }
  return record;
}

}  // namespace

// One libpq connection with the statements prepared on it. Not thread-safe:
// used by one call at a time through a Lease.
class PostgresConversationStore::Connection {
 public:
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::string& conninfo, absl::Duration connect_timeout) {
    // Keywords override what the conninfo says only where it is silent:
    // expand_dbname lets `dbname` carry a whole URL or key=value string, and
    // libpq lets the last value of a keyword win. So a conninfo that sets
    // `options` replaces the one below whole, server-side timeouts included.
    std::string timeout = absl::StrCat(
        std::max<int64_t>(1, absl::ToInt64Seconds(connect_timeout)));
    // Without these a stalled server or a lost network would block a call
    // (and the worker thread it runs on) forever: TCP keepalives and
    // tcp_user_timeout notice a dead peer, and the server-side timeouts end
    // a statement or a lock wait that takes too long. Failures surface as
    // kUnavailable, which callers may retry.
    const char* keys[] = {"connect_timeout",
                          "application_name",
                          "keepalives",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "tcp_user_timeout",
                          "options",
                          "dbname",
                          nullptr};
    const char* values[] = {timeout.c_str(),
                            "chat-server",
                            "1",
                            "10",
                            "5",
                            "3",
                            "30000",
                            "-c statement_timeout=30s -c lock_timeout=10s "
                            "-c idle_in_transaction_session_timeout=60s",
                            conninfo.c_str(),
                            nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
    auto connection = std::unique_ptr<Connection>(new Connection(conn));
    if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
      return absl::UnavailableError(absl::StrCat(
          "postgres: cannot connect: ",
          conn == nullptr ? "out of memory" : PQerrorMessage(conn)));
    }
    return connection;
  }

  ~Connection() { PQfinish(conn_); }

  absl::Status PrepareAll() {
    for (const PreparedSql& statement : kStatements) {
      Result r(PQprepare(conn_, statement.name, statement.sql, 0, nullptr));
      if (absl::Status s = Check(r.get(), statement.name); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Runs a prepared statement with text parameters.
  absl::StatusOr<Result> Run(
      const char* name,
      std::initializer_list<std::optional<std::string>> params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::optional<std::string>& p : params) {
      values.push_back(p.has_value() ? p->c_str() : nullptr);
    }
    Result r(PQexecPrepared(conn_, name, static_cast<int>(values.size()),
                            values.data(), nullptr, nullptr, 0));
    if (absl::Status s = Check(r.get(), name); !s.ok()) return s;
    return r;
  }

  // Runs SQL without parameters (transaction control, migrations).
  absl::Status Exec(const char* sql, absl::string_view what) {
    Result r(PQexec(conn_, sql));
    return Check(r.get(), what);
  }

  // Runs SQL without parameters and returns its rows.
  absl::StatusOr<Result> Query(const char* sql, absl::string_view what) {
    Result r(PQexec(conn_, sql));
    if (absl::Status s = Check(r.get(), what); !s.ok()) return s;
    return r;
  }

  // False once the connection has failed; it is then dropped, not reused.
  bool healthy() const { return PQstatus(conn_) == CONNECTION_OK && !broken_; }

  // Whether an idle connection is still usable. A server that shut down or
  // restarted has closed it (or sent a termination notice), which shows as
  // the socket being readable while no query runs; without this check the
  // first call after a restart would fail on the dead connection and lose,
  // say, a finished reply.
  bool StillAlive() {
    if (!healthy()) return false;
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return true;  // Nothing to read: fine.
    if (PQconsumeInput(conn_) == 0) return false;
    return PQstatus(conn_) == CONNECTION_OK;
  }

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}

  absl::Status Check(const PGresult* r, absl::string_view what) {
    ExecStatusType status =
        r == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(r);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      return absl::OkStatus();
    }
    const char* state =
        r == nullptr ? nullptr : PQresultErrorField(r, PG_DIAG_SQLSTATE);
    absl::StatusCode code = state == nullptr ? absl::StatusCode::kUnavailable
                                             : CodeForSqlState(state);
    if (code == absl::StatusCode::kUnavailable) broken_ = true;
    std::string message =
        r == nullptr ? PQerrorMessage(conn_) : PQresultErrorMessage(r);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return absl::Status(code, absl::StrCat("postgres: ", what, ": ", message));
  }

  PGconn* const conn_;
  bool broken_ = false;
};

// A connection on loan for one call; returns it to the pool (or drops it if
// it failed) when destroyed.
class PostgresConversationStore::Lease {
 public:
  Lease(PostgresConversationStore* store, std::unique_ptr<Connection> c)
      : store_(store), connection_(std::move(c)) {}
  Lease(Lease&& other) = default;
  ~Lease() {
    if (connection_ != nullptr) {
      bool healthy = connection_->healthy();
      store_->Return(std::move(connection_), healthy);
    }
  }
  Connection* operator->() { return connection_.get(); }

 private:
  PostgresConversationStore* store_;
  std::unique_ptr<Connection> connection_;
};

namespace {

// BEGIN ... COMMIT on a connection (anything with ->Exec); rolls back unless
// committed. A failed statement inside aborts the transaction server-side, so
// the rollback also readies the connection for its next call.
template <typename Conn>
class Transaction {
 public:
  explicit Transaction(Conn connection) : connection_(connection) {}
  ~Transaction() {
    if (open_) connection_->Exec("ROLLBACK", "rollback").IgnoreError();
  }
  absl::Status Begin() {
    absl::Status s = connection_->Exec("BEGIN", "begin");
    open_ = s.ok();
    return s;
  }
  absl::Status Commit() {
    open_ = false;
    return connection_->Exec("COMMIT", "commit");
  }

 private:
  Conn connection_;
  bool open_ = false;
};

}  // namespace

PostgresConversationStore::PostgresConversationStore(std::string conninfo,
                                                     PostgresOptions options)
    : conninfo_(std::move(conninfo)), options_(options) {}

PostgresConversationStore::~PostgresConversationStore() = default;

absl::StatusOr<std::unique_ptr<PostgresConversationStore>>
PostgresConversationStore::Open(absl::string_view conninfo,
                                PostgresOptions options) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError("max_connections must be at least 1");
  }
  auto store = std::unique_ptr<PostgresConversationStore>(
      new PostgresConversationStore(std::string(conninfo), options));
  absl::StatusOr<std::unique_ptr<Connection>> connection =
      Connection::Open(store->conninfo_, options.connect_timeout);
  if (!connection.ok()) return connection.status();
  if (absl::Status s = store->MigrateSchema(**connection); !s.ok()) return s;
  if (absl::Status s = (*connection)->PrepareAll(); !s.ok()) return s;
  absl::MutexLock lock(&store->mu_);
  store->idle_.push_back(*std::move(connection));
  store->open_ = 1;
  return store;
}

absl::Status PostgresConversationStore::MigrateSchema(Connection& c) {
  // The advisory lock is held until COMMIT: a replica starting at the same
  // moment waits here, then finds the schema current.
  Transaction<Connection*> txn(&c);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  const std::string lock =
      absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLockId, ")");
  if (absl::Status s = c.Exec(lock.c_str(), "migration lock"); !s.ok())
    return s;
  if (absl::Status s = c.Exec(
          "CREATE TABLE IF NOT EXISTS chatd_schema (version INTEGER NOT NULL)",
          "schema table");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<Result> rows = c.Query(
      "SELECT COALESCE(MAX(version), 0) FROM chatd_schema", "schema version");
  if (!rows.ok()) return rows.status();
  const int64_t version = Int64At(rows->get(), 0, 0);
  if (version > kPostgresSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("postgres: database schema version ", version,
                     " is newer than this build supports (",
                     kPostgresSchemaVersion, "): upgrade chat-server"));
  }
  for (int64_t step = version; step < kPostgresSchemaVersion; ++step) {
    const std::string what = absl::StrCat("migrate to schema ", step + 1);
    if (absl::Status s = c.Exec(kMigrations[step], what); !s.ok()) return s;
  }
  if (version < kPostgresSchemaVersion) {
    const std::string record = absl::StrCat(
        "DELETE FROM chatd_schema; INSERT INTO chatd_schema VALUES (",
        kPostgresSchemaVersion, ")");
    if (absl::Status s = c.Exec(record.c_str(), "record schema version");
        !s.ok()) {
      return s;
    }
  }
  return txn.Commit();
}

absl::StatusOr<PostgresConversationStore::Lease>
PostgresConversationStore::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    auto available = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < options_.max_connections;
    };
    const absl::Time deadline = absl::Now() + options_.acquire_timeout;
    while (!available()) {
      if (mu_.AwaitWithDeadline(absl::Condition(&available), deadline)) break;
      if (!available()) {
        return absl::UnavailableError(
            absl::StrCat("postgres: all ", options_.max_connections,
                         " connections busy for ",
                         absl::FormatDuration(options_.acquire_timeout)));
      }
    }
    while (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      if (c->StillAlive()) return Lease(this, std::move(c));
      --open_;  // Dead since it was last used: drop it, try the next.
    }
    ++open_;  // Reserve the slot before connecting outside the lock.
  }
  absl::StatusOr<std::unique_ptr<Connection>> c =
      Connection::Open(conninfo_, options_.connect_timeout);
  absl::Status prepared = c.ok() ? (*c)->PrepareAll() : c.status();
  if (!prepared.ok()) {
    absl::MutexLock lock(&mu_);
    --open_;
    return prepared;
  }
  return Lease(this, *std::move(c));
}

void PostgresConversationStore::Return(std::unique_ptr<Connection> connection,
                                       bool healthy) {
  absl::MutexLock lock(&mu_);
  if (healthy) {
    idle_.push_back(std::move(connection));
  } else {
    --open_;  // Dropped; the next call opens a fresh one.
  }
}

absl::StatusOr<SessionInfo> PostgresConversationStore::GetSession(
    const SessionKey& key) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("get_session", {key.tenant, key.session_id});
  if (!r.ok()) return r.status();
  const PGresult* rows = r->get();
  if (PQntuples(rows) == 0) return SessionNotFound(key);
  SessionInfo info;
  info.session_id = key.session_id;
  info.system_prompt = TextAt(rows, 0, 0);
  info.created_at = absl::FromUnixMicros(Int64At(rows, 0, 1));
  info.updated_at = absl::FromUnixMicros(Int64At(rows, 0, 2));
  info.turn_count = static_cast<int>(Int64At(rows, 0, 3));
  info.title = TextAt(rows, 0, 4);
  return info;
}

absl::StatusOr<std::vector<StoredMessage>>
PostgresConversationStore::LoadHistory(const SessionKey& key) {
  return LoadBranchOrActive(key, std::nullopt);
}

absl::StatusOr<std::vector<StoredMessage>>
PostgresConversationStore::LoadBranch(const SessionKey& key, int turn_id) {
  if (turn_id <= 0) return TurnNotFound(key, turn_id);
  return LoadBranchOrActive(key, turn_id);
}

absl::StatusOr<std::vector<StoredMessage>>
PostgresConversationStore::LoadBranchOrActive(const SessionKey& key,
                                              std::optional<int> turn_id) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  // One statement, one snapshot: existence and messages agree.
  absl::StatusOr<Result> r =
      (*c)->Run("load_history", {key.tenant, key.session_id});
  if (!r.ok()) return r.status();
  const PGresult* rows = r->get();
  const int n = PQntuples(rows);
  if (n == 0) return SessionNotFound(key);
  std::vector<StoredMessage> messages;
  messages.reserve(n);
  const int active_turn_id = static_cast<int>(Int64At(rows, 0, 6));
  for (int i = 0; i < n; ++i) {
    if (PQgetisnull(rows, i, 0)) continue;  // A session with no messages.
    // NULL (a user message) reads as 0: unknown.
    StoredMessage& m = messages.emplace_back();
    m.role = TextAt(rows, i, 0);
    m.content = BytesAt(rows, i, 1);
    m.created_at = absl::FromUnixMicros(Int64At(rows, i, 2));
    m.tokens = Int64At(rows, i, 3);
    m.turn_id = static_cast<int>(Int64At(rows, i, 4));
    m.parent_turn_id = static_cast<int>(Int64At(rows, i, 5));
  }
  // Every branch came back, in one snapshot; SelectBranch picks one.
  std::optional<std::vector<StoredMessage>> branch =
      SelectBranch(messages, turn_id.value_or(active_turn_id));
  if (!branch.has_value()) return TurnNotFound(key, turn_id.value_or(0));
  return *std::move(branch);
}

absl::StatusOr<StoredTurn> PostgresConversationStore::AppendTurn(
    const SessionKey& key, int expected_turn_count,
    absl::string_view system_prompt, const Turn& turn) {
  if (expected_turn_count < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected_turn_count must be >= 0, got ", expected_turn_count));
  }
  const std::string created_at = absl::StrCat(ToMicros(turn.created_at));
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  Transaction<Lease&> txn(*c);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  auto changed = [&](absl::string_view found) {
    return absl::AbortedError(absl::StrCat(
        "session ", key.session_id, " changed concurrently: expected ",
        expected_turn_count, " turns, found ", found));
  };

  // The row lock orders concurrent appenders across replicas: the second
  // waits for the first's COMMIT, then sees its turn count.
  absl::StatusOr<Result> locked =
      (*c)->Run("lock_session", {key.tenant, key.session_id});
  if (!locked.ok()) return locked.status();
  int64_t turn_count = 0;
  int64_t stored_turns = 0;
  int64_t active_turn_id = 0;
  if (PQntuples(locked->get()) == 0) {
    if (expected_turn_count != 0) return changed("no session");
    absl::StatusOr<Result> created = (*c)->Run(
        "create_session",
        {key.tenant, key.session_id, std::string(system_prompt), created_at});
    if (!created.ok()) return created.status();
    // Another replica created it between our SELECT and INSERT.
    if (std::string(PQcmdTuples(created->get())) != "1") {
      return changed("a session created concurrently");
    }
  } else {
    turn_count = Int64At(locked->get(), 0, 0);
    stored_turns = Int64At(locked->get(), 0, 1);
    active_turn_id = Int64At(locked->get(), 0, 2);
    if (turn_count != expected_turn_count) {
      return changed(absl::StrCat(turn_count));
    }
  }
  // A child of the active leaf: the active branch grows by one.
  if (absl::Status s = InsertTurn(*c, key, stored_turns, active_turn_id,
                                  turn_count + 1, turn);
      !s.ok()) {
    return s;
  }
  if (turn.answers.has_value()) {
    // In the turn's transaction: a lost claim rolls the turn back too. The
    // UPDATE locks the id's row, so a takeover waits for this COMMIT.
    const RequestClaim& claim = *turn.answers;
    const IdempotentAnswer answer =
        AnswerOfTurn(key, turn, static_cast<int>(turn_count + 1));
    absl::StatusOr<Result> completed = (*c)->Run(
        "complete_request",
        {claim.key.tenant, claim.key.request_id, claim.owner, answer.session_id,
         HexBytes(answer.response), created_at, absl::StrCat(answer.turn_count),
         answer.model, answer.stop_reason, absl::StrCat(answer.input_tokens),
         absl::StrCat(answer.output_tokens),
         OptionalDoubleText(answer.cost_usd)});
    if (!completed.ok()) return completed.status();
    if (std::string(PQcmdTuples(completed->get())) != "1") {
      return RequestClaimLostError(claim);
    }
  }
  // The turn exists for others, and for the caller's answer, only once this
  // returns.
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return StoredTurn{static_cast<int>(stored_turns + 1),
                    static_cast<int>(turn_count + 1)};
}

absl::StatusOr<StoredTurn> PostgresConversationStore::AppendBranchTurn(
    const SessionKey& key, int parent_turn_id, const Turn& turn) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  Transaction<Lease&> txn(*c);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  // The row lock orders this with every other writer of the session.
  absl::StatusOr<Result> locked =
      (*c)->Run("lock_session", {key.tenant, key.session_id});
  if (!locked.ok()) return locked.status();
  if (PQntuples(locked->get()) == 0) return SessionNotFound(key);
  const int64_t stored_turns = Int64At(locked->get(), 0, 1);
  absl::StatusOr<TurnTree> tree = ReadTurnTree(*c, key);
  if (!tree.ok()) return tree.status();
  if (parent_turn_id < 0 ||
      (parent_turn_id > 0 && !tree->Contains(parent_turn_id))) {
    return TurnNotFound(key, parent_turn_id);
  }
  StoredTurn stored;
  stored.turn_count = tree->DepthOf(parent_turn_id) + 1;
  if (absl::Status s = InsertTurn(*c, key, stored_turns, parent_turn_id,
                                  stored.turn_count, turn);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  stored.turn_id = static_cast<int>(stored_turns + 1);
  return stored;
}

absl::StatusOr<int> PostgresConversationStore::SwitchBranch(
    const SessionKey& key, int turn_id) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  Transaction<Lease&> txn(*c);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<Result> locked =
      (*c)->Run("lock_session", {key.tenant, key.session_id});
  if (!locked.ok()) return locked.status();
  if (PQntuples(locked->get()) == 0) return SessionNotFound(key);
  absl::StatusOr<TurnTree> tree = ReadTurnTree(*c, key);
  if (!tree.ok()) return tree.status();
  if (!tree->Contains(turn_id)) return TurnNotFound(key, turn_id);
  const int leaf = tree->NewestLeafFrom(turn_id);
  const int turn_count = tree->DepthOf(leaf);
  absl::StatusOr<Result> switched = (*c)->Run(
      "switch_branch", {key.tenant, key.session_id, absl::StrCat(leaf),
                        absl::StrCat(turn_count)});
  if (!switched.ok()) return switched.status();
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return turn_count;
}

absl::Status PostgresConversationStore::InsertTurn(
    Lease& c, const SessionKey& key, int64_t stored_turns,
    int64_t parent_turn_id, int64_t depth, const Turn& turn) {
  const std::string created_at = absl::StrCat(ToMicros(turn.created_at));
  const std::string turn_id = absl::StrCat(stored_turns + 1);
  const std::string parent = absl::StrCat(parent_turn_id);
  absl::StatusOr<Result> inserted =
      c->Run("insert_turn",
             {key.tenant, key.session_id, absl::StrCat(2 * stored_turns),
              HexBytes(turn.user_message), created_at,
              HexBytes(turn.assistant_message), turn.model, turn.stop_reason,
              absl::StrCat(turn.input_tokens), absl::StrCat(turn.output_tokens),
              OptionalDoubleText(turn.cost_usd), turn_id, parent});
  if (!inserted.ok()) return inserted.status();
  absl::StatusOr<Result> counted =
      c->Run("count_turn",
             {key.tenant, key.session_id, created_at,
              absl::StrCat(turn.input_tokens), absl::StrCat(turn.output_tokens),
              OptionalDoubleText(turn.cost_usd), absl::StrCat(depth), turn_id});
  if (!counted.ok()) return counted.status();
  return absl::OkStatus();
}

absl::StatusOr<TurnTree> PostgresConversationStore::ReadTurnTree(
    Lease& c, const SessionKey& key) {
  absl::StatusOr<Result> links =
      c->Run("turn_links", {key.tenant, key.session_id});
  if (!links.ok()) return links.status();
  TurnTree tree;
  for (int i = 0; i < PQntuples(links->get()); ++i) {
    tree.Add(static_cast<int>(Int64At(links->get(), i, 0)),
             static_cast<int>(Int64At(links->get(), i, 1)));
  }
  return tree;
}

absl::StatusOr<int> PostgresConversationStore::ResetSession(
    const SessionKey& key, absl::Time now) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  Transaction<Lease&> txn(*c);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  absl::StatusOr<Result> locked =
      (*c)->Run("lock_session", {key.tenant, key.session_id});
  if (!locked.ok()) return locked.status();
  if (PQntuples(locked->get()) == 0) return SessionNotFound(key);
  const int64_t turn_count = Int64At(locked->get(), 0, 0);
  absl::StatusOr<Result> cleared =
      (*c)->Run("clear_messages", {key.tenant, key.session_id});
  if (!cleared.ok()) return cleared.status();
  absl::StatusOr<Result> reset =
      (*c)->Run("reset_session",
                {key.tenant, key.session_id, absl::StrCat(ToMicros(now))});
  if (!reset.ok()) return reset.status();
  if (absl::Status s = txn.Commit(); !s.ok()) return s;
  return static_cast<int>(turn_count);
}

absl::StatusOr<bool> PostgresConversationStore::DeleteSession(
    const SessionKey& key) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("delete_session", {key.tenant, key.session_id});
  if (!r.ok()) return r.status();
  return std::string(PQcmdTuples(r->get())) != "0";
}

absl::StatusOr<SessionPage> PostgresConversationStore::ListSessions(
    absl::string_view tenant, int page_size, absl::string_view page_token) {
  absl::StatusOr<std::optional<PageCursor>> parsed =
      ParsePageRequest(page_size, page_token);
  if (!parsed.ok()) return parsed.status();
  const std::optional<PageCursor>& cursor = *parsed;
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  // One row past the page tells whether another follows.
  const std::string limit = absl::StrCat(page_size + 1);
  absl::StatusOr<Result> r =
      cursor.has_value()
          ? (*c)->Run("list_after",
                      {std::string(tenant), limit,
                       absl::StrCat(cursor->updated_at_us), cursor->session_id})
          : (*c)->Run("list_first", {std::string(tenant), limit});
  if (!r.ok()) return r.status();
  const PGresult* rows = r->get();
  SessionPage page;
  for (int i = 0; i < PQntuples(rows); ++i) {
    if (page.sessions.size() == static_cast<size_t>(page_size)) {
      const SessionInfo& last = page.sessions.back();
      page.next_page_token =
          EncodePageToken({ToMicros(last.updated_at), last.session_id});
      break;
    }
    SessionInfo& info = page.sessions.emplace_back();
    info.session_id = TextAt(rows, i, 0);
    info.system_prompt = TextAt(rows, i, 1);
    info.created_at = absl::FromUnixMicros(Int64At(rows, i, 2));
    info.updated_at = absl::FromUnixMicros(Int64At(rows, i, 3));
    info.turn_count = static_cast<int>(Int64At(rows, i, 4));
    info.title = TextAt(rows, i, 5);
  }
  return page;
}

absl::StatusOr<StoreStats> PostgresConversationStore::GetStats(
    absl::string_view tenant) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r = (*c)->Run("stats", {std::string(tenant)});
  if (!r.ok()) return r.status();
  StoreStats stats;
  stats.total_sessions = Int64At(r->get(), 0, 0);
  stats.total_messages = 2 * Int64At(r->get(), 0, 1);
  stats.total_input_tokens = Int64At(r->get(), 0, 2);
  stats.total_output_tokens = Int64At(r->get(), 0, 3);
  if (!PQgetisnull(r->get(), 0, 4)) {
    stats.total_cost_usd = DoubleAt(r->get(), 0, 4);
  }
  return stats;
}

absl::StatusOr<int64_t> PostgresConversationStore::DeleteSessionsIdleSince(
    absl::Time cutoff) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("delete_idle", {absl::StrCat(ToMicros(cutoff))});
  if (!r.ok()) return r.status();
  int64_t deleted = 0;
  (void)absl::SimpleAtoi(PQcmdTuples(r->get()), &deleted);
  return deleted;
}

absl::StatusOr<bool> PostgresConversationStore::SetTitle(
    const SessionKey& key, absl::string_view title, bool only_if_untitled) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("set_title", {key.tenant, key.session_id, std::string(title),
                              only_if_untitled ? "true" : "false"});
  if (!r.ok()) return r.status();
  if (std::string(PQcmdTuples(r->get())) != "0") return true;
  // Nothing changed: the session has a title, or does not exist.
  absl::StatusOr<Result> exists =
      (*c)->Run("session_exists", {key.tenant, key.session_id});
  if (!exists.ok()) return exists.status();
  if (PQntuples(exists->get()) == 0) return SessionNotFound(key);
  return false;
}

absl::StatusOr<SearchPage> PostgresConversationStore::SearchMessages(
    absl::string_view tenant, absl::string_view query, int page_size,
    absl::string_view page_token) {
  absl::StatusOr<int64_t> offset =
      ParseSearchRequest(query, page_size, page_token);
  if (!offset.ok()) return offset.status();
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  // One row past the page tells whether another follows.
  absl::StatusOr<Result> r =
      (*c)->Run("search", {std::string(tenant), std::string(query),
                           absl::StrCat(page_size + 1), absl::StrCat(*offset),
                           std::string(kMatchStart), std::string(kMatchEnd)});
  if (!r.ok()) return r.status();
  const PGresult* rows = r->get();
  SearchPage page;
  for (int i = 0; i < PQntuples(rows); ++i) {
    if (page.hits.size() == static_cast<size_t>(page_size)) {
      page.next_page_token = EncodeSearchToken(query, *offset + page_size);
      break;
    }
    SearchHit& hit = page.hits.emplace_back();
    hit.session_id = TextAt(rows, i, 0);
    hit.session_title = TextAt(rows, i, 1);
    hit.message_index = Int64At(rows, i, 2);
    hit.role = TextAt(rows, i, 3);
    hit.snippet = TextAt(rows, i, 4);
    hit.created_at = absl::FromUnixMicros(Int64At(rows, i, 5));
  }
  return page;
}

absl::Status PostgresConversationStore::CreateKey(const ApiKey& key) {
  if (absl::Status s = ValidateApiKey(key); !s.ok()) return s;
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  const KeyLimits& limits = key.limits;
  absl::StatusOr<Result> r = (*c)->Run(
      "insert_key",
      {key.id, key.tenant, key.name, key.secret_hash,
       absl::StrCat(ToMicros(key.created_at)), OptionalMicros(key.expires_at),
       OptionalMicros(key.revoked_at), absl::StrCat(limits.requests_per_minute),
       absl::StrCat(limits.tokens_per_minute), absl::StrCat(limits.max_streams),
       absl::StrCat(limits.max_tokens), JoinModels(limits.allowed_models),
       absl::StrCat(limits.budget_tokens),
       std::string(BudgetPeriodName(limits.budget_period))});
  if (!r.ok()) return r.status();
  if (std::string(PQcmdTuples(r->get())) == "0") {
    return absl::AlreadyExistsError(
        absl::StrCat("key ", key.id, " already exists"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ApiKey> PostgresConversationStore::GetKey(absl::string_view id) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r = (*c)->Run("get_key", {std::string(id)});
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) {
    return absl::NotFoundError(absl::StrCat("key ", id, " not found"));
  }
  return KeyAt(r->get(), 0);
}

absl::StatusOr<std::vector<ApiKey>> PostgresConversationStore::ListKeys(
    absl::string_view tenant) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r = (*c)->Run("list_keys", {std::string(tenant)});
  if (!r.ok()) return r.status();
  std::vector<ApiKey> keys;
  keys.reserve(PQntuples(r->get()));
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    absl::StatusOr<ApiKey> key = KeyAt(r->get(), i);
    if (!key.ok()) return key.status();
    keys.push_back(*std::move(key));
  }
  return keys;
}

absl::StatusOr<bool> PostgresConversationStore::RevokeKey(absl::string_view id,
                                                          absl::Time now) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("revoke_key", {std::string(id), absl::StrCat(ToMicros(now))});
  if (!r.ok()) return r.status();
  return std::string(PQcmdTuples(r->get())) != "0";
}

absl::StatusOr<bool> PostgresConversationStore::HasActiveKeys(absl::Time now) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("has_active_keys", {absl::StrCat(ToMicros(now))});
  if (!r.ok()) return r.status();
  return TextAt(r->get(), 0, 0) == "t";
}

absl::StatusOr<QuotaCharge> PostgresConversationStore::Charge(
    const QuotaCounter& counter, int64_t amount, int64_t limit) {
  if (amount < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("quota charge must be >= 0, got ", amount));
  }
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  const std::string window = absl::StrCat(ToMicros(counter.window_start));
  // More than the limit on its own is refused without writing a row.
  if (amount <= limit) {
    absl::StatusOr<Result> r = (*c)->Run(
        "charge_counter",
        {counter.scope, window, absl::StrCat(amount), absl::StrCat(limit)});
    if (!r.ok()) return r.status();
    if (PQntuples(r->get()) == 1)
      return QuotaCharge{true, Int64At(r->get(), 0, 0)};
  }
  // Refused: report the value as it is now, read by a statement of its own
  // (the charge's snapshot may predate the row it conflicted with).
  absl::StatusOr<Result> r = (*c)->Run("read_counter", {counter.scope, window});
  if (!r.ok()) return r.status();
  return QuotaCharge{false,
                     PQntuples(r->get()) == 0 ? 0 : Int64At(r->get(), 0, 0)};
}

absl::Status PostgresConversationStore::Adjust(const QuotaCounter& counter,
                                               int64_t delta) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  return (*c)
      ->Run("adjust_counter",
            {counter.scope, absl::StrCat(ToMicros(counter.window_start)),
             absl::StrCat(delta)})
      .status();
}

absl::StatusOr<int64_t> PostgresConversationStore::Read(
    const QuotaCounter& counter) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("read_counter",
                {counter.scope, absl::StrCat(ToMicros(counter.window_start))});
  if (!r.ok()) return r.status();
  return PQntuples(r->get()) == 0 ? 0 : Int64At(r->get(), 0, 0);
}

absl::StatusOr<int64_t> PostgresConversationStore::DeleteCountersBefore(
    absl::string_view scope_prefix, absl::Time cutoff) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("delete_counters",
                {std::string(scope_prefix), absl::StrCat(ToMicros(cutoff))});
  if (!r.ok()) return r.status();
  int64_t deleted = 0;
  (void)absl::SimpleAtoi(PQcmdTuples(r->get()), &deleted);
  return deleted;
}

absl::Status PostgresConversationStore::AddUsage(
    const std::vector<UsageDelta>& deltas) {
  if (deltas.empty()) return absl::OkStatus();
  // Rows are locked in one order whatever the caller's, so two replicas
  // adding the same rows wait for each other instead of deadlocking.
  std::vector<const UsageDelta*> ordered;
  ordered.reserve(deltas.size());
  for (const UsageDelta& delta : deltas) ordered.push_back(&delta);
  std::sort(ordered.begin(), ordered.end(),
            [](const UsageDelta* a, const UsageDelta* b) {
              return std::tie(a->tenant, a->key_id, a->day) <
                     std::tie(b->tenant, b->key_id, b->day);
            });
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  Transaction<Lease&> txn(*c);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  for (const UsageDelta* delta : ordered) {
    absl::StatusOr<Result> r = (*c)->Run(
        "add_usage",
        {delta->tenant, delta->key_id, WholeSecondMicros(delta->day),
         absl::StrCat(delta->calls), absl::StrCat(delta->input_tokens),
         absl::StrCat(delta->output_tokens), DoubleText(delta->cost_usd)});
    if (!r.ok()) return r.status();
  }
  return txn.Commit();
}

absl::StatusOr<std::vector<UsageTotals>> PostgresConversationStore::GetUsage(
    absl::string_view tenant, absl::string_view key_id, absl::Time since,
    absl::Time until) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r = (*c)->Run(
      "get_usage", {std::string(tenant), std::string(key_id),
                    WholeSecondMicros(since), WholeSecondMicros(until)});
  if (!r.ok()) return r.status();
  std::vector<UsageTotals> totals;
  totals.reserve(PQntuples(r->get()));
  for (int i = 0; i < PQntuples(r->get()); ++i) {
    totals.push_back(
        UsageTotals{TextAt(r->get(), i, 0), TextAt(r->get(), i, 1),
                    Int64At(r->get(), i, 2), Int64At(r->get(), i, 3),
                    Int64At(r->get(), i, 4), DoubleAt(r->get(), i, 5)});
  }
  return totals;
}

absl::StatusOr<ClaimResult> PostgresConversationStore::Claim(
    const RequestKey& key, absl::string_view fingerprint,
    absl::string_view owner, absl::Time now, absl::Time expires_at,
    absl::Time stale_before) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  // The record that refused the claim may be released or swept before it is
  // read; then the id is free and the claim is tried again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::StatusOr<Result> claimed = (*c)->Run(
        "claim_request", {key.tenant, key.request_id, std::string(fingerprint),
                          std::string(owner), absl::StrCat(ToMicros(now)),
                          absl::StrCat(ToMicros(expires_at)),
                          absl::StrCat(ToMicros(stale_before))});
    if (!claimed.ok()) return claimed.status();
    if (PQntuples(claimed->get()) == 1) return ClaimResult{true, {}};
    absl::StatusOr<Result> found =
        (*c)->Run("lookup_request",
                  {key.tenant, key.request_id, absl::StrCat(ToMicros(now))});
    if (!found.ok()) return found.status();
    if (PQntuples(found->get()) == 1) {
      return ClaimResult{false, RequestRecordAt(found->get(), 0)};
    }
  }
  return absl::UnavailableError(absl::StrCat(
      "request id ", key.request_id, " is being claimed and released; retry"));
}

absl::StatusOr<bool> PostgresConversationStore::Complete(
    const RequestKey& key, absl::string_view owner,
    const IdempotentAnswer& answer) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r = (*c)->Run(
      "complete_request",
      {key.tenant, key.request_id, std::string(owner), answer.session_id,
       HexBytes(answer.response), absl::StrCat(ToMicros(answer.timestamp)),
       absl::StrCat(answer.turn_count), answer.model, answer.stop_reason,
       absl::StrCat(answer.input_tokens), absl::StrCat(answer.output_tokens),
       OptionalDoubleText(answer.cost_usd)});
  if (!r.ok()) return r.status();
  return std::string(PQcmdTuples(r->get())) == "1";
}

absl::Status PostgresConversationStore::Release(const RequestKey& key,
                                                absl::string_view owner) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  return (*c)
      ->Run("release_request", {key.tenant, key.request_id, std::string(owner)})
      .status();
}

absl::StatusOr<RequestRecord> PostgresConversationStore::Lookup(
    const RequestKey& key, absl::Time now) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("lookup_request",
                {key.tenant, key.request_id, absl::StrCat(ToMicros(now))});
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) {
    return absl::NotFoundError(
        absl::StrCat("request id ", key.request_id, " not found"));
  }
  return RequestRecordAt(r->get(), 0);
}

absl::StatusOr<int64_t> PostgresConversationStore::DeleteExpired(absl::Time now,
                                                                 int limit) {
  return DeleteExpiredWith("delete_expired_requests", now, limit);
}

absl::StatusOr<int64_t> PostgresConversationStore::DeleteExpiredWith(
    const char* statement, absl::Time now, int limit) {
  if (absl::Status s = CheckSweepLimit(limit); !s.ok()) return s;
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run(statement, {absl::StrCat(ToMicros(now)), absl::StrCat(limit)});
  if (!r.ok()) return r.status();
  int64_t deleted = 0;
  (void)absl::SimpleAtoi(PQcmdTuples(r->get()), &deleted);
  return deleted;
}

absl::StatusOr<StreamControl> PostgresConversationStore::AppendStream(
    const StreamAppend& append) {
  // A bytea[] literal: each element "\\x<hex>" (the array syntax escapes
  // the backslash of bytea's hex form).
  std::string deltas = "{";
  for (size_t i = 0; i < append.deltas.size(); ++i) {
    if (i > 0) deltas.push_back(',');
    absl::StrAppend(&deltas, "\"\\\\x",
                    absl::BytesToHexString(append.deltas[i]), "\"");
  }
  deltas.push_back('}');
  std::optional<std::string> code;
  std::optional<std::string> message;
  std::optional<std::string> done;
  if (append.outcome.has_value()) {
    code = absl::StrCat(append.outcome->status_code);
    message = append.outcome->status_message;
    done = HexBytes(append.outcome->done);
  }
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r = (*c)->Run(
      "append_stream",
      {append.answer_id, append.session.tenant, append.session.session_id,
       absl::StrCat(ToMicros(append.started_at)),
       absl::StrCat(ToMicros(append.expires_at)),
       absl::StrCat(append.first_seq), deltas, code, message, done});
  if (!r.ok()) return r.status();
  StreamControl control;
  if (PQntuples(r->get()) == 1) {
    control.cancel_requested = Int64At(r->get(), 0, 0) != 0;
    if (!PQgetisnull(r->get(), 0, 1)) {
      control.reader_seen_at = absl::FromUnixMicros(Int64At(r->get(), 0, 1));
    }
  }
  return control;
}

absl::StatusOr<StreamRead> PostgresConversationStore::ReadStream(
    const SessionKey& session, absl::string_view answer_id, int64_t after_seq,
    absl::Time now, std::optional<absl::Time> touch) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  // The answer's row before its deltas: an outcome seen here was committed
  // with the last delta, so the deltas read next are complete.
  absl::StatusOr<Result> found = (*c)->Run(
      "find_stream", {session.tenant, session.session_id,
                      std::string(answer_id), absl::StrCat(ToMicros(now))});
  if (!found.ok()) return found.status();
  if (PQntuples(found->get()) == 0) {
    return absl::NotFoundError(
        answer_id.empty()
            ? absl::StrCat("session ", session.session_id, " has no stream")
            : absl::StrCat("stream ", answer_id, " of session ",
                           session.session_id, " not found"));
  }
  StreamRead read;
  read.answer_id = TextAt(found->get(), 0, 0);
  if (!PQgetisnull(found->get(), 0, 1)) {
    StreamOutcome& outcome = read.outcome.emplace();
    outcome.status_code = static_cast<int>(Int64At(found->get(), 0, 1));
    outcome.status_message = TextAt(found->get(), 0, 2);
    outcome.done = BytesAt(found->get(), 0, 3);
  }
  absl::StatusOr<Result> rows = (*c)->Run(
      "read_stream_deltas", {read.answer_id, absl::StrCat(after_seq)});
  if (!rows.ok()) return rows.status();
  read.deltas.reserve(PQntuples(rows->get()));
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    read.deltas.push_back(BytesAt(rows->get(), i, 0));
  }
  if (touch.has_value()) {
    absl::StatusOr<Result> touched = (*c)->Run(
        "touch_stream", {read.answer_id, absl::StrCat(ToMicros(*touch))});
    if (!touched.ok()) return touched.status();
  }
  return read;
}

absl::StatusOr<std::string> PostgresConversationStore::RequestCancel(
    const SessionKey& session, absl::Time now) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r = (*c)->Run(
      "cancel_streams",
      {session.tenant, session.session_id, absl::StrCat(ToMicros(now))});
  if (!r.ok()) return r.status();
  if (PQntuples(r->get()) == 0) {
    return absl::NotFoundError(absl::StrCat("session ", session.session_id,
                                            " has no answer in progress"));
  }
  return TextAt(r->get(), 0, 0);
}

absl::StatusOr<int64_t> PostgresConversationStore::DeleteExpiredStreams(
    absl::Time now, int limit) {
  return DeleteExpiredWith("delete_expired_streams", now, limit);
}

absl::StatusOr<std::unique_ptr<ConversationStore>>
OpenPostgresConversationStore(absl::string_view conninfo, int max_connections) {
  PostgresOptions options;
  options.max_connections = max_connections;
  absl::StatusOr<std::unique_ptr<PostgresConversationStore>> store =
      PostgresConversationStore::Open(conninfo, options);
  if (!store.ok()) return store.status();
  return std::unique_ptr<ConversationStore>(*std::move(store));
}

absl::StatusOr<SessionArchive> PostgresConversationStore::ExportSession(
    const SessionKey& key) {
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  absl::StatusOr<Result> r =
      (*c)->Run("export_session", {key.tenant, key.session_id});
  if (!r.ok()) return r.status();
  const PGresult* rows = r->get();
  const int n = PQntuples(rows);
  if (n == 0) return SessionNotFound(key);
  SessionArchive archive;
  archive.session_id = key.session_id;
  archive.system_prompt = TextAt(rows, 0, 0);
  archive.title = TextAt(rows, 0, 1);
  archive.created_at = absl::FromUnixMicros(Int64At(rows, 0, 2));
  archive.updated_at = absl::FromUnixMicros(Int64At(rows, 0, 3));
  archive.active_turn_id = static_cast<int>(Int64At(rows, 0, 4));
  for (int i = 0; i < n; ++i) {
    if (PQgetisnull(rows, i, 5)) continue;  // A session with no messages.
    if (TextAt(rows, i, 5) == "user") {
      ArchivedTurn& turn = archive.turns.emplace_back();
      turn.turn_id = static_cast<int>(Int64At(rows, i, 13));
      turn.parent_turn_id = static_cast<int>(Int64At(rows, i, 14));
      turn.created_at = absl::FromUnixMicros(Int64At(rows, i, 7));
      turn.user_message = BytesAt(rows, i, 6);
    } else if (!archive.turns.empty()) {
      ArchivedTurn& turn = archive.turns.back();
      turn.assistant_message = BytesAt(rows, i, 6);
      turn.model = TextAt(rows, i, 8);
      turn.stop_reason = TextAt(rows, i, 9);
      turn.input_tokens = Int64At(rows, i, 10);
      turn.output_tokens = Int64At(rows, i, 11);
      if (!PQgetisnull(rows, i, 12)) turn.cost_usd = DoubleAt(rows, i, 12);
    }
  }
  return archive;
}

absl::Status PostgresConversationStore::ImportSession(
    absl::string_view tenant, const SessionArchive& archive, bool replace) {
  if (absl::Status s = ValidateSessionArchive(archive); !s.ok()) return s;
  const SessionKey key{std::string(tenant), archive.session_id};
  absl::StatusOr<Lease> c = Acquire();
  if (!c.ok()) return c.status();
  Transaction<Lease&> txn(*c);
  if (absl::Status s = txn.Begin(); !s.ok()) return s;
  // The row lock orders this with every other writer of the session.
  absl::StatusOr<Result> locked =
      (*c)->Run("lock_session", {key.tenant, key.session_id});
  if (!locked.ok()) return locked.status();
  if (PQntuples(locked->get()) > 0) {
    if (!replace) {
      return absl::AlreadyExistsError(
          absl::StrCat("session ", key.session_id, " already exists"));
    }
    absl::StatusOr<Result> removed =
        (*c)->Run("delete_session", {key.tenant, key.session_id});
    if (!removed.ok()) return removed.status();
  }
  absl::StatusOr<Result> created = (*c)->Run(
      "create_session", {key.tenant, key.session_id, archive.system_prompt,
                         absl::StrCat(ToMicros(archive.created_at))});
  if (!created.ok()) return created.status();
  // Another replica created it since the lock_session above found none.
  if (std::string(PQcmdTuples(created->get())) != "1") {
    return absl::AlreadyExistsError(
        absl::StrCat("session ", key.session_id, " already exists"));
  }
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
    if (absl::Status s = InsertTurn(*c, key, static_cast<int64_t>(i),
                                    archived.parent_turn_id, /*depth=*/0, turn);
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<Result> finished =
      (*c)->Run("finish_import",
                {key.tenant, key.session_id, archive.title,
                 absl::StrCat(ToMicros(archive.updated_at)),
                 absl::StrCat(archive.active_turn_id),
                 absl::StrCat(BranchLength(archive, archive.active_turn_id))});
  if (!finished.ok()) return finished.status();
  return txn.Commit();
}

}  // namespace chat::store
