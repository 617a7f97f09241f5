// Tests of what only the SQLite store has: a file that outlives the process,
// its schema version and migrations, its journal and durability settings,
// atomicity when a write fails halfway, and the prepared statements each
// connection keeps. The shared contract is covered by
// conversation_store_test.cc. Each test works in its own temporary directory
// and inspects the file through a second, raw sqlite3 connection, as another
// process would see it; the statement tests look at the store's own
// connections, caught as SQLite opens them (ConnectionSpy).

#include "server/store/sqlite_store.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/conversation_store.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_turns.h"

namespace chat::store {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::kT0;
using ::chat::testing::MakeTurn;
using ::chat::testing::StatusIs;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Records every connection SQLite opens in this process while one exists, so
// a test can look at the store's own connections (the statements prepared on
// them, their counters) without the store offering an accessor. An automatic
// extension is SQLite's hook that runs on every sqlite3_open_v2().
class ConnectionSpy {
 public:
  ConnectionSpy() {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(current_, nullptr);
    current_ = this;
    // void(*)(void) is how SQLite takes any entry point.
    sqlite3_auto_extension(reinterpret_cast<void (*)(void)>(&Record));
  }
  ConnectionSpy(const ConnectionSpy&) = delete;
  ConnectionSpy& operator=(const ConnectionSpy&) = delete;
  ~ConnectionSpy() { Stop(); }

  // Stops recording; connections() keeps what was recorded.
  void Stop() {
    sqlite3_cancel_auto_extension(reinterpret_cast<void (*)(void)>(&Record));
    absl::MutexLock lock(&mu_);
    if (current_ == this) current_ = nullptr;
  }

  // In the order they were opened.
  std::vector<sqlite3*> connections() const {
    absl::MutexLock lock(&mu_);
    return connections_;
  }

 private:
  static int Record(sqlite3* db, char** /*error*/,
                    const sqlite3_api_routines* /*api*/) {
    absl::MutexLock lock(&mu_);
    if (current_ != nullptr) current_->connections_.push_back(db);
    return SQLITE_OK;
  }

  static absl::Mutex mu_;
  static ConnectionSpy* current_ ABSL_GUARDED_BY(mu_);
  std::vector<sqlite3*> connections_ ABSL_GUARDED_BY(mu_);
};
absl::Mutex ConnectionSpy::mu_;
ConnectionSpy* ConnectionSpy::current_ = nullptr;

// A prepared statement as seen from outside: which connection, which SQL, and
// how often it has run.
struct StatementInfo {
  sqlite3* db;
  sqlite3_stmt* stmt;
  std::string sql;
  int runs;
  int reprepares;
  bool busy;  // Mid-way through a run: not reset.
};

// Every statement currently prepared on `connections`.
std::vector<StatementInfo> PreparedStatements(
    const std::vector<sqlite3*>& connections) {
  std::vector<StatementInfo> statements;
  for (sqlite3* db : connections) {
    for (sqlite3_stmt* stmt = sqlite3_next_stmt(db, nullptr); stmt != nullptr;
         stmt = sqlite3_next_stmt(db, stmt)) {
      // FTS5 prepares and keeps statements of its own (on its shadow tables
      // and the content table, names written as 'main'.'table') as its
      // index first needs them: not the store's.
      if (absl::StrContains(sqlite3_sql(stmt), "'main'.")) continue;
      statements.push_back(
          {db, stmt, sqlite3_sql(stmt),
           sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_RUN, /*reset=*/0),
           sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_REPREPARE, 0),
           sqlite3_stmt_busy(stmt) != 0});
    }
  }
  return statements;
}

// One use of every ConversationStore method, on session `id`.
void UseEveryMethod(ConversationStore& store, int id) {
  const SessionKey key{"acme", absl::StrCat("s", id)};
  ASSERT_THAT(store.AppendTurn(key, 0, "prompt", MakeTurn("q", "a", kT0)),
              IsOk());
  ASSERT_THAT(store.AppendTurn(key, 1, "", MakeTurn("q2", "a2", kT0)), IsOk());
  ASSERT_THAT(store.GetSession(key), IsOk());
  ASSERT_THAT(store.LoadHistory(key), IsOk());
  absl::StatusOr<SessionPage> page = store.ListSessions("acme", 1, "");
  ASSERT_THAT(page, IsOk());
  ASSERT_THAT(store.ListSessions("acme", 1, page->next_page_token), IsOk());
  ASSERT_THAT(store.GetStats("acme"), IsOk());
  ASSERT_THAT(store.SetTitle(key, "title", false), IsOk());
  ASSERT_THAT(store.SetTitle(key, "title", true), IsOk());
  ASSERT_THAT(store.SearchMessages("acme", "q", 10, ""), IsOk());
  ASSERT_THAT(store.ResetSession(key, kT0), IsOk());
  ASSERT_THAT(store.DeleteSession(key), IsOk());
  ASSERT_THAT(store.DeleteSessionsIdleSince(kT0 - absl::Hours(1)), IsOk());
}

// The schema 1 DDL exactly as it shipped, to make files of that version.
constexpr char kSchemaVersion1[] = R"sql(
CREATE TABLE sessions (
  tenant        TEXT    NOT NULL,
  session_id    TEXT    NOT NULL,
  system_prompt TEXT    NOT NULL,
  created_at_us INTEGER NOT NULL,
  updated_at_us INTEGER NOT NULL,
  turn_count    INTEGER NOT NULL,
  input_tokens  INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  PRIMARY KEY (tenant, session_id)
);
CREATE INDEX sessions_by_recency
  ON sessions (tenant, updated_at_us DESC, session_id);
CREATE TABLE messages (
  tenant        TEXT    NOT NULL,
  session_id    TEXT    NOT NULL,
  seq           INTEGER NOT NULL,
  role          TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
  content       TEXT    NOT NULL,
  created_at_us INTEGER NOT NULL,
  model         TEXT,
  stop_reason   TEXT,
  input_tokens  INTEGER,
  output_tokens INTEGER,
  PRIMARY KEY (tenant, session_id, seq),
  FOREIGN KEY (tenant, session_id) REFERENCES sessions (tenant, session_id)
    ON DELETE CASCADE
);
PRAGMA user_version = 1;
)sql";

// Schema 2 and 3 exactly as they shipped (kMigrations[1] and [2]): with
// kSchemaVersion1 first, a file of version 3, the one before costs.
constexpr char kSchemaVersion3Steps[] = R"sql(
CREATE INDEX sessions_by_idle ON sessions (updated_at_us);
CREATE TABLE api_keys (
  id                  TEXT    NOT NULL PRIMARY KEY,
  tenant              TEXT    NOT NULL,
  name                TEXT    NOT NULL,
  secret_hash         TEXT    NOT NULL,
  created_at_us       INTEGER NOT NULL,
  expires_at_us       INTEGER,
  revoked_at_us       INTEGER,
  requests_per_minute INTEGER NOT NULL,
  tokens_per_minute   INTEGER NOT NULL,
  max_streams         INTEGER NOT NULL,
  max_tokens          INTEGER NOT NULL,
  allowed_models      TEXT    NOT NULL,
  budget_tokens       INTEGER NOT NULL,
  budget_period       TEXT    NOT NULL
    CHECK (budget_period IN ('', 'day', 'month'))
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at_us, id);
CREATE TABLE quota_counters (
  scope           TEXT    NOT NULL,
  window_start_us INTEGER NOT NULL,
  used            INTEGER NOT NULL,
  PRIMARY KEY (scope, window_start_us)
);
CREATE INDEX quota_counters_by_window ON quota_counters (window_start_us);
CREATE TABLE usage_daily (
  tenant        TEXT    NOT NULL,
  key_id        TEXT    NOT NULL,
  day_us        INTEGER NOT NULL,
  calls         INTEGER NOT NULL,
  input_tokens  INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  PRIMARY KEY (tenant, key_id, day_us)
);
PRAGMA user_version = 3;
)sql";

// A second connection to the store's file, for looking behind the interface.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(
        sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
        SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close_v2(db_); }

  void Exec(const std::string& sql) {
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error),
              SQLITE_OK)
        << sql << ": " << (error ? error : "");
    sqlite3_free(error);
  }

  // Column `column` of each row of `sql`, as text.
  std::vector<std::string> Column(const std::string& sql, int column = 0) {
    std::vector<std::string> values;
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr),
              SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_);
    while (stmt != nullptr && sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, column);
      values.emplace_back(text ? reinterpret_cast<const char*>(text) : "NULL");
    }
    sqlite3_finalize(stmt);
    return values;
  }

  std::string Value(const std::string& sql) {
    std::vector<std::string> values = Column(sql);
    EXPECT_THAT(values, SizeIs(1)) << sql;
    return values.empty() ? "" : values[0];
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "sqlite_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/chat.db";
  }

  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<SqliteConversationStore> OpenOrDie(const std::string& path) {
    absl::StatusOr<std::unique_ptr<SqliteConversationStore>> store =
        SqliteConversationStore::Open(path);
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(SqliteStoreTest, DataSurvivesClosingAndReopening) {
  {
    std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
    ASSERT_NE(store, nullptr);
    ASSERT_THAT(store->AppendTurn({"acme", "s1"}, 0, "prompt",
                                  MakeTurn("one", "1", kT0, 3, 4)),
                IsOk());
    ASSERT_THAT(
        store->AppendTurn({"acme", "s1"}, 1, "",
                          MakeTurn("two", "2", kT0 + absl::Seconds(1), 5, 6)),
        IsOk());
    ASSERT_THAT(
        store->AppendTurn({"acme", "s2"}, 0, "other", MakeTurn("x", "y", kT0)),
        IsOk());
  }

  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<SessionInfo> info = store->GetSession({"acme", "s1"});
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->system_prompt, "prompt");
  EXPECT_EQ(info->turn_count, 2);
  EXPECT_EQ(info->created_at, kT0);
  EXPECT_EQ(info->updated_at, kT0 + absl::Seconds(1));
  absl::StatusOr<std::vector<StoredMessage>> history =
      store->LoadHistory({"acme", "s1"});
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(4));
  EXPECT_EQ((*history)[2].content, "two");
  absl::StatusOr<StoreStats> stats = store->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 2);
  EXPECT_EQ(stats->total_messages, 6);
  EXPECT_EQ(stats->total_input_tokens, 8);
  EXPECT_EQ(stats->total_output_tokens, 10);
  // And it goes on where it stopped.
  EXPECT_THAT(
      store->AppendTurn({"acme", "s1"}, 2, "", MakeTurn("three", "3", kT0)),
      IsOk());
}

TEST_F(SqliteStoreTest, CreatesMissingDirectories) {
  const std::string path = dir_ + "/a/b/c/chat.db";
  ASSERT_NE(OpenOrDie(path), nullptr);
  EXPECT_TRUE(std::filesystem::is_directory(dir_ + "/a/b/c"));
  EXPECT_TRUE(std::filesystem::exists(path));
}

TEST_F(SqliteStoreTest, UnusableDirectoryIsUnavailable) {
  // A regular file where a directory should be.
  std::ofstream(dir_ + "/file") << "x";
  EXPECT_THAT(SqliteConversationStore::Open(dir_ + "/file/sub/chat.db"),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(SqliteStoreTest, FileThatIsNotADatabaseIsRefused) {
  std::ofstream(path_) << std::string(4096, 'x');
  absl::StatusOr<std::unique_ptr<SqliteConversationStore>> store =
      SqliteConversationStore::Open(path_);
  EXPECT_FALSE(store.ok());
}

TEST_F(SqliteStoreTest, OpenMigratesToLatestSchemaVersion) {
  ASSERT_NE(OpenOrDie(path_), nullptr);
  RawDb raw(path_);
  EXPECT_EQ(raw.Value("PRAGMA user_version"),
            absl::StrCat(kSqliteSchemaVersion));
  EXPECT_THAT(
      raw.Column("SELECT name FROM sqlite_schema WHERE type = 'table' "
                 "ORDER BY name"),
      ::testing::ElementsAre("api_keys", "idempotency_keys", "messages",
                             // FTS5's table and its shadow tables.
                             "messages_fts", "messages_fts_config",
                             "messages_fts_data", "messages_fts_docsize",
                             "messages_fts_idx", "quota_counters", "sessions",
                             "stream_answers", "stream_deltas", "usage_daily"));
  // Opening an up-to-date file again changes nothing.
  ASSERT_NE(OpenOrDie(path_), nullptr);
  EXPECT_EQ(raw.Value("PRAGMA user_version"),
            absl::StrCat(kSqliteSchemaVersion));
}

TEST_F(SqliteStoreTest, MigratesVersionOneFileToLatest) {
  {
    RawDb raw(path_);
    raw.Exec(kSchemaVersion1);
    raw.Exec(R"sql(
        INSERT INTO sessions VALUES ('acme', 'old', 'prompt', 1, 2, 1, 3, 4);
        INSERT INTO messages VALUES ('acme', 'old', 0, 'user', 'q', 1,
                                     NULL, NULL, NULL, NULL);
        INSERT INTO messages VALUES ('acme', 'old', 1, 'assistant', 'a', 1,
                                     'm', 'end', 3, 4);)sql");
  }
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);

  RawDb raw(path_);
  EXPECT_EQ(raw.Value("PRAGMA user_version"),
            absl::StrCat(kSqliteSchemaVersion));
  EXPECT_THAT(raw.Column("PRAGMA index_list(sessions)", /*column=*/1),
              Contains("sessions_by_idle"));
  EXPECT_THAT(raw.Column("PRAGMA index_info(sessions_by_idle)", 2),
              ElementsAre("updated_at_us"));
  // Schema 3: the key, counter and usage tables, empty.
  EXPECT_EQ(raw.Value("SELECT COUNT(*) FROM api_keys"), "0");
  EXPECT_EQ(raw.Value("SELECT COUNT(*) FROM quota_counters"), "0");
  EXPECT_EQ(raw.Value("SELECT COUNT(*) FROM usage_daily"), "0");
  // The rows written before are still there and usable.
  absl::StatusOr<std::vector<StoredMessage>> history =
      store->LoadHistory({"acme", "old"});
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(*history, SizeIs(2));
  EXPECT_THAT(
      store->AppendTurn({"acme", "old"}, 1, "", MakeTurn("q", "a", kT0)),
      IsOk());
}

// Schema 6 indexes the messages already stored for search (the FTS5 table
// is rebuilt from them), and later writes keep it in step; sessions from
// before have no title.
TEST_F(SqliteStoreTest, MigrationIndexesExistingMessagesForSearch) {
  {
    RawDb raw(path_);
    raw.Exec(kSchemaVersion1);
    raw.Exec(R"sql(
        INSERT INTO sessions VALUES ('acme', 'old', 'prompt', 1, 2, 1, 3, 4);
        INSERT INTO messages VALUES ('acme', 'old', 0, 'user',
                                     'where is the lighthouse', 1,
                                     NULL, NULL, NULL, NULL);
        INSERT INTO messages VALUES ('acme', 'old', 1, 'assistant',
                                     'by the sea', 1, 'm', 'end', 3, 4);
        INSERT INTO sessions VALUES ('globex', 'g', 'prompt', 1, 2, 1, 3, 4);
        INSERT INTO messages VALUES ('globex', 'g', 0, 'user',
                                     'another lighthouse', 1,
                                     NULL, NULL, NULL, NULL);)sql");
  }
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<SearchPage> page =
      store->SearchMessages("acme", "lighthouse", 10, "");
  ASSERT_THAT(page, IsOk());
  ASSERT_THAT(page->hits, SizeIs(1));
  EXPECT_EQ(page->hits[0].session_id, "old");
  EXPECT_EQ(page->hits[0].message_index, 0);
  absl::StatusOr<SessionInfo> info = store->GetSession({"acme", "old"});
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->title, "");
  // Deleting the session takes its messages out of the index too.
  ASSERT_THAT(store->DeleteSession({"acme", "old"}), IsOk());
  page = store->SearchMessages("acme", "lighthouse", 10, "");
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->hits, ::testing::IsEmpty());
  RawDb raw(path_);
  // The index agrees with the messages table.
  raw.Exec(
      "INSERT INTO messages_fts (messages_fts) "
      "VALUES ('integrity-check')");
}

// Schema 4 adds costs: rows from before have none (NULL, or 0 in the usage
// sums), and turns stored after have theirs.
TEST_F(SqliteStoreTest, MigratesVersionThreeFileToCosts) {
  {
    RawDb raw(path_);
    raw.Exec(kSchemaVersion1);
    raw.Exec(kSchemaVersion3Steps);
    raw.Exec(R"sql(
        INSERT INTO sessions VALUES ('acme', 'old', 'prompt', 1, 2, 1, 3, 4);
        INSERT INTO messages VALUES ('acme', 'old', 0, 'user', 'q', 1,
                                     NULL, NULL, NULL, NULL);
        INSERT INTO messages VALUES ('acme', 'old', 1, 'assistant', 'a', 1,
                                     'm', 'end', 3, 4);
        INSERT INTO usage_daily VALUES ('acme', 'k1', 0, 1, 3, 4);)sql");
  }
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);
  RawDb raw(path_);
  EXPECT_EQ(raw.Value("PRAGMA user_version"),
            absl::StrCat(kSqliteSchemaVersion));
  EXPECT_EQ(raw.Value("SELECT quote(cost_usd) FROM messages WHERE seq = 1"),
            "NULL");

  absl::StatusOr<StoreStats> stats = store->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, std::nullopt);
  EXPECT_EQ(stats->total_output_tokens, 4);
  absl::StatusOr<std::vector<UsageTotals>> usage = store->quotas().GetUsage(
      "acme", "", absl::UnixEpoch(), kT0 + absl::Hours(24));
  ASSERT_THAT(usage, IsOk());
  ASSERT_THAT(*usage, SizeIs(1));
  EXPECT_EQ((*usage)[0].cost_usd, 0.0);
  EXPECT_EQ((*usage)[0].output_tokens, 4);

  Turn priced = MakeTurn("q2", "a2", kT0, 10, 2);
  priced.cost_usd = 0.25;
  ASSERT_THAT(store->AppendTurn({"acme", "old"}, 1, "", priced), IsOk());
  EXPECT_EQ(raw.Value("SELECT cost_usd FROM messages WHERE seq = 3"), "0.25");
  stats = store->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, 0.25);
}

// Schema 7 adds branches: a linear history from before becomes one branch,
// turn n+1 under turn n, the last one active, and edits start new ones.
TEST_F(SqliteStoreTest, MigratesLinearHistoriesToOneBranch) {
  {
    RawDb raw(path_);
    raw.Exec(kSchemaVersion1);
    raw.Exec(kSchemaVersion3Steps);
    raw.Exec(R"sql(
        INSERT INTO sessions VALUES ('acme', 'old', 'prompt', 1, 2, 2, 3, 4);
        INSERT INTO messages VALUES ('acme', 'old', 0, 'user', 'q1', 1,
                                     NULL, NULL, NULL, NULL);
        INSERT INTO messages VALUES ('acme', 'old', 1, 'assistant', 'a1', 1,
                                     'm', 'end', 3, 4);
        INSERT INTO messages VALUES ('acme', 'old', 2, 'user', 'q2', 2,
                                     NULL, NULL, NULL, NULL);
        INSERT INTO messages VALUES ('acme', 'old', 3, 'assistant', 'a2', 2,
                                     'm', 'end', 3, 4);)sql");
  }
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);
  RawDb raw(path_);
  EXPECT_THAT(raw.Column("SELECT seq || ' ' || turn_id || ' ' || "
                         "parent_turn_id FROM messages ORDER BY seq"),
              ElementsAre("0 1 0", "1 1 0", "2 2 1", "3 2 1"));
  EXPECT_EQ(raw.Value("SELECT active_turn_id || ' ' || stored_turns "
                      "FROM sessions"),
            "2 2");
  const SessionKey key{"acme", "old"};
  absl::StatusOr<std::vector<StoredMessage>> history = store->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(4));
  EXPECT_EQ((*history)[2].content, "q2");
  EXPECT_EQ((*history)[2].turn_id, 2);
  EXPECT_THAT((*history)[2].sibling_turn_ids, ElementsAre(2));
  // The optimistic check still counts the carried-over turns.
  EXPECT_THAT(store->AppendTurn(key, 1, "", MakeTurn("x", "y", kT0)),
              ::chat::testing::StatusIs(absl::StatusCode::kAborted));
  ASSERT_THAT(store->AppendTurn(key, 2, "", MakeTurn("q3", "a3", kT0)), IsOk());
  absl::StatusOr<StoredTurn> edited =
      store->AppendBranchTurn(key, 1, MakeTurn("e2", "f2", kT0));
  ASSERT_THAT(edited, IsOk());
  EXPECT_EQ(edited->turn_id, 4);
  EXPECT_EQ(edited->turn_count, 2);
  EXPECT_EQ(raw.Value("SELECT seq FROM messages WHERE turn_id = 4 AND "
                      "role = 'assistant'"),
            "7");
}

TEST_F(SqliteStoreTest, IdleSweepSearchesTheIdleIndex) {
  std::unique_ptr<SqliteConversationStore> store;
  std::vector<sqlite3*> connections;
  {
    ConnectionSpy spy;
    store = OpenOrDie(path_);
    ASSERT_NE(store, nullptr);
    connections = spy.connections();
  }
  ASSERT_THAT(connections, ::testing::Not(IsEmpty()));
  sqlite3* const writer = connections.front();  // Opened first.
  {
    // The statement DeleteSessionsIdleSince runs, planned on the file.
    RawDb raw(path_);
    EXPECT_THAT(
        raw.Column("EXPLAIN QUERY PLAN DELETE FROM sessions "
                   "WHERE updated_at_us < 100",
                   /*column=*/3),
        ElementsAre(HasSubstr("INDEX sessions_by_idle (updated_at_us<?)")));
  }

  // And the statement the store ran never scanned the table: with 200
  // sessions, 100 of them idle, a scan would have stepped through them all.
  for (int i = 0; i < 200; ++i) {
    ASSERT_THAT(
        store->AppendTurn({absl::StrCat("t", i % 7), absl::StrCat(i)}, 0, "",
                          MakeTurn("q", "a", absl::FromUnixMicros(i))),
        IsOk());
  }
  absl::StatusOr<int64_t> deleted =
      store->DeleteSessionsIdleSince(absl::FromUnixMicros(100));
  ASSERT_THAT(deleted, IsOk());
  EXPECT_EQ(*deleted, 100);
  int sweeps = 0;
  for (const StatementInfo& statement : PreparedStatements({writer})) {
    if (!absl::StrContains(statement.sql, "updated_at_us < ?1")) continue;
    ++sweeps;
    EXPECT_EQ(
        sqlite3_stmt_status(statement.stmt, SQLITE_STMTSTATUS_FULLSCAN_STEP, 0),
        0)
        << statement.sql;
  }
  EXPECT_EQ(sweeps, 1);
}

TEST_F(SqliteStoreTest, RefusesSchemaNewerThanThisBuild) {
  {
    RawDb raw(path_);
    raw.Exec(absl::StrCat("PRAGMA user_version = ", kSqliteSchemaVersion + 1));
  }
  EXPECT_THAT(SqliteConversationStore::Open(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("newer than this build")));
  // The file was not touched.
  RawDb raw(path_);
  EXPECT_EQ(raw.Value("PRAGMA user_version"),
            absl::StrCat(kSqliteSchemaVersion + 1));
  EXPECT_EQ(raw.Value("SELECT COUNT(*) FROM sqlite_schema"), "0");
}

TEST_F(SqliteStoreTest, UsesWriteAheadLog) {
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);
  RawDb raw(path_);
  // journal_mode=WAL is a property of the file, seen by every connection.
  EXPECT_EQ(raw.Value("PRAGMA journal_mode"), "wal");
}

TEST_F(SqliteStoreTest, StoresOneRowPerMessage) {
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->AppendTurn({"acme", "s1"}, 0, "prompt",
                                MakeTurn("one", "1", kT0, 3, 4)),
              IsOk());
  ASSERT_THAT(
      store->AppendTurn({"acme", "s1"}, 1, "", MakeTurn("two", "2", kT0, 5, 6)),
      IsOk());
  RawDb raw(path_);
  EXPECT_THAT(
      raw.Column("SELECT seq || ' ' || role || ' ' || content || ' ' "
                 "|| COALESCE(model, '-') || ' ' || "
                 "COALESCE(input_tokens, '-') FROM messages "
                 "ORDER BY seq"),
      ::testing::ElementsAre("0 user one - -", "1 assistant 1 test-model 3",
                             "2 user two - -", "3 assistant 2 test-model 5"));
  EXPECT_EQ(raw.Value("SELECT turn_count || ' ' || input_tokens || ' ' || "
                      "output_tokens FROM sessions"),
            "2 8 10");
}

TEST_F(SqliteStoreTest, FailedAppendLeavesNothingHalfWritten) {
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);
  ASSERT_THAT(store->AppendTurn({"acme", "s1"}, 0, "prompt",
                                MakeTurn("one", "1", kT0, 3, 4)),
              IsOk());
  {
    // Fail the second INSERT of a turn, after the user message went in.
    RawDb raw(path_);
    raw.Exec(R"sql(
        CREATE TRIGGER poison BEFORE INSERT ON messages
        WHEN NEW.content = 'poison'
        BEGIN SELECT RAISE(ABORT, 'poisoned'); END)sql");
  }
  EXPECT_THAT(store->AppendTurn({"acme", "s1"}, 1, "",
                                MakeTurn("two", "poison", kT0, 5, 6)),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("poisoned")));
  // Nor for a session the failed append would have created.
  EXPECT_THAT(store->AppendTurn({"acme", "s2"}, 0, "",
                                MakeTurn("new", "poison", kT0, 5, 6)),
              StatusIs(absl::StatusCode::kInternal));

  EXPECT_THAT(store->GetSession({"acme", "s2"}),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<std::vector<StoredMessage>> history =
      store->LoadHistory({"acme", "s1"});
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(*history, SizeIs(2));
  absl::StatusOr<SessionInfo> info = store->GetSession({"acme", "s1"});
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->turn_count, 1);
  absl::StatusOr<StoreStats> stats = store->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_input_tokens, 3);
  // The connection is usable afterwards: no transaction was left open.
  EXPECT_THAT(
      store->AppendTurn({"acme", "s1"}, 1, "", MakeTurn("two", "2", kT0, 5, 6)),
      IsOk());
}

// Turns queued behind a busy database are written together, in one
// transaction; one of them failing halfway must not take the others with it,
// nor leave half of itself behind.
TEST_F(SqliteStoreTest, AFailingTurnInABatchFailsAlone) {
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  ASSERT_NE(store, nullptr);
  RawDb raw(path_);
  raw.Exec(R"sql(
      CREATE TRIGGER poison BEFORE INSERT ON messages
      WHEN NEW.content = 'poison'
      BEGIN SELECT RAISE(ABORT, 'poisoned'); END)sql");
  // Holds the write lock while the appends queue up behind the first.
  raw.Exec("BEGIN IMMEDIATE");
  constexpr int kTurns = 16;
  constexpr int kPoisoned = 7;
  std::vector<absl::StatusOr<StoredTurn>> results(kTurns,
                                                  absl::UnknownError(""));
  absl::Mutex mu;
  int started = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kTurns; ++i) {
    threads.emplace_back([&, i] {
      {
        absl::MutexLock lock(&mu);
        ++started;
      }
      results[i] = store->AppendTurn(
          {"acme", absl::StrCat("s", i)}, 0, "prompt",
          MakeTurn(absl::StrCat("q", i), i == kPoisoned ? "poison" : "a", kT0));
    });
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* n) { return *n == kTurns; }, &started));
  }
  raw.Exec("COMMIT");
  for (std::thread& thread : threads) thread.join();

  for (int i = 0; i < kTurns; ++i) {
    const SessionKey key{"acme", absl::StrCat("s", i)};
    if (i == kPoisoned) {
      EXPECT_THAT(results[i], StatusIs(absl::StatusCode::kInternal));
      EXPECT_THAT(store->GetSession(key),
                  StatusIs(absl::StatusCode::kNotFound));
      continue;
    }
    ASSERT_THAT(results[i], IsOk()) << i;
    EXPECT_EQ(results[i]->turn_id, 1) << i;
    EXPECT_EQ(results[i]->turn_count, 1) << i;
    absl::StatusOr<std::vector<StoredMessage>> history =
        store->LoadHistory(key);
    ASSERT_THAT(history, IsOk());
    EXPECT_THAT(*history, SizeIs(2)) << i;
  }
  // Every stored message is searchable: the index saw each turn once.
  EXPECT_THAT(raw.Column("SELECT count(*) FROM messages_fts "
                         "WHERE messages_fts MATCH 'a'"),
              ElementsAre(absl::StrCat(kTurns - 1)));
}

TEST_F(SqliteStoreTest, StoresOnOneFileSerializeAppends) {
  // Two stores are two connections, as two processes would have: only
  // SQLite's locking (BEGIN IMMEDIATE, busy_timeout) keeps them apart.
  std::unique_ptr<SqliteConversationStore> first = OpenOrDie(path_);
  std::unique_ptr<SqliteConversationStore> second = OpenOrDie(path_);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kThreadsPerStore = 2;
  constexpr int kTurnsPerThread = 10;
  const SessionKey key{"acme", "shared"};

  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerStore; ++t) {
    ConversationStore* store = t % 2 == 0 ? first.get() : second.get();
    threads.emplace_back([store, t, &key] {
      for (int i = 0; i < kTurnsPerThread; ++i) {
        const std::string question = absl::StrCat("t", t, "-", i);
        for (int attempt = 0;; ++attempt) {
          ASSERT_LT(attempt, 10'000) << "no progress";
          absl::StatusOr<SessionInfo> info = store->GetSession(key);
          const int count = info.ok() ? info->turn_count : 0;
          absl::StatusOr<StoredTurn> appended = store->AppendTurn(
              key, count, "prompt", MakeTurn(question, "re: " + question, kT0));
          if (appended.ok()) break;
          ASSERT_THAT(appended, StatusIs(absl::StatusCode::kAborted));
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  absl::StatusOr<std::vector<StoredMessage>> history = first->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(2 * 2 * kThreadsPerStore * kTurnsPerThread));
  for (size_t i = 0; i < history->size(); i += 2) {
    EXPECT_EQ((*history)[i].role, "user");
    EXPECT_EQ((*history)[i + 1].role, "assistant");
    EXPECT_EQ((*history)[i + 1].content, "re: " + (*history)[i].content);
  }
}

// The statement cache, seen through sqlite3_next_stmt() and the statements'
// own counters: after a first use of every method, further calls run the
// same statements again (their run counts grow) and prepare no new ones.
TEST(SqliteStatementCacheTest, InMemoryStoreReusesItsStatements) {
  ConnectionSpy spy;
  absl::StatusOr<std::unique_ptr<SqliteConversationStore>> store =
      SqliteConversationStore::Open(":memory:");
  spy.Stop();
  ASSERT_THAT(store, IsOk());
  const std::vector<sqlite3*> connections = spy.connections();
  ASSERT_THAT(connections, SizeIs(1));  // Reads run on the writer.

  UseEveryMethod(**store, 0);
  const std::vector<StatementInfo> before = PreparedStatements(connections);
  // Finalizing after each call would leave none.
  ASSERT_THAT(before, ::testing::Not(IsEmpty()));
  constexpr int kRounds = 50;
  for (int i = 1; i <= kRounds; ++i) UseEveryMethod(**store, i);
  const std::vector<StatementInfo> after = PreparedStatements(connections);

  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    SCOPED_TRACE(after[i].sql);
    EXPECT_EQ(after[i].stmt, before[i].stmt);
    EXPECT_GE(after[i].runs, before[i].runs + kRounds);
    // BEGIN and COMMIT, first run by the migration, were re-prepared once
    // after it changed the schema; nothing is re-prepared since.
    EXPECT_EQ(after[i].reprepares, before[i].reprepares);
    EXPECT_FALSE(after[i].busy);  // Reset after use.
  }
}

TEST_F(SqliteStoreTest, EveryConnectionKeepsOneCopyOfEachStatement) {
  ConnectionSpy spy;
  std::unique_ptr<SqliteConversationStore> store = OpenOrDie(path_);
  spy.Stop();
  ASSERT_NE(store, nullptr);
  const std::vector<sqlite3*> connections = spy.connections();
  ASSERT_THAT(connections, SizeIs(::testing::Gt(1)));  // Writer and readers.

  // Reads go round the readers; enough rounds to reach each with each read.
  for (int i = 0; i < 10; ++i) UseEveryMethod(*store, i);
  const std::vector<StatementInfo> before = PreparedStatements(connections);
  constexpr int kRounds = 50;
  for (int i = 10; i < 10 + kRounds; ++i) UseEveryMethod(*store, i);
  const std::vector<StatementInfo> after = PreparedStatements(connections);

  ASSERT_EQ(after.size(), before.size());
  int64_t runs_before = 0;
  int64_t runs_after = 0;
  for (size_t i = 0; i < after.size(); ++i) {
    SCOPED_TRACE(after[i].sql);
    EXPECT_EQ(after[i].stmt, before[i].stmt);
    EXPECT_FALSE(after[i].busy);  // A reader pins no snapshot between calls.
    runs_before += before[i].runs;
    runs_after += after[i].runs;
  }
  EXPECT_GE(runs_after - runs_before, int64_t{kRounds} * 10);
  for (sqlite3* db : connections) {
    std::vector<std::string> sql;
    for (const StatementInfo& statement : PreparedStatements({db})) {
      sql.push_back(statement.sql);
    }
    EXPECT_THAT(sql, ::testing::Not(IsEmpty())) << "an unused connection";
    EXPECT_EQ(std::set<std::string>(sql.begin(), sql.end()).size(), sql.size())
        << "a statement prepared twice on one connection";
  }
}

TEST(OpenSqliteConversationStoreTest, InMemoryDatabasesArePrivate) {
  absl::StatusOr<std::unique_ptr<ConversationStore>> a =
      OpenSqliteConversationStore(":memory:");
  absl::StatusOr<std::unique_ptr<ConversationStore>> b =
      OpenSqliteConversationStore(":memory:");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT((*a)->AppendTurn({"acme", "s1"}, 0, "", MakeTurn("q", "a", kT0)),
              IsOk());
  EXPECT_THAT((*b)->GetSession({"acme", "s1"}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(OpenSqliteConversationStoreTest, EmptyPathIsInvalid) {
  EXPECT_THAT(OpenSqliteConversationStore(""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace chat::store
