// Conformance suite for ConversationStore: every test runs against every
// implementation (memory, a SQLite file, SQLite in memory, and PostgreSQL
// when CHAT_TEST_POSTGRES_DSN is set), each opened through
// OpenConversationStore() so the URL forms are exercised too. The tests only
// use the interface, so they state the contract itself: a new store joins by
// adding a factory to Stores(). Each test gets a fresh, empty store (on
// PostgreSQL, a schema of its own) and its own temporary directory.
//
// Times are whole microseconds apart, the precision every store keeps, so
// stored times compare equal to the ones written. The concurrency test runs
// the retry loop a real caller runs (read the turn count, append, retry on
// kAborted) and checks that no turn was lost, duplicated or split.

#include "server/store/conversation_store.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// status_matchers.h has no IsOkAndHolds yet.
MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status: " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

MATCHER_P2(MessageIs, role, content,
           absl::StrCat("is a ", role, " message \"", content, "\"")) {
  *result_listener << "is a " << arg.role << " message \"" << arg.content
                   << "\"";
  return arg.role == role && arg.content == content;
}

std::vector<std::string> SessionIds(const std::vector<SessionInfo>& sessions) {
  std::vector<std::string> ids;
  for (const SessionInfo& info : sessions) ids.push_back(info.session_id);
  return ids;
}

// Returns a new empty directory; the caller removes it.
std::string MakeTempDir() {
  std::string pattern = ::testing::TempDir() + "conversation_store_test.XXXXXX";
  char* dir = mkdtemp(pattern.data());
  if (dir == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << pattern << ") failed";
    return "";
  }
  return dir;
}

struct StoreFactory {
  std::string name;
  // Opens a new, empty store; any files go under `dir`.
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
      // A subdirectory that does not exist yet: opening must create it.
      {"SqliteFile",
       [](const std::string& dir) {
         return OpenConversationStore(
             absl::StrCat("sqlite:", dir, "/data/chat.db"));
       }},
      {"SqliteInMemory",
       [](const std::string&) {
         return OpenConversationStore("sqlite::memory:");
       }},
      // A fresh schema on the server CHAT_TEST_POSTGRES_DSN names.
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

class ConversationStoreTest : public ::testing::TestWithParam<StoreFactory> {
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
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
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

  // Appends one turn and expects it to succeed, returning the new count.
  int Append(const SessionKey& key, int expected, const Turn& turn,
             absl::string_view system_prompt = "prompt") {
    absl::StatusOr<StoredTurn> stored =
        store_->AppendTurn(key, expected, system_prompt, turn);
    EXPECT_THAT(stored, IsOk());
    return stored.ok() ? stored->turn_count : -1;
  }

  std::string dir_;
  std::unique_ptr<ConversationStore> store_;
};

TEST_P(ConversationStoreTest, UnknownSessionIsNotFound) {
  const SessionKey key{"acme", "missing"};
  EXPECT_THAT(store_->GetSession(key), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->LoadHistory(key), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->ResetSession(key, At(1)),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ConversationStoreTest, FirstAppendCreatesSessionWithSystemPrompt) {
  const SessionKey key{"acme", "s1"};
  EXPECT_EQ(Append(key, 0, MakeTurn("hi", "hello", At(10)), "be brief"), 1);

  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->session_id, "s1");
  EXPECT_EQ(info->system_prompt, "be brief");
  EXPECT_EQ(info->created_at, At(10));
  EXPECT_EQ(info->updated_at, At(10));
  EXPECT_EQ(info->turn_count, 1);
}

TEST_P(ConversationStoreTest, SecondAppendAtOneUpdatesSession) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("one", "1", At(10))), 1);
  EXPECT_EQ(Append(key, 1, MakeTurn("two", "2", At(20))), 2);

  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->created_at, At(10));
  EXPECT_EQ(info->updated_at, At(20));
  EXPECT_EQ(info->turn_count, 2);
}

TEST_P(ConversationStoreTest, WrongExpectedCountIsAbortedAndWritesNothing) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("one", "1", At(10), 5, 7)), 1);

  for (int expected : {0, 2, 5}) {
    SCOPED_TRACE(expected);
    EXPECT_THAT(store_->AppendTurn(key, expected, "prompt",
                                   MakeTurn("late", "late", At(99), 100, 100)),
                StatusIs(absl::StatusCode::kAborted, HasSubstr("s1")));
  }

  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->turn_count, 1);
  EXPECT_EQ(info->updated_at, At(10));
  EXPECT_THAT(store_->LoadHistory(key),
              IsOkAndHolds(ElementsAre(MessageIs("user", "one"),
                                       MessageIs("assistant", "1"))));
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_messages, 2);
  EXPECT_EQ(stats->total_input_tokens, 5);
  EXPECT_EQ(stats->total_output_tokens, 7);
}

TEST_P(ConversationStoreTest, AppendToMissingSessionAboveZeroIsAborted) {
  const SessionKey key{"acme", "s1"};
  EXPECT_THAT(
      store_->AppendTurn(key, 1, "prompt", MakeTurn("hi", "hello", At(1))),
      StatusIs(absl::StatusCode::kAborted));
  EXPECT_THAT(store_->GetSession(key), StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ConversationStoreTest, NegativeExpectedCountIsInvalid) {
  EXPECT_THAT(store_->AppendTurn({"acme", "s1"}, -1, "prompt",
                                 MakeTurn("hi", "hello", At(1))),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->GetSession({"acme", "s1"}),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_P(ConversationStoreTest, SystemPromptIsIgnoredForExistingSession) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("one", "1", At(10)), "first prompt"), 1);
  ASSERT_EQ(Append(key, 1, MakeTurn("two", "2", At(20)), "second prompt"), 2);

  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->system_prompt, "first prompt");
}

TEST_P(ConversationStoreTest, LoadHistoryReturnsMessagesOldestFirst) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("one", "1", At(10))), 1);
  ASSERT_EQ(Append(key, 1, MakeTurn("two", "2", At(20))), 2);
  // Contents with bytes that trip naive string handling: empty, NUL,
  // non-ASCII, quotes.
  ASSERT_EQ(Append(key, 2, MakeTurn(std::string("a\0b", 3), "", At(30))), 3);
  ASSERT_EQ(
      Append(key, 3,
             MakeTurn("h\xC3\xA9llo 'x' \"y\"", "\xF0\x9F\x99\x82", At(40))),
      4);

  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(*history,
              ElementsAre(MessageIs("user", "one"), MessageIs("assistant", "1"),
                          MessageIs("user", "two"), MessageIs("assistant", "2"),
                          MessageIs("user", std::string("a\0b", 3)),
                          MessageIs("assistant", ""),
                          MessageIs("user", "h\xC3\xA9llo 'x' \"y\""),
                          MessageIs("assistant", "\xF0\x9F\x99\x82")));
  ASSERT_THAT(*history, SizeIs(8));
  EXPECT_EQ((*history)[0].created_at, At(10));
  EXPECT_EQ((*history)[3].created_at, At(20));
  EXPECT_EQ((*history)[7].created_at, At(40));
}

TEST_P(ConversationStoreTest, ResetSessionKeepsSessionAndPromptOnly) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("one", "1", At(10), 3, 4), "keep me"), 1);
  ASSERT_EQ(Append(key, 1, MakeTurn("two", "2", At(20), 3, 4)), 2);

  EXPECT_THAT(store_->ResetSession(key, At(30)), IsOkAndHolds(2));

  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->system_prompt, "keep me");
  EXPECT_EQ(info->turn_count, 0);
  EXPECT_EQ(info->created_at, At(10));
  EXPECT_EQ(info->updated_at, At(30));
  EXPECT_THAT(store_->LoadHistory(key), IsOkAndHolds(IsEmpty()));
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 1);
  EXPECT_EQ(stats->total_messages, 0);
  EXPECT_EQ(stats->total_input_tokens, 0);
  EXPECT_EQ(stats->total_output_tokens, 0);

  // The count starts over; the old count is now stale.
  EXPECT_THAT(store_->AppendTurn(key, 2, "other", MakeTurn("x", "y", At(40))),
              StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(Append(key, 0, MakeTurn("three", "3", At(50)), "other"), 1);
  EXPECT_THAT(store_->LoadHistory(key),
              IsOkAndHolds(ElementsAre(MessageIs("user", "three"),
                                       MessageIs("assistant", "3"))));
  info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->system_prompt, "keep me");
  EXPECT_THAT(store_->ResetSession(key, At(60)), IsOkAndHolds(1));
}

// A turn's cost is kept (NULL when unknown); GetStats sums the known ones,
// and has no sum when no stored turn has a cost.
TEST_P(ConversationStoreTest, StatsSumTheCostOfTurnsThatHaveOne) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("one", "1", At(10), 3, 4)), 1);
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, std::nullopt);

  Turn priced = MakeTurn("two", "2", At(20), 3, 4);
  priced.cost_usd = 0.125;
  ASSERT_EQ(Append(key, 1, priced), 2);
  priced.cost_usd = 0.0625;
  ASSERT_EQ(Append({"acme", "s2"}, 0, priced), 1);
  ASSERT_EQ(Append({"other", "s1"}, 0, priced), 1);
  stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, 0.1875);
  EXPECT_EQ(stats->total_output_tokens, 12);

  // A reset takes its turns' cost out of the sum.
  ASSERT_THAT(store_->ResetSession(key, At(30)), IsOk());
  stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, 0.0625);
  ASSERT_THAT(store_->DeleteSession({"acme", "s2"}), IsOk());
  stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_cost_usd, std::nullopt);
}

TEST_P(ConversationStoreTest, DeleteSessionRemovesOnlyThatSession) {
  const SessionKey doomed{"acme", "doomed"};
  const SessionKey kept{"acme", "kept"};
  ASSERT_EQ(Append(doomed, 0, MakeTurn("one", "1", At(10), 1, 1)), 1);
  ASSERT_EQ(Append(kept, 0, MakeTurn("two", "2", At(20), 2, 2)), 1);

  EXPECT_THAT(store_->DeleteSession(doomed), IsOkAndHolds(true));
  EXPECT_THAT(store_->DeleteSession(doomed), IsOkAndHolds(false));
  EXPECT_THAT(store_->DeleteSession({"acme", "never"}), IsOkAndHolds(false));

  EXPECT_THAT(store_->GetSession(doomed),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->LoadHistory(doomed),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->LoadHistory(kept), IsOkAndHolds(SizeIs(2)));
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 1);
  EXPECT_EQ(stats->total_messages, 2);
  EXPECT_EQ(stats->total_input_tokens, 2);

  // The id can be used again, starting from nothing.
  EXPECT_EQ(Append(doomed, 0, MakeTurn("again", "a", At(30)), "new prompt"), 1);
  EXPECT_THAT(store_->LoadHistory(doomed), IsOkAndHolds(SizeIs(2)));
  absl::StatusOr<SessionInfo> info = store_->GetSession(doomed);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->system_prompt, "new prompt");
}

TEST_P(ConversationStoreTest, ListSessionsMostRecentlyUpdatedFirst) {
  ASSERT_EQ(Append({"acme", "old"}, 0, MakeTurn("q", "a", At(10))), 1);
  ASSERT_EQ(Append({"acme", "mid"}, 0, MakeTurn("q", "a", At(20))), 1);
  ASSERT_EQ(Append({"acme", "new"}, 0, MakeTurn("q", "a", At(30))), 1);
  // Ties on updated_at are broken by session_id.
  ASSERT_EQ(Append({"acme", "tie-b"}, 0, MakeTurn("q", "a", At(25))), 1);
  ASSERT_EQ(Append({"acme", "tie-a"}, 0, MakeTurn("q", "a", At(25))), 1);

  absl::StatusOr<SessionPage> page = store_->ListSessions("acme", 10, "");
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(SessionIds(page->sessions),
              ElementsAre("new", "tie-a", "tie-b", "mid", "old"));
  EXPECT_THAT(page->next_page_token, IsEmpty());

  // Appending to "old" and resetting "mid" move them to the front.
  ASSERT_EQ(Append({"acme", "old"}, 1, MakeTurn("q", "a", At(40))), 2);
  ASSERT_THAT(store_->ResetSession({"acme", "mid"}, At(50)), IsOk());
  page = store_->ListSessions("acme", 10, "");
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(SessionIds(page->sessions),
              ElementsAre("mid", "old", "new", "tie-a", "tie-b"));
  ASSERT_THAT(page->sessions, SizeIs(5));
  EXPECT_EQ(page->sessions[1].turn_count, 2);
  EXPECT_EQ(page->sessions[1].updated_at, At(40));
  EXPECT_EQ(page->sessions[1].created_at, At(10));
  EXPECT_EQ(page->sessions[1].system_prompt, "prompt");
}

TEST_P(ConversationStoreTest, ListSessionsPagesVisitEverySessionOnce) {
  // Ties within and across page boundaries are what keyset pagination can
  // get wrong, so many sessions share an updated_at.
  constexpr int kSessions = 11;
  for (int i = 0; i < kSessions; ++i) {
    ASSERT_EQ(Append({"acme", absl::StrCat("s", i)}, 0,
                     MakeTurn("q", "a", At(i / 3))),
              1);
  }
  // Most recent first; s9, s10 share At(3) and sort as strings.
  const std::vector<std::string> expected = {
      "s10", "s9", "s6", "s7", "s8", "s3", "s4", "s5", "s0", "s1", "s2"};

  for (int page_size : {1, 2, 3, 4, 10, 11, 12, 100}) {
    SCOPED_TRACE(absl::StrCat("page_size=", page_size));
    std::vector<std::string> seen;
    std::string token;
    int pages = 0;
    do {
      absl::StatusOr<SessionPage> page =
          store_->ListSessions("acme", page_size, token);
      ASSERT_THAT(page, IsOk());
      EXPECT_LE(page->sessions.size(), static_cast<size_t>(page_size));
      for (const std::string& id : SessionIds(page->sessions)) {
        seen.push_back(id);
      }
      token = page->next_page_token;
      ASSERT_LE(++pages, kSessions + 1) << "paging does not end";
    } while (!token.empty());
    EXPECT_EQ(seen, expected);
    // No trailing empty page: the last full page says it is the last.
    EXPECT_EQ(pages, (kSessions + page_size - 1) / page_size);
  }
}

TEST_P(ConversationStoreTest, ListSessionsOfUnknownTenantIsEmpty) {
  absl::StatusOr<SessionPage> page = store_->ListSessions("nobody", 5, "");
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(page->sessions, IsEmpty());
  EXPECT_THAT(page->next_page_token, IsEmpty());
}

TEST_P(ConversationStoreTest, ListSessionsRejectsBadArguments) {
  ASSERT_EQ(Append({"acme", "s1"}, 0, MakeTurn("q", "a", At(1))), 1);
  for (const char* token : {"not a token", "%%%", "djE6",  // "v1:"
                            "djE6eDpzMQ",                  // "v1:x:s1"
                            "djI6MTpzMQ",                  // "v2:1:s1"
                            "MTpzMQ"}) {                   // "1:s1"
    SCOPED_TRACE(token);
    EXPECT_THAT(store_->ListSessions("acme", 5, token),
                StatusIs(absl::StatusCode::kInvalidArgument));
  }
  EXPECT_THAT(store_->ListSessions("acme", 0, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->ListSessions("acme", -1, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(ConversationStoreTest, TenantsAreIsolated) {
  // The same session id in two tenants names two sessions.
  ASSERT_EQ(Append({"acme", "shared"}, 0, MakeTurn("a1", "A1", At(10), 1, 2),
                   "acme prompt"),
            1);
  ASSERT_EQ(Append({"acme", "shared"}, 1, MakeTurn("a2", "A2", At(11), 1, 2)),
            2);
  ASSERT_EQ(Append({"acme", "acme-only"}, 0, MakeTurn("a", "A", At(12))), 1);
  ASSERT_EQ(Append({"globex", "shared"}, 0,
                   MakeTurn("g1", "G1", At(20), 10, 20), "globex prompt"),
            1);

  absl::StatusOr<SessionInfo> acme = store_->GetSession({"acme", "shared"});
  absl::StatusOr<SessionInfo> globex = store_->GetSession({"globex", "shared"});
  ASSERT_THAT(acme, IsOk());
  ASSERT_THAT(globex, IsOk());
  EXPECT_EQ(acme->system_prompt, "acme prompt");
  EXPECT_EQ(acme->turn_count, 2);
  EXPECT_EQ(globex->system_prompt, "globex prompt");
  EXPECT_EQ(globex->turn_count, 1);
  EXPECT_THAT(store_->GetSession({"globex", "acme-only"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->LoadHistory({"globex", "shared"}),
              IsOkAndHolds(ElementsAre(MessageIs("user", "g1"),
                                       MessageIs("assistant", "G1"))));

  absl::StatusOr<SessionPage> page = store_->ListSessions("globex", 10, "");
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(SessionIds(page->sessions), ElementsAre("shared"));
  page = store_->ListSessions("acme", 10, "");
  ASSERT_THAT(page, IsOk());
  EXPECT_THAT(SessionIds(page->sessions), ElementsAre("acme-only", "shared"));

  absl::StatusOr<StoreStats> stats = store_->GetStats("globex");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 1);
  EXPECT_EQ(stats->total_messages, 2);
  EXPECT_EQ(stats->total_input_tokens, 10);
  EXPECT_EQ(stats->total_output_tokens, 20);

  // Writes in one tenant leave the other alone.
  EXPECT_THAT(store_->ResetSession({"acme", "shared"}, At(30)),
              IsOkAndHolds(2));
  EXPECT_THAT(store_->DeleteSession({"acme", "acme-only"}), IsOkAndHolds(true));
  EXPECT_THAT(store_->DeleteSession({"globex", "acme-only"}),
              IsOkAndHolds(false));
  EXPECT_THAT(store_->LoadHistory({"globex", "shared"}),
              IsOkAndHolds(SizeIs(2)));
  stats = store_->GetStats("globex");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_input_tokens, 10);
}

TEST_P(ConversationStoreTest, GetStatsTotalsStoredTurns) {
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 0);
  EXPECT_EQ(stats->total_messages, 0);
  EXPECT_EQ(stats->total_input_tokens, 0);
  EXPECT_EQ(stats->total_output_tokens, 0);

  ASSERT_EQ(Append({"acme", "a"}, 0, MakeTurn("q", "a", At(1), 100, 10)), 1);
  ASSERT_EQ(Append({"acme", "a"}, 1, MakeTurn("q", "a", At(2), 200, 20)), 2);
  ASSERT_EQ(Append({"acme", "b"}, 0, MakeTurn("q", "a", At(3), 300, 30)), 1);
  // Beyond 32 bits, to catch a narrowing on the way.
  ASSERT_EQ(
      Append({"acme", "c"}, 0, MakeTurn("q", "a", At(4), int64_t{1} << 40, 1)),
      1);

  stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 3);
  EXPECT_EQ(stats->total_messages, 8);
  EXPECT_EQ(stats->total_input_tokens, 600 + (int64_t{1} << 40));
  EXPECT_EQ(stats->total_output_tokens, 61);

  ASSERT_THAT(store_->DeleteSession({"acme", "c"}), IsOk());
  ASSERT_THAT(store_->ResetSession({"acme", "b"}, At(5)), IsOk());
  stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 2);
  EXPECT_EQ(stats->total_messages, 4);
  EXPECT_EQ(stats->total_input_tokens, 300);
  EXPECT_EQ(stats->total_output_tokens, 30);
}

TEST_P(ConversationStoreTest, ConcurrentAppendersNeitherLoseNorSplitTurns) {
  constexpr int kThreads = 4;
  constexpr int kTurnsPerThread = 15;
  const SessionKey key{"acme", "busy"};

  // Released together, and yielding between read and append, so the
  // threads really race and the retry path runs.
  absl::Notification start;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &key, &start] {
      start.WaitForNotification();
      for (int i = 0; i < kTurnsPerThread; ++i) {
        const std::string question = absl::StrCat("t", t, "-", i);
        // What a caller does: read the count, append at it, and on kAborted
        // (another writer got there first) read again.
        for (int attempt = 0;; ++attempt) {
          ASSERT_LT(attempt, 10'000) << "no progress";
          absl::StatusOr<SessionInfo> info = store_->GetSession(key);
          int count = 0;
          if (info.ok()) {
            count = info->turn_count;
          } else {
            ASSERT_THAT(info, StatusIs(absl::StatusCode::kNotFound));
          }
          std::this_thread::yield();
          absl::StatusOr<StoredTurn> appended = store_->AppendTurn(
              key, count, "prompt",
              MakeTurn(question, "re: " + question, At(count), 1, 2));
          if (appended.ok()) {
            EXPECT_EQ(appended->turn_count, count + 1);
            break;
          }
          ASSERT_THAT(appended, StatusIs(absl::StatusCode::kAborted));
        }
      }
    });
  }
  start.Notify();
  for (std::thread& thread : threads) thread.join();

  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(2 * kThreads * kTurnsPerThread));
  std::set<std::string> questions;
  std::vector<int> next_turn_of_thread(kThreads, 0);
  for (size_t i = 0; i < history->size(); i += 2) {
    const StoredMessage& user = (*history)[i];
    const StoredMessage& assistant = (*history)[i + 1];
    ASSERT_EQ(user.role, "user") << "at " << i;
    ASSERT_EQ(assistant.role, "assistant") << "at " << i + 1;
    EXPECT_EQ(assistant.content, "re: " + user.content) << "at " << i + 1;
    EXPECT_TRUE(questions.insert(user.content).second)
        << "duplicate " << user.content;
    // Each thread's turns appear in the order it appended them.
    int t = 0, n = 0;
    ASSERT_EQ(sscanf(user.content.c_str(), "t%d-%d", &t, &n), 2);
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    EXPECT_EQ(n, next_turn_of_thread[t]++) << user.content;
  }
  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->turn_count, kThreads * kTurnsPerThread);
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_input_tokens, kThreads * kTurnsPerThread);
  EXPECT_EQ(stats->total_output_tokens, 2 * kThreads * kTurnsPerThread);
}

TEST_P(ConversationStoreTest, AssistantMessagesCarryTheirOutputTokens) {
  Turn turn = MakeTurn("question", "answer", At(10));
  turn.input_tokens = 30;
  turn.output_tokens = 7;
  ASSERT_EQ(Append({"acme", "t"}, 0, turn), 1);
  absl::StatusOr<std::vector<StoredMessage>> history =
      store_->LoadHistory({"acme", "t"});
  ASSERT_THAT(history, IsOk());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[0].tokens, 0);  // Unknown for a user message.
  EXPECT_EQ((*history)[1].tokens, 7);
}

TEST_P(ConversationStoreTest, RetentionSweepDeletesOnlyIdleSessions) {
  ASSERT_EQ(Append({"acme", "old"}, 0, MakeTurn("a", "b", At(10))), 1);
  ASSERT_EQ(Append({"other", "old"}, 0, MakeTurn("a", "b", At(20))), 1);
  ASSERT_EQ(Append({"acme", "recent"}, 0, MakeTurn("a", "b", At(10))), 1);
  ASSERT_EQ(Append({"acme", "recent"}, 1, MakeTurn("c", "d", At(40))), 2);
  ASSERT_EQ(Append({"acme", "edge"}, 0, MakeTurn("a", "b", At(30))), 1);

  // Strictly before the cutoff: "edge", updated exactly at it, stays.
  absl::StatusOr<int64_t> deleted = store_->DeleteSessionsIdleSince(At(30));
  ASSERT_THAT(deleted, IsOk());
  EXPECT_EQ(*deleted, 2);
  EXPECT_THAT(store_->GetSession({"acme", "old"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->GetSession({"other", "old"}),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->LoadHistory({"acme", "recent"}), IsOk());
  EXPECT_THAT(store_->GetSession({"acme", "edge"}), IsOk());
  // A deleted session can start again from nothing.
  EXPECT_EQ(Append({"acme", "old"}, 0, MakeTurn("again", "x", At(50))), 1);
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_sessions, 3);
  EXPECT_EQ(stats->total_messages, 8);
}

// Branches. A session of three linear turns (ids 1, 2, 3), then versions of
// its turns: each edit or regeneration is a sibling of the turn it
// replaces, and the active branch is what LoadHistory and the turn count
// speak of.
std::vector<std::string> Contents(const std::vector<StoredMessage>& messages) {
  std::vector<std::string> contents;
  for (const StoredMessage& m : messages) contents.push_back(m.content);
  return contents;
}

TEST_P(ConversationStoreTest, LinearTurnsAreOneBranch) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("q1", "a1", At(10))), 1);
  ASSERT_EQ(Append(key, 1, MakeTurn("q2", "a2", At(20))), 2);
  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(4));
  EXPECT_EQ((*history)[0].turn_id, 1);
  EXPECT_EQ((*history)[0].parent_turn_id, 0);
  EXPECT_EQ((*history)[1].turn_id, 1);
  EXPECT_EQ((*history)[2].turn_id, 2);
  EXPECT_EQ((*history)[3].parent_turn_id, 1);
  EXPECT_THAT((*history)[2].sibling_turn_ids, ElementsAre(2));
}

TEST_P(ConversationStoreTest, BranchTurnIsASiblingAndBecomesActive) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("q1", "a1", At(10), 1, 2)), 1);
  ASSERT_EQ(Append(key, 1, MakeTurn("q2", "a2", At(20), 1, 2)), 2);
  ASSERT_EQ(Append(key, 2, MakeTurn("q3", "a3", At(30), 1, 2)), 3);

  // Edit turn 2: a new turn under turn 1.
  absl::StatusOr<StoredTurn> edited =
      store_->AppendBranchTurn(key, 1, MakeTurn("q2'", "a2'", At(40), 1, 2));
  ASSERT_THAT(edited, IsOk());
  EXPECT_EQ(edited->turn_id, 4);
  EXPECT_EQ(edited->turn_count, 2);

  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(Contents(*history), ElementsAre("q1", "a1", "q2'", "a2'"));
  EXPECT_THAT((*history)[0].sibling_turn_ids, ElementsAre(1));
  EXPECT_THAT((*history)[2].sibling_turn_ids, ElementsAre(2, 4));
  EXPECT_THAT((*history)[3].sibling_turn_ids, ElementsAre(2, 4));
  EXPECT_EQ((*history)[3].turn_id, 4);
  EXPECT_EQ((*history)[3].parent_turn_id, 1);

  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->turn_count, 2);
  EXPECT_EQ(info->updated_at, At(40));

  // Every stored turn counts in the stats, on any branch.
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_messages, 8);
  EXPECT_EQ(stats->total_input_tokens, 4);

  // The old branch is still there.
  absl::StatusOr<std::vector<StoredMessage>> old = store_->LoadBranch(key, 3);
  ASSERT_THAT(old, IsOk());
  EXPECT_THAT(Contents(*old), ElementsAre("q1", "a1", "q2", "a2", "q3", "a3"));
}

TEST_P(ConversationStoreTest, AppendTurnExtendsTheActiveBranch) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("q1", "a1", At(10))), 1);
  ASSERT_EQ(Append(key, 1, MakeTurn("q2", "a2", At(20))), 2);
  ASSERT_THAT(store_->AppendBranchTurn(key, 0, MakeTurn("r1", "b1", At(30))),
              IsOk());  // Turn 3, a new first turn.
  // The active branch has one turn now: expecting two is a conflict.
  EXPECT_THAT(store_->AppendTurn(key, 2, "", MakeTurn("x", "y", At(40))),
              StatusIs(absl::StatusCode::kAborted));
  EXPECT_EQ(Append(key, 1, MakeTurn("r2", "b2", At(50))), 2);
  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(Contents(*history), ElementsAre("r1", "b1", "r2", "b2"));
  EXPECT_EQ((*history)[2].turn_id, 4);
  EXPECT_EQ((*history)[2].parent_turn_id, 3);
  EXPECT_THAT((*history)[0].sibling_turn_ids, ElementsAre(1, 3));
}

TEST_P(ConversationStoreTest, SwitchBranchFollowsTheNewestChildDown) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("q1", "a1", At(10))), 1);
  ASSERT_EQ(Append(key, 1, MakeTurn("q2", "a2", At(20))), 2);
  ASSERT_EQ(Append(key, 2, MakeTurn("q3", "a3", At(30))), 3);
  // Turn 4 replaces turn 2; then the old branch gets a new version of
  // turn 3 (turn 5, under 2) after switching to it.
  ASSERT_THAT(store_->AppendBranchTurn(key, 1, MakeTurn("e2", "f2", At(40))),
              IsOk());
  EXPECT_THAT(store_->SwitchBranch(key, 2), IsOkAndHolds(3));
  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(Contents(*history),
              ElementsAre("q1", "a1", "q2", "a2", "q3", "a3"));
  ASSERT_THAT(store_->AppendBranchTurn(key, 2, MakeTurn("e3", "f3", At(50))),
              IsOk());
  // Back to 4 and again to 2: the newest child of 2 is 5 now.
  EXPECT_THAT(store_->SwitchBranch(key, 4), IsOkAndHolds(2));
  EXPECT_THAT(store_->SwitchBranch(key, 2), IsOkAndHolds(3));
  history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(Contents(*history),
              ElementsAre("q1", "a1", "q2", "a2", "e3", "f3"));
  EXPECT_THAT((*history)[4].sibling_turn_ids, ElementsAre(3, 5));
  // A switch changes what is shown, not when the session was last active.
  absl::StatusOr<SessionInfo> info = store_->GetSession(key);
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->updated_at, At(50));
  EXPECT_EQ(info->turn_count, 3);
}

TEST_P(ConversationStoreTest, UnknownTurnsAreNotFound) {
  const SessionKey key{"acme", "s1"};
  EXPECT_THAT(store_->SwitchBranch(key, 1),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->AppendBranchTurn(key, 0, MakeTurn("q", "a", At(1))),
              StatusIs(absl::StatusCode::kNotFound));
  ASSERT_EQ(Append(key, 0, MakeTurn("q1", "a1", At(10))), 1);
  EXPECT_THAT(store_->SwitchBranch(key, 2),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->LoadBranch(key, 2),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->LoadBranch(key, 0),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->AppendBranchTurn(key, 7, MakeTurn("q", "a", At(20))),
              StatusIs(absl::StatusCode::kNotFound));
  // Another tenant's session of the same name has no turns to switch to.
  EXPECT_THAT(store_->SwitchBranch({"other", "s1"}, 1),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  EXPECT_THAT(Contents(*history), ElementsAre("q1", "a1"));
}

TEST_P(ConversationStoreTest, ResetDropsEveryBranchAndRestartsIds) {
  const SessionKey key{"acme", "s1"};
  ASSERT_EQ(Append(key, 0, MakeTurn("q1", "a1", At(10))), 1);
  ASSERT_THAT(store_->AppendBranchTurn(key, 0, MakeTurn("r1", "b1", At(20))),
              IsOk());
  EXPECT_THAT(store_->ResetSession(key, At(30)), IsOkAndHolds(1));
  absl::StatusOr<StoreStats> stats = store_->GetStats("acme");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ(stats->total_messages, 0);
  ASSERT_EQ(Append(key, 0, MakeTurn("n1", "m1", At(40))), 1);
  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(2));
  EXPECT_EQ((*history)[0].turn_id, 1);
  EXPECT_THAT((*history)[0].sibling_turn_ids, ElementsAre(1));
}

INSTANTIATE_TEST_SUITE_P(
    AllStores, ConversationStoreTest, ::testing::ValuesIn(Stores()),
    [](const ::testing::TestParamInfo<StoreFactory>& info) {
      return info.param.name;
    });

// OpenConversationStore's URL forms; opening each kind is covered above.
TEST(OpenConversationStoreTest, RejectsUnknownUrls) {
  for (const char* url : {"", "memory:", "Memory", "sqlite",
                          "sqlite:", "mysql://db/chat", "file:/tmp/chat.db"}) {
    SCOPED_TRACE(url);
    EXPECT_THAT(
        OpenConversationStore(url),
        StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sqlite:PATH")));
  }
}

TEST(OpenConversationStoreTest, UnknownUrlErrorCarriesNoPassword) {
  absl::StatusOr<std::unique_ptr<ConversationStore>> store =
      OpenConversationStore("mysql://chat:hunter2@db/chat");
  EXPECT_THAT(store, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store.status().message(), Not(HasSubstr("hunter2")));
}

// Logs name the store through RedactStoreUrl: every password form libpq
// reads is masked, everything else is kept for the operator.
struct RedactCase {
  const char* name;
  const char* url;
  const char* redacted;
};

class RedactStoreUrlTest : public ::testing::TestWithParam<RedactCase> {};

TEST_P(RedactStoreUrlTest, MasksPasswordsOnly) {
  EXPECT_EQ(RedactStoreUrl(GetParam().url), GetParam().redacted);
}

INSTANTIATE_TEST_SUITE_P(
    Urls, RedactStoreUrlTest,
    ::testing::Values(
        RedactCase{"Memory", "memory", "memory"},
        RedactCase{"Sqlite", "sqlite:./data/chat.db", "sqlite:./data/chat.db"},
        RedactCase{"UrlWithoutPassword", "postgres://chat@db:5432/chat",
                   "postgres://chat@db:5432/chat"},
        RedactCase{"UrlUserinfoPassword",
                   "postgres://chat:hunter2@db:5432/chat",
                   "postgres://chat:***@db:5432/chat"},
        RedactCase{"UrlPasswordWithAt", "postgresql://chat:p@ss@db/chat",
                   "postgresql://chat:***@db/chat"},
        RedactCase{"UrlPasswordParameter",
                   "postgres://db/chat?sslmode=require&password=hunter2&x=1",
                   "postgres://db/chat?sslmode=require&password=***&x=1"},
        RedactCase{"KeyValue", "postgres:host=db user=chat password=hunter2",
                   "postgres:host=db user=chat password=***"},
        RedactCase{"KeyValueSpaces", "postgres:password = hunter2 dbname=chat",
                   "postgres:password = *** dbname=chat"},
        RedactCase{"KeyValueQuoted",
                   "postgres:password='hunter 2\\'x' dbname=chat",
                   "postgres:password=*** dbname=chat"},
        RedactCase{"OtherScheme", "mysql://chat:hunter2@db/chat",
                   "mysql://chat:***@db/chat"},
        RedactCase{"KeyValueNoPassword", "postgresql:host=db dbname=chat",
                   "postgresql:host=db dbname=chat"}),
    [](const ::testing::TestParamInfo<RedactCase>& info) {
      return std::string(info.param.name);
    });

}  // namespace
}  // namespace chat::store
