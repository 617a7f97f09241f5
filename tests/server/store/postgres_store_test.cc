// PostgreSQL-specific behaviour of PostgresConversationStore; the contract
// itself is tested in conversation_store_test, key_store_test and
// quota_store_test. Here: a database written by an older build (schema
// version 1, before keys and counters) is migrated in place, keeping its
// rows. Needs CHAT_TEST_POSTGRES_DSN (a fresh schema per test); skipped
// without it, or failed under CHAT_TEST_REQUIRE_POSTGRES=1.

#include "server/store/postgres_store.h"

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_turns.h"

namespace chat::store {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::kT0;
using ::chat::testing::MakeTurn;
using ::testing::SizeIs;

// What a schema-1 build created, as it shipped (postgres_store.cc,
// kMigrations[0]), and recorded.
constexpr char kSchemaVersion1[] = R"sql(
CREATE TABLE chatd_schema (version INTEGER NOT NULL);
INSERT INTO chatd_schema VALUES (1);
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
INSERT INTO sessions VALUES ('acme', 'old', 'prompt', 1, 2, 1, 3, 4);
INSERT INTO messages VALUES ('acme', 'old', 0, 'user', '\x71', 1,
                             NULL, NULL, NULL, NULL);
INSERT INTO messages VALUES ('acme', 'old', 1, 'assistant', '\x61', 1,
                             'm', 'end', 3, 4);
)sql";

struct ConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct ResultCloser {
  void operator()(PGresult* result) const { PQclear(result); }
};

// The first column of every row of `sql`.
std::vector<std::string> Column(PGconn* conn, const char* sql) {
  std::unique_ptr<PGresult, ResultCloser> result(PQexec(conn, sql));
  EXPECT_EQ(PQresultStatus(result.get()), PGRES_TUPLES_OK)
      << sql << ": " << PQerrorMessage(conn);
  std::vector<std::string> values;
  for (int r = 0; r < PQntuples(result.get()); ++r) {
    values.emplace_back(PQgetvalue(result.get(), r, 0));
  }
  return values;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::chat::testing::PostgresTestDsn().empty()) {
      if (::chat::testing::PostgresRequired()) {
        GTEST_FAIL() << "CHAT_TEST_REQUIRE_POSTGRES=1 but "
                        "CHAT_TEST_POSTGRES_DSN is unset";
      }
      GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run against PostgreSQL";
    }
    absl::StatusOr<std::string> conninfo =
        ::chat::testing::MakeFreshPostgresSchema();
    ASSERT_THAT(conninfo, IsOk());
    conninfo_ = *conninfo;
    conn_.reset(PQconnectdb(conninfo_.c_str()));
    ASSERT_EQ(PQstatus(conn_.get()), CONNECTION_OK)
        << PQerrorMessage(conn_.get());
  }

  std::string conninfo_;
  std::unique_ptr<PGconn, ConnCloser> conn_;
};

TEST_F(PostgresStoreTest, MigratesVersionOneDatabaseToLatest) {
  {
    std::unique_ptr<PGresult, ResultCloser> created(
        PQexec(conn_.get(), kSchemaVersion1));
    ASSERT_EQ(PQresultStatus(created.get()), PGRES_COMMAND_OK)
        << PQerrorMessage(conn_.get());
  }
  absl::StatusOr<std::unique_ptr<PostgresConversationStore>> store =
      PostgresConversationStore::Open(conninfo_);
  ASSERT_THAT(store, IsOk());

  EXPECT_THAT(Column(conn_.get(), "SELECT version FROM chatd_schema"),
              ::testing::ElementsAre(absl::StrCat(kPostgresSchemaVersion)));
  EXPECT_THAT(Column(conn_.get(), "SELECT COUNT(*) FROM api_keys"),
              ::testing::ElementsAre("0"));
  EXPECT_THAT(Column(conn_.get(), "SELECT COUNT(*) FROM quota_counters"),
              ::testing::ElementsAre("0"));
  EXPECT_THAT(Column(conn_.get(), "SELECT COUNT(*) FROM usage_daily"),
              ::testing::ElementsAre("0"));
  // The rows written before are still there and usable, and the new tables
  // work.
  absl::StatusOr<std::vector<StoredMessage>> history =
      (*store)->LoadHistory({"acme", "old"});
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(*history, SizeIs(2));
  EXPECT_THAT(
      (*store)->AppendTurn({"acme", "old"}, 1, "", MakeTurn("q", "a", kT0)),
      IsOk());
  ApiKey key;
  key.id = "k1";
  key.tenant = "acme";
  key.created_at = kT0;
  EXPECT_THAT((*store)->keys().CreateKey(key), IsOk());
  EXPECT_THAT((*store)->quotas().Charge({"rpm/k1", kT0}, 1, 1), IsOk());

  // Opening an up-to-date database again changes nothing.
  store->reset();
  ASSERT_THAT(PostgresConversationStore::Open(conninfo_), IsOk());
  EXPECT_THAT(Column(conn_.get(), "SELECT version FROM chatd_schema"),
              ::testing::ElementsAre(absl::StrCat(kPostgresSchemaVersion)));
  EXPECT_THAT(Column(conn_.get(), "SELECT COUNT(*) FROM api_keys"),
              ::testing::ElementsAre("1"));
}

// Schema 5 indexes the messages already stored for search (a generated
// column is filled as it is added), including one that holds a NUL byte and
// is not UTF-8, which must not make the migration fail; sessions from
// before have no title.
TEST_F(PostgresStoreTest, MigrationIndexesExistingMessagesForSearch) {
  {
    std::unique_ptr<PGresult, ResultCloser> created(
        PQexec(conn_.get(), absl::StrCat(kSchemaVersion1, R"sql(
INSERT INTO messages VALUES ('acme', 'old', 2, 'user',
  convert_to('where is the lighthouse', 'UTF8'), 1, NULL, NULL, NULL, NULL);
INSERT INTO messages VALUES ('acme', 'old', 3, 'assistant',
  '\x6c69676874686f75736500ff', 1, 'm', 'end', 3, 4);
INSERT INTO sessions VALUES ('globex', 'other', 'prompt', 1, 2, 1, 3, 4);
INSERT INTO messages VALUES ('globex', 'other', 0, 'user',
  convert_to('a lighthouse too', 'UTF8'), 1, NULL, NULL, NULL, NULL);
)sql")
                                .c_str()));
    ASSERT_EQ(PQresultStatus(created.get()), PGRES_COMMAND_OK)
        << PQerrorMessage(conn_.get());
  }
  absl::StatusOr<std::unique_ptr<PostgresConversationStore>> store =
      PostgresConversationStore::Open(conninfo_);
  ASSERT_THAT(store, IsOk());
  absl::StatusOr<SearchPage> page =
      (*store)->SearchMessages("acme", "lighthouse", 10, "");
  ASSERT_THAT(page, IsOk());
  // Both acme messages, the one that is not UTF-8 read as escaped text;
  // never globex's.
  std::vector<int64_t> indexes;
  for (const SearchHit& hit : page->hits) {
    EXPECT_EQ(hit.session_id, "old");
    EXPECT_THAT(hit.snippet, ::testing::HasSubstr(absl::StrCat(
                                 kMatchStart, "lighthouse", kMatchEnd)));
    indexes.push_back(hit.message_index);
  }
  EXPECT_THAT(indexes, ::testing::UnorderedElementsAre(2, 3));
  absl::StatusOr<SessionInfo> info = (*store)->GetSession({"acme", "old"});
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->title, "");
}

// Schema 2 as it shipped (kMigrations[1]): with kSchemaVersion1 first, a
// database of version 2, the one before costs.
constexpr char kSchemaVersion2Step[] = R"sql(
UPDATE chatd_schema SET version = 2;
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
INSERT INTO usage_daily VALUES ('acme', 'k1', 0, 1, 3, 4);
)sql";

// Schema 3 adds costs: rows from before have none (NULL, or 0 in the usage
// sums), and turns stored after have theirs.
TEST_F(PostgresStoreTest, MigratesVersionTwoDatabaseToCosts) {
  for (const char* sql : {kSchemaVersion1, kSchemaVersion2Step}) {
    std::unique_ptr<PGresult, ResultCloser> created(PQexec(conn_.get(), sql));
    ASSERT_EQ(PQresultStatus(created.get()), PGRES_COMMAND_OK)
        << PQerrorMessage(conn_.get());
  }
  absl::StatusOr<std::unique_ptr<PostgresConversationStore>> store =
      PostgresConversationStore::Open(conninfo_);
  ASSERT_THAT(store, IsOk());
  EXPECT_THAT(Column(conn_.get(), "SELECT version FROM chatd_schema"),
              ::testing::ElementsAre(absl::StrCat(kPostgresSchemaVersion)));
  EXPECT_THAT(Column(conn_.get(),
                     "SELECT COALESCE(cost_usd::text, 'NULL') "
                     "FROM messages WHERE seq = 1"),
              ::testing::ElementsAre("NULL"));

  absl::StatusOr<StoreStats> stats = (*store)->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, std::nullopt);
  absl::StatusOr<std::vector<UsageTotals>> usage = (*store)->quotas().GetUsage(
      "acme", "", absl::UnixEpoch(), kT0 + absl::Hours(24));
  ASSERT_THAT(usage, IsOk());
  ASSERT_THAT(*usage, SizeIs(1));
  EXPECT_EQ((*usage)[0].cost_usd, 0.0);

  Turn priced = MakeTurn("q2", "a2", kT0, 10, 2);
  priced.cost_usd = 0.25;
  ASSERT_THAT((*store)->AppendTurn({"acme", "old"}, 1, "", priced), IsOk());
  EXPECT_THAT(
      Column(conn_.get(), "SELECT cost_usd FROM messages WHERE seq = 3"),
      ::testing::ElementsAre("0.25"));
  stats = (*store)->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, 0.25);
}

// Schema 6 adds branches: a linear history from before becomes one branch,
// turn n+1 under turn n, the last one active, and edits start new ones.
TEST_F(PostgresStoreTest, MigratesLinearHistoriesToOneBranch) {
  for (const char* sql : {kSchemaVersion1, kSchemaVersion2Step,
                          R"sql(
INSERT INTO messages VALUES ('acme', 'old', 2, 'user', '\x7132', 2,
                             NULL, NULL, NULL, NULL);
INSERT INTO messages VALUES ('acme', 'old', 3, 'assistant', '\x6132', 2,
                             'm', 'end', 3, 4);
UPDATE sessions SET turn_count = 2;
)sql"}) {
    std::unique_ptr<PGresult, ResultCloser> created(PQexec(conn_.get(), sql));
    ASSERT_EQ(PQresultStatus(created.get()), PGRES_COMMAND_OK)
        << PQerrorMessage(conn_.get());
  }
  absl::StatusOr<std::unique_ptr<PostgresConversationStore>> store =
      PostgresConversationStore::Open(conninfo_);
  ASSERT_THAT(store, IsOk());
  EXPECT_THAT(Column(conn_.get(),
                     "SELECT seq || ' ' || turn_id || ' ' || parent_turn_id "
                     "FROM messages ORDER BY seq"),
              ::testing::ElementsAre("0 1 0", "1 1 0", "2 2 1", "3 2 1"));
  EXPECT_THAT(Column(conn_.get(),
                     "SELECT active_turn_id || ' ' || stored_turns "
                     "FROM sessions"),
              ::testing::ElementsAre("2 2"));
  const SessionKey key{"acme", "old"};
  absl::StatusOr<std::vector<StoredMessage>> history =
      (*store)->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(4));
  EXPECT_EQ((*history)[2].content, "q2");
  EXPECT_EQ((*history)[2].turn_id, 2);
  EXPECT_THAT((*history)[2].sibling_turn_ids, ::testing::ElementsAre(2));
  // The optimistic check still counts the carried-over turns.
  EXPECT_THAT((*store)->AppendTurn(key, 1, "", MakeTurn("x", "y", kT0)),
              ::chat::testing::StatusIs(absl::StatusCode::kAborted));
  ASSERT_THAT((*store)->AppendTurn(key, 2, "", MakeTurn("q3", "a3", kT0)),
              IsOk());
  absl::StatusOr<StoredTurn> edited =
      (*store)->AppendBranchTurn(key, 1, MakeTurn("e2", "f2", kT0));
  ASSERT_THAT(edited, IsOk());
  EXPECT_EQ(edited->turn_id, 4);
  EXPECT_EQ(edited->turn_count, 2);
}

}  // namespace
}  // namespace chat::store
