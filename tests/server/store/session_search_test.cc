// Titles (SetTitle) and SearchMessages, on every store: memory, a SQLite
// file, SQLite in memory, and PostgreSQL when CHAT_TEST_POSTGRES_DSN is set
// (a fresh schema per test), each opened through OpenConversationStore()
// as the server opens it.
//
// The stores match words differently (FTS5, PostgreSQL text search, a
// substring in memory), so the tests use queries on which they agree: whole
// words, in any case. Ranking is checked with a message that should win on
// every ranking function (the word several times in a short message against
// once in a long one), made the older of the two so recency cannot explain
// the order.

#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <set>
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
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

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

std::string Marked(absl::string_view word) {
  return absl::StrCat(kMatchStart, word, kMatchEnd);
}

class SessionSearchTest : public ::testing::TestWithParam<StoreFactory> {
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
    std::string pattern = ::testing::TempDir() + "session_search_test.XXXXXX";
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

  // Appends turns ("user i", "reply i") to a new session, one per pair.
  void AddSession(const SessionKey& key,
                  const std::vector<std::pair<std::string, std::string>>& turns,
                  int64_t start_us) {
    for (size_t i = 0; i < turns.size(); ++i) {
      ASSERT_THAT(
          store_->AppendTurn(key, static_cast<int>(i), "prompt",
                             MakeTurn(turns[i].first, turns[i].second,
                                      At(start_us + static_cast<int64_t>(i)))),
          IsOk());
    }
  }

  SearchPage Search(absl::string_view tenant, absl::string_view query,
                    int page_size = 20, absl::string_view token = "") {
    absl::StatusOr<SearchPage> page =
        store_->SearchMessages(tenant, query, page_size, token);
    EXPECT_THAT(page, IsOk());
    return page.ok() ? *std::move(page) : SearchPage();
  }

  std::string dir_;
  std::unique_ptr<ConversationStore> store_;
};

TEST_P(SessionSearchTest, NewSessionHasNoTitle) {
  AddSession({"acme", "s1"}, {{"hi", "hello"}}, 10);
  absl::StatusOr<SessionInfo> info = store_->GetSession({"acme", "s1"});
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->title, "");
}

TEST_P(SessionSearchTest, SetTitleShowsInGetAndListWithoutReordering) {
  AddSession({"acme", "old"}, {{"a", "b"}}, 10);
  AddSession({"acme", "new"}, {{"c", "d"}}, 20);
  EXPECT_THAT(store_->SetTitle({"acme", "old"}, "Trip to Café Ümlaut", false),
              ::chat::testing::IsOkAndHolds(true));

  absl::StatusOr<SessionInfo> info = store_->GetSession({"acme", "old"});
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->title, "Trip to Café Ümlaut");
  EXPECT_EQ(info->updated_at, At(10));
  absl::StatusOr<SessionPage> page = store_->ListSessions("acme", 10, "");
  ASSERT_THAT(page, IsOk());
  ASSERT_THAT(page->sessions, SizeIs(2));
  EXPECT_EQ(page->sessions[0].session_id, "new");
  EXPECT_EQ(page->sessions[0].title, "");
  EXPECT_EQ(page->sessions[1].title, "Trip to Café Ümlaut");
}

TEST_P(SessionSearchTest, OnlyIfUntitledNeverReplacesATitle) {
  AddSession({"acme", "s1"}, {{"a", "b"}}, 10);
  EXPECT_THAT(store_->SetTitle({"acme", "s1"}, "first", true),
              ::chat::testing::IsOkAndHolds(true));
  EXPECT_THAT(store_->SetTitle({"acme", "s1"}, "generated", true),
              ::chat::testing::IsOkAndHolds(false));
  EXPECT_THAT(store_->SetTitle({"acme", "s1"}, "renamed", false),
              ::chat::testing::IsOkAndHolds(true));
  absl::StatusOr<SessionInfo> info = store_->GetSession({"acme", "s1"});
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->title, "renamed");
}

TEST_P(SessionSearchTest, SetTitleOfMissingSessionIsNotFound) {
  AddSession({"acme", "s1"}, {{"a", "b"}}, 10);
  EXPECT_THAT(store_->SetTitle({"acme", "missing"}, "x", false),
              StatusIs(absl::StatusCode::kNotFound));
  // Another tenant's session of the same id is not found either.
  EXPECT_THAT(store_->SetTitle({"other", "s1"}, "x", false),
              StatusIs(absl::StatusCode::kNotFound));
  absl::StatusOr<SessionInfo> info = store_->GetSession({"acme", "s1"});
  ASSERT_THAT(info, IsOk());
  EXPECT_EQ(info->title, "");
}

TEST_P(SessionSearchTest, FindsMessagesWithMarkedSnippets) {
  AddSession({"acme", "s1"},
             {{"Where does the quick brown fox sleep?", "In its den."},
              {"And the bear?", "The bear sleeps in a cave."}},
             10);
  ASSERT_THAT(store_->SetTitle({"acme", "s1"}, "Animals", false), IsOk());

  SearchPage page = Search("acme", "FOX");
  ASSERT_THAT(page.hits, SizeIs(1));
  const SearchHit& hit = page.hits[0];
  EXPECT_EQ(hit.session_id, "s1");
  EXPECT_EQ(hit.session_title, "Animals");
  EXPECT_EQ(hit.message_index, 0);
  EXPECT_EQ(hit.role, "user");
  EXPECT_EQ(hit.created_at, At(10));
  EXPECT_THAT(hit.snippet, HasSubstr(Marked("fox")));
  EXPECT_THAT(hit.snippet, HasSubstr("quick brown"));
  EXPECT_TRUE(page.next_page_token.empty());

  page = Search("acme", "cave");
  ASSERT_THAT(page.hits, SizeIs(1));
  EXPECT_EQ(page.hits[0].message_index, 3);
  EXPECT_EQ(page.hits[0].role, "assistant");
}

TEST_P(SessionSearchTest, EveryWordMustOccur) {
  AddSession({"acme", "s1"}, {{"apple and banana", "ok"}, {"apple only", "ok"}},
             10);
  SearchPage page = Search("acme", "banana apple");
  ASSERT_THAT(page.hits, SizeIs(1));
  EXPECT_EQ(page.hits[0].message_index, 0);
  EXPECT_THAT(Search("acme", "cherry").hits, IsEmpty());
}

TEST_P(SessionSearchTest, NeverReturnsAnotherTenantsMessages) {
  AddSession({"acme", "shared-id"}, {{"secret plan zebra", "noted"}}, 10);
  AddSession({"globex", "shared-id"}, {{"public zebra facts", "noted"}}, 20);
  AddSession({"globex", "g2"}, {{"zebra again", "noted"}}, 30);

  SearchPage acme = Search("acme", "zebra");
  ASSERT_THAT(acme.hits, SizeIs(1));
  EXPECT_THAT(acme.hits[0].snippet, HasSubstr("secret"));
  SearchPage globex = Search("globex", "zebra");
  ASSERT_THAT(globex.hits, SizeIs(2));
  for (const SearchHit& hit : globex.hits) {
    EXPECT_THAT(hit.snippet, Not(HasSubstr("secret")));
  }
  EXPECT_THAT(Search("initech", "zebra").hits, IsEmpty());
  EXPECT_THAT(Search("", "zebra").hits, IsEmpty());
}

TEST_P(SessionSearchTest, RanksBetterMatchesFirst) {
  // The strong match is older, so recency alone would put it last.
  AddSession({"acme", "strong"}, {{"kiwi kiwi kiwi kiwi", "ok"}}, 10);
  AddSession({"acme", "weak"},
             {{"today I bought bread, milk, eggs, cheese, butter, apples, "
               "pears, a kiwi, rice, beans, onions and some garlic",
               "ok"}},
             20);
  SearchPage page = Search("acme", "kiwi");
  ASSERT_THAT(page.hits, SizeIs(2));
  EXPECT_EQ(page.hits[0].session_id, "strong");
  EXPECT_EQ(page.hits[1].session_id, "weak");
}

TEST_P(SessionSearchTest, PagesThroughEveryHitOnce) {
  for (int i = 0; i < 5; ++i) {
    AddSession({"acme", absl::StrCat("s", i)},
               {{absl::StrCat("needle number ", i), "ok"}}, 10 * (i + 1));
  }
  std::set<std::string> seen;
  std::string token;
  std::vector<size_t> sizes;
  for (int pages = 0; pages < 10; ++pages) {
    SearchPage page = Search("acme", "needle", 2, token);
    sizes.push_back(page.hits.size());
    for (const SearchHit& hit : page.hits) seen.insert(hit.session_id);
    token = page.next_page_token;
    if (token.empty()) break;
  }
  EXPECT_THAT(sizes, ElementsAre(2, 2, 1));
  EXPECT_THAT(seen, SizeIs(5));
}

TEST_P(SessionSearchTest, TokenOfAnotherQueryOrGarbageIsInvalid) {
  for (int i = 0; i < 3; ++i) {
    AddSession({"acme", absl::StrCat("s", i)}, {{"needle hay", "ok"}}, i + 1);
  }
  SearchPage page = Search("acme", "needle", 1);
  ASSERT_FALSE(page.next_page_token.empty());
  EXPECT_THAT(store_->SearchMessages("acme", "hay", 1, page.next_page_token),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SearchMessages("acme", "needle", 1, "garbage!"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A list token is not a search token.
  absl::StatusOr<SessionPage> list = store_->ListSessions("acme", 1, "");
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(
      store_->SearchMessages("acme", "needle", 1, list->next_page_token),
      StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(store_->SearchMessages("acme", "needle", 0, ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_P(SessionSearchTest, DeletedAndResetMessagesAreNotFound) {
  AddSession({"acme", "gone"}, {{"walrus one", "ok"}}, 10);
  AddSession({"acme", "reset"}, {{"walrus two", "ok"}}, 20);
  AddSession({"acme", "kept"}, {{"walrus three", "ok"}}, 30);
  ASSERT_THAT(store_->DeleteSession({"acme", "gone"}), IsOk());
  ASSERT_THAT(store_->ResetSession({"acme", "reset"}, At(40)), IsOk());
  SearchPage page = Search("acme", "walrus");
  ASSERT_THAT(page.hits, SizeIs(1));
  EXPECT_EQ(page.hits[0].session_id, "kept");
  // A session appended after a reset is found again.
  ASSERT_THAT(store_->AppendTurn({"acme", "reset"}, 0, "",
                                 MakeTurn("walrus four", "ok", At(50))),
              IsOk());
  EXPECT_THAT(Search("acme", "walrus").hits, SizeIs(2));
}

// Every branch is searched: an edited turn's new version (AppendBranchTurn)
// and the version it replaced. message_index counts turns in the order
// stored, so its turn is message_index / 2 + 1, which names the branch to
// show; it is the GetHistory index only while the session has one branch.
TEST_P(SessionSearchTest, FindsMessagesOfEveryBranch) {
  const SessionKey key{"acme", "b"};
  AddSession(key,
             {{"first question", "first answer"},
              {"second about otters", "reply about otters"}},
             10);
  absl::StatusOr<StoredTurn> edited = store_->AppendBranchTurn(
      key, 1, MakeTurn("second about beavers", "reply about beavers", At(30)));
  ASSERT_THAT(edited, IsOk());
  ASSERT_EQ(edited->turn_id, 3);

  SearchPage page = Search("acme", "beavers");
  ASSERT_THAT(page.hits, SizeIs(2));
  for (const SearchHit& hit : page.hits) {
    EXPECT_EQ(hit.message_index / 2 + 1, edited->turn_id);
  }
  absl::StatusOr<std::vector<StoredMessage>> history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(4));
  EXPECT_EQ((*history)[2].turn_id, edited->turn_id);
  EXPECT_EQ((*history)[2].content, "second about beavers");

  // The replaced version, on the branch no longer active, is found too.
  page = Search("acme", "otters");
  ASSERT_THAT(page.hits, SizeIs(2));
  std::set<int64_t> indexes;
  for (const SearchHit& hit : page.hits) indexes.insert(hit.message_index);
  EXPECT_THAT(indexes, ElementsAre(2, 3));
  ASSERT_THAT(store_->SwitchBranch(key, 2), IsOk());
  history = store_->LoadHistory(key);
  ASSERT_THAT(history, IsOk());
  ASSERT_THAT(*history, SizeIs(4));
  // Back on one branch's worth of turns 1 and 2, the indexes match again.
  EXPECT_EQ((*history)[2].content, "second about otters");
  EXPECT_EQ((*history)[3].content, "reply about otters");
}

TEST_P(SessionSearchTest, QueryOperatorsAndMarkupAreSearchedAsText) {
  AddSession({"acme", "s1"},
             {{"<img src=x onerror=alert(1)> payload word", "ok"}}, 10);
  // Quotes, parentheses and stars must not be query syntax errors.
  for (absl::string_view query : {"\"payload", "payload)", "payload*",
                                  "AND payload", "NEAR(payload", "-", "\"\""}) {
    EXPECT_THAT(store_->SearchMessages("acme", query, 10, ""), IsOk()) << query;
  }
  SearchPage page = Search("acme", "payload");
  ASSERT_THAT(page.hits, SizeIs(1));
  // The store does not escape: the snippet is text, for the client to show
  // as text.
  EXPECT_THAT(page.hits[0].snippet, HasSubstr("onerror"));
}

INSTANTIATE_TEST_SUITE_P(AllStores, SessionSearchTest,
                         ::testing::ValuesIn(Stores()),
                         [](const ::testing::TestParamInfo<StoreFactory>& i) {
                           return i.param.name;
                         });

}  // namespace
}  // namespace chat::store
