// ValidateSessionArchive on hand-built archives, then ExportSession and
// ImportSession on every store (memory, a SQLite file, SQLite in memory, and
// PostgreSQL when CHAT_TEST_POSTGRES_DSN is set), each opened through
// OpenConversationStore() as the server opens it. The round trip is checked
// field by field: a session exported from one store and imported into
// another must read back exactly as it was, ids and times included, and
// behave like a session stored live (history, counts, the next turn's id).

#include "server/store/session_archive.h"

#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/conversation_store.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_turns.h"

namespace chat::store {
namespace {

using ::chat::testing::At;
using ::chat::testing::IsOk;
using ::chat::testing::MakeTurn;
using ::chat::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// 1 - 2, and 3 under 1 (a version of 2); 2 active.
SessionArchive SampleArchive() {
  SessionArchive archive;
  archive.session_id = "s1";
  archive.system_prompt = "be brief";
  archive.title = "Greetings";
  archive.created_at = At(1);
  archive.updated_at = At(30);
  archive.active_turn_id = 2;
  for (int id = 1; id <= 3; ++id) {
    ArchivedTurn& turn = archive.turns.emplace_back();
    turn.turn_id = id;
    turn.parent_turn_id = id == 1 ? 0 : 1;
    turn.created_at = At(10 * id);
    turn.user_message = absl::StrCat("question ", id);
    turn.assistant_message = absl::StrCat("answer ", id, " \xC3\xA9");
    turn.model = "test-model";
    turn.stop_reason = "end_turn";
    turn.input_tokens = 100 + id;
    turn.output_tokens = 10 + id;
    if (id != 2) turn.cost_usd = 0.000123 * id;
  }
  return archive;
}

void ExpectSameArchive(const SessionArchive& got, const SessionArchive& want) {
  EXPECT_EQ(got.session_id, want.session_id);
  EXPECT_EQ(got.system_prompt, want.system_prompt);
  EXPECT_EQ(got.title, want.title);
  EXPECT_EQ(got.created_at, want.created_at);
  EXPECT_EQ(got.updated_at, want.updated_at);
  EXPECT_EQ(got.active_turn_id, want.active_turn_id);
  ASSERT_EQ(got.turns.size(), want.turns.size());
  for (size_t i = 0; i < got.turns.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("turn ", i + 1));
    const ArchivedTurn& g = got.turns[i];
    const ArchivedTurn& w = want.turns[i];
    EXPECT_EQ(g.turn_id, w.turn_id);
    EXPECT_EQ(g.parent_turn_id, w.parent_turn_id);
    EXPECT_EQ(g.created_at, w.created_at);
    EXPECT_EQ(g.user_message, w.user_message);
    EXPECT_EQ(g.assistant_message, w.assistant_message);
    EXPECT_EQ(g.model, w.model);
    EXPECT_EQ(g.stop_reason, w.stop_reason);
    EXPECT_EQ(g.input_tokens, w.input_tokens);
    EXPECT_EQ(g.output_tokens, w.output_tokens);
    EXPECT_EQ(g.cost_usd, w.cost_usd);
  }
}

TEST(ValidateSessionArchiveTest, AcceptsTheSample) {
  EXPECT_THAT(ValidateSessionArchive(SampleArchive()), IsOk());
  EXPECT_EQ(BranchLength(SampleArchive(), 2), 2);
  EXPECT_EQ(BranchLength(SampleArchive(), 3), 2);
  EXPECT_EQ(BranchLength(SampleArchive(), 0), 0);
}

TEST(ValidateSessionArchiveTest, AcceptsASessionWithoutTurns) {
  SessionArchive archive = SampleArchive();
  archive.turns.clear();
  archive.active_turn_id = 0;
  EXPECT_THAT(ValidateSessionArchive(archive), IsOk());
}

TEST(ValidateSessionArchiveTest, RefusesIdsOutOfOrder) {
  SessionArchive archive = SampleArchive();
  archive.turns[1].turn_id = 5;
  EXPECT_THAT(ValidateSessionArchive(archive),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expected 2, got 5")));
}

TEST(ValidateSessionArchiveTest, RefusesAParentThatIsNotEarlier) {
  SessionArchive archive = SampleArchive();
  archive.turns[1].parent_turn_id = 3;  // 2 under 3 under 1: a forward link.
  EXPECT_THAT(ValidateSessionArchive(archive),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("turn 2 has parent 3")));
  archive.turns[1].parent_turn_id = 2;  // Its own parent: a cycle.
  EXPECT_THAT(ValidateSessionArchive(archive),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ValidateSessionArchiveTest, RefusesAnUnknownActiveTurn) {
  SessionArchive archive = SampleArchive();
  archive.active_turn_id = 4;
  EXPECT_THAT(ValidateSessionArchive(archive),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("active_turn_id 4")));
  archive.active_turn_id = 0;
  EXPECT_THAT(ValidateSessionArchive(archive),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

struct StoreFactory {
  std::string name;
  std::function<absl::StatusOr<std::unique_ptr<ConversationStore>>(
      const std::string& dir)>
      open;
};

void PrintTo(const StoreFactory& factory, std::ostream* os) {
  *os << factory.name;
}

std::vector<StoreFactory> Stores() {
  return {
      {"Memory",
       [](const std::string&) { return OpenConversationStore("memory"); }},
      {"SqliteFile",
       [](const std::string& dir) {
         return OpenConversationStore(absl::StrCat("sqlite:", dir, "/chat.db"));
       }},
      {"SqliteInMemory",
       [](const std::string&) {
         return OpenConversationStore("sqlite::memory:");
       }},
      {"Postgres",
       [](const std::string&)
           -> absl::StatusOr<std::unique_ptr<ConversationStore>> {
         absl::StatusOr<std::string> conninfo =
             ::chat::testing::MakeFreshPostgresSchema();
         if (!conninfo.ok()) return conninfo.status();
         return OpenConversationStore(absl::StrCat("postgres:", *conninfo));
       }},
  };
}

class SessionArchiveStoreTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    if (GetParam().name == "Postgres" &&
        ::chat::testing::PostgresTestDsn().empty()) {
      if (::chat::testing::PostgresRequired()) {
        GTEST_FAIL() << "CHAT_TEST_REQUIRE_POSTGRES=1 but "
                        "CHAT_TEST_POSTGRES_DSN is unset";
      }
      GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run against PostgreSQL";
    }
    std::string pattern = ::testing::TempDir() + "session_archive_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    absl::StatusOr<std::unique_ptr<ConversationStore>> store =
        GetParam().open(dir_);
    ASSERT_THAT(store, IsOk());
    store_ = *std::move(store);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string dir_;
  std::unique_ptr<ConversationStore> store_;
};

TEST_P(SessionArchiveStoreTest, ExportReadsEveryBranchAsStored) {
  const SessionKey key{"acme", "s1"};
  store::Turn first = MakeTurn("hi", "hello", At(10), 5, 2);
  first.cost_usd = 0.5;
  ASSERT_THAT(store_->AppendTurn(key, 0, "be brief", first), IsOk());
  ASSERT_THAT(store_->AppendTurn(key, 1, "", MakeTurn("how?", "so", At(20))),
              IsOk());
  ASSERT_THAT(store_->AppendBranchTurn(key, 1, MakeTurn("why?", "as", At(30))),
              IsOk());
  ASSERT_THAT(store_->SwitchBranch(key, 2), IsOk());
  ASSERT_THAT(store_->SetTitle(key, "Hello", false), IsOk());

  absl::StatusOr<SessionArchive> archive = store_->ExportSession(key);
  ASSERT_THAT(archive, IsOk());
  EXPECT_EQ(archive->session_id, "s1");
  EXPECT_EQ(archive->system_prompt, "be brief");
  EXPECT_EQ(archive->title, "Hello");
  EXPECT_EQ(archive->created_at, At(10));
  EXPECT_EQ(archive->updated_at, At(30));
  EXPECT_EQ(archive->active_turn_id, 2);
  ASSERT_EQ(archive->turns.size(), 3u);
  EXPECT_EQ(archive->turns[0].parent_turn_id, 0);
  EXPECT_EQ(archive->turns[1].parent_turn_id, 1);
  EXPECT_EQ(archive->turns[2].parent_turn_id, 1);
  EXPECT_EQ(archive->turns[2].user_message, "why?");
  EXPECT_EQ(archive->turns[2].assistant_message, "as");
  EXPECT_EQ(archive->turns[0].model, "test-model");
  EXPECT_EQ(archive->turns[0].stop_reason, "end_turn");
  EXPECT_EQ(archive->turns[0].input_tokens, 5);
  EXPECT_EQ(archive->turns[0].output_tokens, 2);
  EXPECT_EQ(archive->turns[0].cost_usd, 0.5);
  EXPECT_EQ(archive->turns[1].cost_usd, std::nullopt);
  EXPECT_THAT(ValidateSessionArchive(*archive), IsOk());
}

TEST_P(SessionArchiveStoreTest, ExportOfAnUnknownOrForeignSessionIsNotFound) {
  ASSERT_THAT(
      store_->AppendTurn({"acme", "s1"}, 0, "", MakeTurn("a", "b", At(1))),
      IsOk());
  EXPECT_THAT(store_->ExportSession({"other", "s1"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->ExportSession({"acme", "nope"}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(SessionArchiveStoreTest, ImportThenExportGivesTheSameSession) {
  const SessionArchive archive = SampleArchive();
  ASSERT_THAT(store_->ImportSession("acme", archive, false), IsOk());
  absl::StatusOr<SessionArchive> exported =
      store_->ExportSession({"acme", "s1"});
  ASSERT_THAT(exported, IsOk());
  ExpectSameArchive(*exported, archive);
}

TEST_P(SessionArchiveStoreTest, AnImportedSessionBehavesLikeAStoredOne) {
  const SessionKey key{"acme", "s1"};
  ASSERT_THAT(store_->ImportSession("acme", SampleArchive(), false), IsOk());

  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->turn_count, 2);
  EXPECT_EQ(info->title, "Greetings");
  EXPECT_EQ(info->updated_at, At(30));
  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  std::vector<std::string> contents;
  for (const StoredMessage& m : *history) contents.push_back(m.content);
  EXPECT_THAT(contents, ElementsAre("question 1", "answer 1 \xC3\xA9",
                                    "question 2", "answer 2 \xC3\xA9"));
  EXPECT_THAT((*history)[2].sibling_turn_ids, ElementsAre(2, 3));

  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 1);
  EXPECT_EQ(stats->total_input_tokens, 101 + 102 + 103);

  // The next turn takes the next id, on the active branch.
  absl::StatusOr<StoredTurn> appended =
      store_->AppendTurn(key, 2, "", MakeTurn("more", "sure", At(40)));
  ASSERT_THAT(appended, IsOk());
  EXPECT_EQ(appended->turn_count, 3);
  EXPECT_EQ(appended->turn_id, 4);  // Every branch's turns counted.
  absl::StatusOr<SessionArchive> exported = store_->ExportSession(key);
  ASSERT_THAT(exported, IsOk());
  ASSERT_EQ(exported->turns.size(), 4u);
  EXPECT_EQ(exported->turns[3].turn_id, 4);
  EXPECT_EQ(exported->turns[3].parent_turn_id, 2);
  EXPECT_EQ(exported->active_turn_id, 4);
}

TEST_P(SessionArchiveStoreTest, ImportRefusesATakenIdUnlessReplacing) {
  ASSERT_THAT(store_->AppendTurn({"acme", "s1"}, 0, "old",
                                 MakeTurn("old", "old", At(1))),
              IsOk());
  EXPECT_THAT(store_->ImportSession("acme", SampleArchive(), false),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("s1")));
  absl::StatusOr<SessionArchive> kept = store_->ExportSession({"acme", "s1"});
  ASSERT_THAT(kept, IsOk());
  EXPECT_EQ(kept->system_prompt, "old");

  ASSERT_THAT(store_->ImportSession("acme", SampleArchive(), true), IsOk());
  absl::StatusOr<SessionArchive> replaced =
      store_->ExportSession({"acme", "s1"});
  ASSERT_THAT(replaced, IsOk());
  ExpectSameArchive(*replaced, SampleArchive());
}

TEST_P(SessionArchiveStoreTest, ImportIsPerTenant) {
  ASSERT_THAT(store_->ImportSession("acme", SampleArchive(), false), IsOk());
  // The same id in another tenant is another session.
  ASSERT_THAT(store_->ImportSession("other", SampleArchive(), false), IsOk());
  absl::StatusOr<SessionPage> page = store_->ListSessions("other", 10, "");
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->sessions.size(), 1u);
}

// An archive without turns is how CreateSession makes an empty session: it
// must be a session like any other from then on (read, listed, counted,
// exported, deleted), and its first turn must land on it, keeping the
// prompt it was created with.
TEST_P(SessionArchiveStoreTest, AnEmptyArchiveIsAnEmptySession) {
  const SessionKey key{"acme", "empty"};
  SessionArchive empty;
  empty.session_id = "empty";
  empty.system_prompt = "be terse";
  empty.title = "Plans";
  empty.created_at = At(5);
  empty.updated_at = At(5);
  ASSERT_THAT(store_->ImportSession("acme", empty, false), IsOk());
  EXPECT_THAT(store_->ImportSession("acme", empty, false),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("empty")));

  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->turn_count, 0);
  EXPECT_EQ(info->system_prompt, "be terse");
  EXPECT_EQ(info->title, "Plans");
  EXPECT_EQ(info->created_at, At(5));
  EXPECT_EQ(info->updated_at, At(5));
  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  EXPECT_TRUE(history->empty());
  absl::StatusOr<SessionPage> page = store_->ListSessions("acme", 10, "");
  ASSERT_THAT(page, IsOk());
  ASSERT_EQ(page->sessions.size(), 1u);
  EXPECT_EQ(page->sessions[0].session_id, "empty");
  EXPECT_EQ(page->sessions[0].turn_count, 0);
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 1);
  absl::StatusOr<SessionArchive> exported = store_->ExportSession(key);
  ASSERT_THAT(exported, IsOk());
  ExpectSameArchive(*exported, empty);
  // Another tenant does not see it.
  EXPECT_THAT(store_->GetSession({"other", "empty"}),
              StatusIs(absl::StatusCode::kNotFound));

  // The first turn is appended to it (the prompt given is ignored, as for
  // any existing session) and becomes turn 1.
  absl::StatusOr<StoredTurn> appended =
      store_->AppendTurn(key, 0, "ignored", MakeTurn("hi", "hello", At(9)));
  ASSERT_THAT(appended, IsOk());
  EXPECT_EQ(appended->turn_count, 1);
  EXPECT_EQ(appended->turn_id, 1);
  info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->system_prompt, "be terse");
  EXPECT_EQ(info->turn_count, 1);
  EXPECT_EQ(info->created_at, At(5));
  EXPECT_EQ(info->updated_at, At(9));
  history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].turn_id, 1);

  absl::StatusOr<bool> deleted = store_->DeleteSession(key);
  ASSERT_THAT(deleted, IsOk());
  EXPECT_TRUE(*deleted);
  EXPECT_THAT(store_->GetSession(key), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(SessionArchiveStoreTest, AnEmptySessionCanBeDeletedBeforeItsFirstTurn) {
  SessionArchive empty;
  empty.session_id = "empty";
  empty.created_at = At(5);
  empty.updated_at = At(5);
  ASSERT_THAT(store_->ImportSession("acme", empty, false), IsOk());
  absl::StatusOr<bool> deleted = store_->DeleteSession({"acme", "empty"});
  ASSERT_THAT(deleted, IsOk());
  EXPECT_TRUE(*deleted);
  absl::StatusOr<SessionPage> page = store_->ListSessions("acme", 10, "");
  ASSERT_THAT(page, IsOk());
  EXPECT_TRUE(page->sessions.empty());
}

TEST_P(SessionArchiveStoreTest, ABadImportWritesNothing) {
  SessionArchive bad = SampleArchive();
  bad.turns[2].parent_turn_id = 7;
  EXPECT_THAT(store_->ImportSession("acme", bad, false),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->GetSession({"acme", "s1"}),
              StatusIs(absl::StatusCode::kNotFound));

  // Nor does a bad replacement touch the session it would replace.
  ASSERT_THAT(store_->ImportSession("acme", SampleArchive(), false), IsOk());
  EXPECT_THAT(store_->ImportSession("acme", bad, true),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<SessionArchive> kept = store_->ExportSession({"acme", "s1"});
  ASSERT_THAT(kept, IsOk());
  ExpectSameArchive(*kept, SampleArchive());
}

TEST_P(SessionArchiveStoreTest, AnEmptySessionRoundTrips) {
  SessionArchive empty = SampleArchive();
  empty.turns.clear();
  empty.active_turn_id = 0;
  ASSERT_THAT(store_->ImportSession("acme", empty, false), IsOk());
  absl::StatusOr<SessionArchive> exported =
      store_->ExportSession({"acme", "s1"});
  ASSERT_THAT(exported, IsOk());
  ExpectSameArchive(*exported, empty);
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, SessionArchiveStoreTest, ::testing::ValuesIn(Stores()),
    [](const ::testing::TestParamInfo<StoreFactory>& info) {
      return info.param.name;
    });

}  // namespace
}  // namespace chat::store
