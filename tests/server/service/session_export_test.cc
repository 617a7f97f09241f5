// The API form of an exported session: ToSessionExport and FromSessionExport
// invert each other, a bad export is refused with the field named as the
// REST body spells it (one table row per rule), and the Markdown shows the
// active branch only.

#include "server/service/session_export.h"

#include <functional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

absl::Time At(int64_t micros) {
  return absl::FromUnixSeconds(1'700'000'000) + absl::Microseconds(micros);
}

// 1 - 2, and 3 under 1 (a version of 2); 3 active.
store::SessionArchive SampleArchive() {
  store::SessionArchive archive;
  archive.session_id = "s1";
  archive.system_prompt = "be brief\nand kind";
  archive.title = "Greetings";
  archive.created_at = At(1);
  archive.updated_at = At(30);
  archive.active_turn_id = 3;
  for (int id = 1; id <= 3; ++id) {
    store::ArchivedTurn& turn = archive.turns.emplace_back();
    turn.turn_id = id;
    turn.parent_turn_id = id == 1 ? 0 : 1;
    turn.created_at = At(10 * id);
    turn.user_message = absl::StrCat("question ", id);
    turn.assistant_message = absl::StrCat("answer ", id);
    turn.model = "m";
    turn.stop_reason = "end_turn";
    turn.input_tokens = id;
    turn.output_tokens = 2 * id;
    if (id == 1) turn.cost_usd = 0.25;
  }
  return archive;
}

TEST(SessionExportTest, WritesEveryMessageInTurnOrder) {
  chat::v1::SessionExport out = ToSessionExport(SampleArchive());
  EXPECT_EQ(out.format_version(), kSessionExportFormatVersion);
  EXPECT_EQ(out.created_at(), "2023-11-14T22:13:20.000001Z");
  ASSERT_EQ(out.messages_size(), 6);
  EXPECT_EQ(out.messages(0).role(), "user");
  EXPECT_EQ(out.messages(1).role(), "assistant");
  EXPECT_EQ(out.messages(1).model(), "m");
  EXPECT_TRUE(out.messages(1).has_cost_usd());
  EXPECT_FALSE(out.messages(3).has_cost_usd());
  EXPECT_EQ(out.messages(4).turn_id(), 3);
  EXPECT_EQ(out.messages(4).parent_turn_id(), 1);
  EXPECT_EQ(out.messages(5).usage().output_tokens(), 6);
}

TEST(SessionExportTest, ReadsBackWhatItWrote) {
  const chat::v1::SessionExport out = ToSessionExport(SampleArchive());
  absl::StatusOr<store::SessionArchive> back = FromSessionExport(out);
  ASSERT_THAT(back, IsOk());
  // Written again, it is the same message: nothing was lost on the way.
  EXPECT_EQ(ToSessionExport(*back).SerializeAsString(),
            out.SerializeAsString());
}

struct BadExportCase {
  std::string name;
  std::function<void(chat::v1::SessionExport&)> spoil;
  std::string field;
};

class BadExportTest : public ::testing::TestWithParam<BadExportCase> {};

TEST_P(BadExportTest, IsRefusedNamingTheField) {
  chat::v1::SessionExport session = ToSessionExport(SampleArchive());
  GetParam().spoil(session);
  EXPECT_THAT(FromSessionExport(session),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().field + ":")));
}

INSTANTIATE_TEST_SUITE_P(
    Rules, BadExportTest,
    ::testing::Values(
        BadExportCase{"NewerFormat", [](auto& s) { s.set_format_version(2); },
                      "session.format_version"},
        BadExportCase{"BadSessionId", [](auto& s) { s.set_session_id("a b"); },
                      "session.session_id"},
        BadExportCase{"TitleWithControlCharacters",
                      [](auto& s) { s.set_title("a\x01"); }, "session.title"},
        BadExportCase{"LongSystemPrompt",
                      [](auto& s) {
                        s.set_system_prompt(std::string(
                            kMaxImportedSystemPromptBytes + 1, 'x'));
                      },
                      "session.system_prompt"},
        BadExportCase{"BadTime", [](auto& s) { s.set_created_at("yesterday"); },
                      "session.created_at"},
        BadExportCase{"HalfATurn",
                      [](auto& s) { s.mutable_messages()->RemoveLast(); },
                      "session.messages"},
        BadExportCase{
            "BadRole",
            [](auto& s) { s.mutable_messages(2)->set_role("system"); },
            "session.messages[2].role"},
        BadExportCase{
            "AssistantFirst",
            [](auto& s) { s.mutable_messages(0)->set_role("assistant"); },
            "session.messages[0].role"},
        BadExportCase{"TurnIdsOutOfOrder",
                      [](auto& s) { s.mutable_messages(2)->set_turn_id(7); },
                      "session.messages[2].turn_id"},
        BadExportCase{
            "UnknownParent",
            [](auto& s) { s.mutable_messages(4)->set_parent_turn_id(9); },
            "session.messages[4].parent_turn_id"},
        BadExportCase{
            "OwnParent",
            [](auto& s) { s.mutable_messages(2)->set_parent_turn_id(2); },
            "session.messages[2].parent_turn_id"},
        BadExportCase{
            "MessagesOfATurnDisagree",
            [](auto& s) { s.mutable_messages(5)->set_parent_turn_id(2); },
            "session.messages[5].parent_turn_id"},
        BadExportCase{"TimesOfATurnDisagree",
                      [](auto& s) {
                        s.mutable_messages(1)->set_timestamp(
                            "2020-01-01T00:00:00Z");
                      },
                      "session.messages[1].timestamp"},
        BadExportCase{"HugeMessage",
                      [](auto& s) {
                        s.mutable_messages(1)->set_content(
                            std::string(kMaxImportedMessageBytes + 1, 'x'));
                      },
                      "session.messages[1].content"},
        BadExportCase{
            "NegativeUsage",
            [](auto& s) {
              s.mutable_messages(1)->mutable_usage()->set_input_tokens(-1);
            },
            "session.messages[1].usage"},
        BadExportCase{"UnknownActiveTurn",
                      [](auto& s) { s.set_active_turn_id(4); },
                      "session.active_turn_id"}),
    [](const ::testing::TestParamInfo<BadExportCase>& info) {
      return info.param.name;
    });

TEST(SessionMarkdownTest, ShowsTheActiveBranchOnly) {
  const std::string markdown = RenderSessionMarkdown(SampleArchive());
  EXPECT_THAT(markdown, HasSubstr("# Greetings\n"));
  EXPECT_THAT(markdown, HasSubstr("> **System:** be brief\n> and kind\n"));
  EXPECT_THAT(markdown, HasSubstr("## User\n\nquestion 1\n"));
  EXPECT_THAT(markdown, HasSubstr("## Assistant (m)\n\nanswer 3\n"));
  EXPECT_THAT(markdown, Not(HasSubstr("question 2")));
  EXPECT_LT(markdown.find("question 1"), markdown.find("question 3"));
}

TEST(SessionMarkdownTest, UntitledSessionsAreHeadedByTheirId) {
  store::SessionArchive archive = SampleArchive();
  archive.title.clear();
  archive.system_prompt.clear();
  const std::string markdown = RenderSessionMarkdown(archive);
  EXPECT_THAT(markdown, HasSubstr("# s1\n"));
  EXPECT_THAT(markdown, Not(HasSubstr("System")));
}

}  // namespace
}  // namespace chat
