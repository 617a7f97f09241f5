// The SQLite and PostgreSQL stores keep the same layout: the same tables,
// columns (type and nullability) and indexes (name, columns, order). Each
// store creates its schema through its own migrations, so they drift unless
// something compares them; this test does, after opening each store on an
// empty database exactly as the server would.
//
// Strategy: read each database's own catalogue (SQLite: sqlite_schema and
// the table_info / index_list / index_xinfo pragmas; PostgreSQL:
// information_schema and pg_index), never the DDL text, and normalise both to
// one vocabulary: types become integer / text / bytes, a primary key's index
// is "(primary key)" whatever the engine names it, and each entry reads like
// "sessions.turn_count" -> "integer not null". Then the two descriptions must
// be equal, apart from the differences listed in kKnownDifferences, each of
// which is asserted as it stands so that it is changed on purpose only.
//
// Left out: each store's version bookkeeping (SQLite's user_version header
// field, PostgreSQL's chatd_schema table) and CHECK / FOREIGN KEY
// constraints.
//
// PostgreSQL comes from CHAT_TEST_POSTGRES_DSN (a fresh schema per test);
// without it the comparison is skipped, or fails under
// CHAT_TEST_REQUIRE_POSTGRES=1, like conversation_store_test.

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/postgres_store.h"
#include "server/store/sqlite_store.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/status_matchers.h"

namespace chat::store {
namespace {

using ::chat::testing::IsOk;
using ::testing::ContainerEq;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Pair;

// One database's schema, normalised.
struct Catalogue {
  std::set<std::string> tables;
  // "table.column" -> "integer not null" / "text null" / ...
  std::map<std::string, std::string> columns;
  // "table.index" -> "(col, col DESC)", "unique (col)"; the primary key's
  // index is "table.(primary key)".
  std::map<std::string, std::string> indexes;
  // Full-text search objects, engine-specific by design and so kept apart:
  // SQLite's FTS5 table and its shadow tables; PostgreSQL's tsvector column
  // and its GIN index ("table.column", "table.index").
  std::set<std::string> full_text;
};

// Whether `name` (a SQLite table, or "table.column" / "table.index" in
// PostgreSQL) belongs to full-text search.
bool IsFullText(const std::string& name) {
  return name.rfind("messages_fts", 0) == 0 || name == "messages.search" ||
         name == "messages.messages_search";
}

// Columns whose types differ on purpose, with the reason; the test checks
// each is still exactly as written here.
struct KnownDifference {
  const char* column;
  const char* sqlite;
  const char* postgres;
  const char* why;
};
constexpr KnownDifference kKnownDifferences[] = {
    {"messages.content", "text not null", "bytes not null",
     "a message may hold any bytes, NUL included: SQLite TEXT stores them "
     "(bound with their length), PostgreSQL TEXT cannot, so BYTEA"},
};

// Maps an engine's type name to the common vocabulary; anything unknown is
// kept as is (lower-cased), so a new type shows up as a difference.
std::string CommonType(std::string type) {
  type = absl::AsciiStrToLower(type);
  if (type == "integer" || type == "bigint" || type == "smallint" ||
      type == "int" || type == "int8" || type == "int4") {
    return "integer";
  }
  if (type == "text" || type == "character varying") return "text";
  if (type == "blob" || type == "bytea") return "bytes";
  if (type == "real" || type == "double precision") return "real";
  return type;
}

std::string ColumnDescription(const std::string& type, bool not_null) {
  return absl::StrCat(CommonType(type), not_null ? " not null" : " null");
}

std::string IndexDescription(bool unique,
                             const std::vector<std::string>& columns) {
  return absl::StrCat(unique ? "unique " : "", "(",
                      absl::StrJoin(columns, ", "), ")");
}

// ---- SQLite ----

// Rows of `sql` on `db`, every column as text ("" for NULL).
std::vector<std::vector<std::string>> SqliteRows(sqlite3* db,
                                                 const std::string& sql) {
  std::vector<std::vector<std::string>> rows;
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sql << ": " << sqlite3_errmsg(db);
  while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
    std::vector<std::string>& row = rows.emplace_back();
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      const unsigned char* text = sqlite3_column_text(stmt, i);
      row.emplace_back(text == nullptr ? ""
                                       : reinterpret_cast<const char*>(text));
    }
  }
  sqlite3_finalize(stmt);
  return rows;
}

Catalogue ReadSqliteCatalogue(const std::string& path) {
  Catalogue catalogue;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  // SQLite's own tables (sqlite_sequence, sqlite_stat1) are not ours.
  for (const auto& table :
       SqliteRows(db,
                  "SELECT name FROM sqlite_schema WHERE type = 'table' "
                  "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")) {
    const std::string& name = table[0];
    if (IsFullText(name)) {
      catalogue.full_text.insert(name);
      continue;
    }
    catalogue.tables.insert(name);
    // cid, name, type, notnull, dflt_value, pk. A primary key column is
    // nullable in SQLite unless declared NOT NULL, so only notnull counts.
    for (const auto& column :
         SqliteRows(db, absl::StrCat("PRAGMA table_info(", name, ")"))) {
      catalogue.columns[absl::StrCat(name, ".", column[1])] =
          ColumnDescription(column[2], column[3] == "1");
    }
    // seq, name, unique, origin ("c": CREATE INDEX, "pk", "u"), partial.
    for (const auto& index :
         SqliteRows(db, absl::StrCat("PRAGMA index_list(", name, ")"))) {
      std::vector<std::string> columns;
      // seqno, cid, name, desc, coll, key: key = 0 rows are the rowid.
      for (const auto& part :
           SqliteRows(db, absl::StrCat("PRAGMA index_xinfo(", index[1], ")"))) {
        if (part[5] != "1") continue;
        columns.push_back(part[3] == "1" ? part[2] + " DESC" : part[2]);
      }
      const bool primary = index[3] == "pk";
      catalogue.indexes[absl::StrCat(name, ".",
                                     primary ? "(primary key)" : index[1])] =
          IndexDescription(index[2] == "1" && !primary, columns);
    }
  }
  sqlite3_close_v2(db);
  return catalogue;
}

// ---- PostgreSQL ----

struct PgConnCloser {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultCloser {
  void operator()(PGresult* result) const { PQclear(result); }
};

std::vector<std::vector<std::string>> PostgresRows(PGconn* conn,
                                                   const char* sql) {
  std::vector<std::vector<std::string>> rows;
  std::unique_ptr<PGresult, PgResultCloser> result(PQexec(conn, sql));
  EXPECT_EQ(PQresultStatus(result.get()), PGRES_TUPLES_OK)
      << sql << ": " << PQerrorMessage(conn);
  for (int r = 0; r < PQntuples(result.get()); ++r) {
    std::vector<std::string>& row = rows.emplace_back();
    for (int c = 0; c < PQnfields(result.get()); ++c) {
      row.emplace_back(PQgetvalue(result.get(), r, c));
    }
  }
  return rows;
}

// The schema the conninfo's search_path names (current_schema()).
Catalogue ReadPostgresCatalogue(const std::string& conninfo) {
  Catalogue catalogue;
  std::unique_ptr<PGconn, PgConnCloser> conn(PQconnectdb(conninfo.c_str()));
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  // The store's schema version; SQLite keeps it in the file header instead.
  for (const auto& table : PostgresRows(conn.get(), R"sql(
      SELECT table_name FROM information_schema.tables
      WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
        AND table_name <> 'chatd_schema')sql")) {
    catalogue.tables.insert(table[0]);
  }
  for (const auto& column : PostgresRows(conn.get(), R"sql(
      SELECT table_name, column_name, data_type, is_nullable
      FROM information_schema.columns
      WHERE table_schema = current_schema()
        AND table_name <> 'chatd_schema')sql")) {
    const std::string name = absl::StrCat(column[0], ".", column[1]);
    if (IsFullText(name)) {
      catalogue.full_text.insert(name);
      continue;
    }
    catalogue.columns[name] = ColumnDescription(column[2], column[3] == "NO");
  }
  // pg_indexes has only the CREATE INDEX text; pg_index has the columns in
  // order and each one's direction (indoption bit 0: DESC).
  std::map<std::string, std::vector<std::string>> columns;
  std::map<std::string, bool> unique;
  for (const auto& part : PostgresRows(conn.get(), R"sql(
      SELECT t.relname, i.relname, ix.indisprimary, ix.indisunique,
             a.attname, (ix.indoption[(k.n - 1)::int] & 1) = 1
      FROM pg_index ix
      JOIN pg_class i ON i.oid = ix.indexrelid
      JOIN pg_class t ON t.oid = ix.indrelid
      JOIN pg_namespace ns ON ns.oid = t.relnamespace
      CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY
        AS k(attnum, n)
      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
      WHERE ns.nspname = current_schema() AND t.relname <> 'chatd_schema'
      ORDER BY t.relname, i.relname, k.n)sql")) {
    const bool primary = part[2] == "t";
    const std::string key =
        absl::StrCat(part[0], ".", primary ? "(primary key)" : part[1]);
    if (IsFullText(key)) {
      catalogue.full_text.insert(key);
      continue;
    }
    columns[key].push_back(part[5] == "t" ? part[4] + " DESC" : part[4]);
    unique[key] = part[3] == "t" && !primary;
  }
  for (const auto& [key, index_columns] : columns) {
    catalogue.indexes[key] = IndexDescription(unique[key], index_columns);
  }
  return catalogue;
}

// ---- Tests ----

class SchemaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "schema_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // A new SQLite file with the store's schema, read back.
  Catalogue SqliteCatalogue() {
    const std::string path = dir_ + "/chat.db";
    {
      absl::StatusOr<std::unique_ptr<SqliteConversationStore>> store =
          SqliteConversationStore::Open(path);
      EXPECT_THAT(store, IsOk());
    }
    return ReadSqliteCatalogue(path);
  }

  std::string dir_;
};

// What the normalised description looks like, on the engine that is always
// there; also shows the comparison below has something to compare.
TEST_F(SchemaTest, SqliteCatalogueReadsAsExpected) {
  const Catalogue sqlite = SqliteCatalogue();
  EXPECT_THAT(sqlite.tables,
              ElementsAre("api_keys", "idempotency_keys", "messages",
                          "quota_counters", "sessions", "stream_answers",
                          "stream_deltas", "usage_daily"));
  EXPECT_THAT(sqlite.columns,
              Contains(Pair("sessions.updated_at_us", "integer not null")));
  EXPECT_THAT(sqlite.columns, Contains(Pair("messages.model", "text null")));
  EXPECT_THAT(sqlite.indexes,
              Contains(Pair("sessions.(primary key)", "(tenant, session_id)")));
  EXPECT_THAT(sqlite.indexes,
              Contains(Pair("sessions.sessions_by_recency",
                            "(tenant, updated_at_us DESC, session_id)")));
  EXPECT_THAT(sqlite.indexes,
              Contains(Pair("sessions.sessions_by_idle", "(updated_at_us)")));
  // Schema 3: keys, counters and usage. "Never" is NULL.
  EXPECT_THAT(sqlite.columns,
              Contains(Pair("api_keys.expires_at_us", "integer null")));
  EXPECT_THAT(sqlite.columns,
              Contains(Pair("api_keys.allowed_models", "text not null")));
  EXPECT_THAT(sqlite.indexes, Contains(Pair("api_keys.(primary key)", "(id)")));
  EXPECT_THAT(sqlite.indexes, Contains(Pair("quota_counters.(primary key)",
                                            "(scope, window_start_us)")));
  EXPECT_THAT(sqlite.indexes, Contains(Pair("usage_daily.(primary key)",
                                            "(tenant, key_id, day_us)")));
  // Schema 4: costs. NULL is "no price", not 0; usage sums start at 0.
  EXPECT_THAT(sqlite.columns, Contains(Pair("sessions.cost_usd", "real null")));
  EXPECT_THAT(sqlite.columns, Contains(Pair("messages.cost_usd", "real null")));
  EXPECT_THAT(sqlite.columns,
              Contains(Pair("usage_daily.cost_usd", "real not null")));
}

TEST_F(SchemaTest, SqliteAndPostgresSchemasMatch) {
  if (::chat::testing::PostgresTestDsn().empty()) {
    if (::chat::testing::PostgresRequired()) {
      GTEST_FAIL()
          << "CHAT_TEST_REQUIRE_POSTGRES=1 but CHAT_TEST_POSTGRES_DSN is unset";
    }
    GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to compare with PostgreSQL";
  }
  absl::StatusOr<std::string> conninfo =
      ::chat::testing::MakeFreshPostgresSchema();
  ASSERT_THAT(conninfo, IsOk());
  {
    absl::StatusOr<std::unique_ptr<PostgresConversationStore>> store =
        PostgresConversationStore::Open(*conninfo);
    ASSERT_THAT(store, IsOk());
  }
  Catalogue postgres = ReadPostgresCatalogue(*conninfo);
  Catalogue sqlite = SqliteCatalogue();

  for (const KnownDifference& difference : kKnownDifferences) {
    SCOPED_TRACE(difference.why);
    EXPECT_EQ(sqlite.columns[difference.column], difference.sqlite)
        << difference.column;
    EXPECT_EQ(postgres.columns[difference.column], difference.postgres)
        << difference.column;
    sqlite.columns.erase(difference.column);
    postgres.columns.erase(difference.column);
  }
  // Full-text search is each engine's own machinery (SQLite schema 6,
  // PostgreSQL schema 5), left out of the catalogues: checked here to be
  // what each engine should have.
  EXPECT_THAT(
      sqlite.full_text,
      ElementsAre("messages_fts", "messages_fts_config", "messages_fts_data",
                  "messages_fts_docsize", "messages_fts_idx"));
  EXPECT_THAT(postgres.full_text,
              ElementsAre("messages.messages_search", "messages.search"));
  // ContainerEq names what one side has and the other lacks.
  EXPECT_THAT(sqlite.tables, ContainerEq(postgres.tables));
  EXPECT_THAT(sqlite.columns, ContainerEq(postgres.columns));
  EXPECT_THAT(sqlite.indexes, ContainerEq(postgres.indexes));
}

}  // namespace
}  // namespace chat::store
