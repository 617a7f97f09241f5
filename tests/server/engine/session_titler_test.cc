// SessionTitler and its text helpers. The titler runs on a real ThreadPool
// against the memory store and the scripted FakeLlmProvider; a test learns
// that the titler's work is over from WaitUntilIdle(), never by sleeping. A
// held provider call shows that shutdown cancels a title call still running.

#include "server/engine/session_titler.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "common/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/store/memory_store.h"
#include "tests/testing/fake_llm_provider.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/store_turns.h"

namespace chat {
namespace {

using ::chat::testing::FakeLlmProvider;
using ::chat::testing::FakeScript;
using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

struct TextCase {
  const char* name;
  std::string in;
  std::string out;
};

class TitleFromFirstWordsTest : public ::testing::TestWithParam<TextCase> {};

TEST_P(TitleFromFirstWordsTest, Makes) {
  EXPECT_EQ(TitleFromFirstWords(GetParam().in), GetParam().out);
}

INSTANTIATE_TEST_SUITE_P(
    Table, TitleFromFirstWordsTest,
    ::testing::Values(
        TextCase{"SixWords", "Plan a trip to Lisbon in spring, please",
                 "Plan a trip to Lisbon in"},
        TextCase{"Short", "hi", "hi"},
        TextCase{"FirstLineWithWords", "\n  \n  first line\nsecond",
                 "first line"},
        TextCase{"SpacesAndTabsCollapse", "a\t\tb   c", "a b c"},
        TextCase{"Empty", "   \n ", ""},
        TextCase{"LongWordCutAtACharacter",
                 std::string(58, 'x') + "\xC3\xA9\xC3\xA9",
                 std::string(58, 'x') + "\xC3\xA9"},
        TextCase{"Unicode", "Café crème brûlée", "Café crème brûlée"}),
    [](const ::testing::TestParamInfo<TextCase>& info) {
      return info.param.name;
    });

class CleanGeneratedTitleTest : public ::testing::TestWithParam<TextCase> {};

TEST_P(CleanGeneratedTitleTest, Cleans) {
  EXPECT_EQ(CleanGeneratedTitle(GetParam().in), GetParam().out);
}

INSTANTIATE_TEST_SUITE_P(
    Table, CleanGeneratedTitleTest,
    ::testing::Values(
        TextCase{"Plain", "Whale facts", "Whale facts"},
        TextCase{"Quoted", "\"Whale facts.\"", "Whale facts"},
        TextCase{"Prefix", "Title: **Whale facts**", "Whale facts"},
        TextCase{"CurlyQuotes", "\xE2\x80\x9CWhale facts\xE2\x80\x9D",
                 "Whale facts"},
        TextCase{"FirstLine", "\n\nWhale facts\nMore text", "Whale facts"},
        TextCase{"Nothing", " \"\" ", ""},
        TextCase{"Long", std::string(50, 'a') + " " + std::string(50, 'b'),
                 std::string(50, 'a')}),
    [](const ::testing::TestParamInfo<TextCase>& info) {
      return info.param.name;
    });

TEST(NormalizeTitleTest, TrimsAndChecks) {
  EXPECT_THAT(NormalizeTitle("  Lisbon 2026 "),
              ::chat::testing::IsOkAndHolds(std::string("Lisbon 2026")));
  EXPECT_THAT(NormalizeTitle(""),
              ::chat::testing::IsOkAndHolds(std::string("")));
  EXPECT_THAT(NormalizeTitle(std::string(200, 'x')), IsOk());
  EXPECT_THAT(NormalizeTitle(std::string(201, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("at most 200 bytes")));
  EXPECT_THAT(NormalizeTitle("a\nb"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("control characters")));
  EXPECT_THAT(NormalizeTitle("a\xC2\x85"
                             "b"),  // U+0085, a C1 control.
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NormalizeTitle("\xFF"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")));
}

class SessionTitlerTest : public ::testing::Test {
 protected:
  SessionTitlerTest() : pool_(2) {
    EXPECT_THAT(store_.AppendTurn(
                    key_, 0, "prompt",
                    ::chat::testing::MakeTurn("Which whale is the largest?",
                                              "The blue whale.", absl::Now())),
                IsOk());
  }

  std::unique_ptr<SessionTitler> MakeTitler(TitleOptions options) {
    options.enabled = true;
    return std::make_unique<SessionTitler>(&store_, &provider_, &pool_,
                                           std::move(options));
  }

  std::string Title() {
    absl::StatusOr<store::SessionInfo> info = store_.GetSession(key_);
    EXPECT_THAT(info, IsOk());
    return info.ok() ? info->title : "?";
  }

  ThreadPool pool_;
  store::MemoryConversationStore store_;
  FakeLlmProvider provider_;
  const store::SessionKey key_{"acme", "s1"};
};

TEST_F(SessionTitlerTest, AsksTheTitleModelAndStoresTheCleanedAnswer) {
  FakeScript script;
  script.deltas = {"\"Largest", " whales.\"\n"};
  provider_.SetScript(script);
  TitleOptions options;
  options.model = "cheap-model";
  std::unique_ptr<SessionTitler> titler = MakeTitler(options);
  titler->TitleFirstExchange(key_, "Which whale is the largest?",
                             "The blue whale.");
  titler->WaitUntilIdle();
  EXPECT_EQ(Title(), "Largest whales");
  const std::vector<llm::CompletionRequest> requests = provider_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const llm::CompletionRequest& request = requests[0];
  EXPECT_EQ(request.model, "cheap-model");
  EXPECT_THAT(request.system_prompt, HasSubstr("You name conversations"));
  ASSERT_EQ(request.messages.size(), 1u);
  EXPECT_THAT(request.messages[0].content,
              HasSubstr("Which whale is the largest?"));
  EXPECT_THAT(request.messages[0].content, HasSubstr("The blue whale."));
  EXPECT_NE(request.deadline, absl::InfiniteFuture());
  // Nobody watches a title arrive: it is asked for whole.
  EXPECT_FALSE(request.stream);
}

TEST_F(SessionTitlerTest, AFailedCallLeavesNoTitle) {
  FakeScript script;
  script.error = absl::UnavailableError("upstream down");
  provider_.SetScript(script);
  std::unique_ptr<SessionTitler> titler = MakeTitler({});
  titler->TitleFirstExchange(key_, "q", "a");
  titler->WaitUntilIdle();
  EXPECT_EQ(Title(), "");
}

TEST_F(SessionTitlerTest, AnEmptyAnswerLeavesNoTitle) {
  FakeScript script;
  script.deltas = {"  \n"};
  provider_.SetScript(script);
  std::unique_ptr<SessionTitler> titler = MakeTitler({});
  titler->TitleFirstExchange(key_, "q", "a");
  titler->WaitUntilIdle();
  EXPECT_EQ(Title(), "");
}

TEST_F(SessionTitlerTest, NeverReplacesATitleTheUserSet) {
  ASSERT_THAT(store_.SetTitle(key_, "Mine", false), IsOk());
  std::unique_ptr<SessionTitler> titler = MakeTitler({});
  titler->TitleFirstExchange(key_, "q", "a");
  titler->WaitUntilIdle();
  EXPECT_EQ(Title(), "Mine");
}

TEST_F(SessionTitlerTest, FirstWordsNeedNoModel) {
  TitleOptions options;
  options.from_first_words = true;
  std::unique_ptr<SessionTitler> titler = MakeTitler(options);
  titler->TitleFirstExchange(key_, "Which whale is the largest of them all?",
                             "reply");
  titler->WaitUntilIdle();
  EXPECT_EQ(Title(), "Which whale is the largest of");
  EXPECT_TRUE(provider_.requests().empty());
}

TEST_F(SessionTitlerTest, DisabledDoesNothing) {
  SessionTitler titler(&store_, &provider_, &pool_, TitleOptions{});
  titler.TitleFirstExchange(key_, "q", "a");
  titler.WaitUntilIdle();
  EXPECT_TRUE(provider_.requests().empty());
  EXPECT_EQ(Title(), "");
}

TEST_F(SessionTitlerTest, ShutdownCancelsARunningTitleCall) {
  FakeScript script;
  script.hold = true;
  provider_.SetScript(script);
  std::unique_ptr<SessionTitler> titler = MakeTitler({});
  titler->TitleFirstExchange(key_, "q", "a");
  provider_.WaitForStarted(1);
  titler.reset();  // Returns only once the cancelled call has ended.
  EXPECT_EQ(provider_.cancelled_calls(), 1);
  EXPECT_EQ(Title(), "");
}

}  // namespace
}  // namespace chat
