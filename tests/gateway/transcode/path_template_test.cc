// Path templates against the routes chat.proto declares, plus the edge
// cases of the google.api.http grammar we support.

#include "gateway/transcode/path_template.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

PathTemplate MustParse(absl::string_view text) {
  absl::StatusOr<PathTemplate> t = PathTemplate::Parse(text);
  EXPECT_TRUE(t.ok()) << t.status();
  return *t;
}

TEST(PathTemplateTest, RootMatchesOnlyRoot) {
  PathTemplate t = MustParse("/");
  std::vector<Binding> b;
  EXPECT_TRUE(t.Match("/", &b));
  EXPECT_FALSE(t.Match("/x", &b));
  EXPECT_FALSE(t.Match("", &b));
}

TEST(PathTemplateTest, LiteralPath) {
  PathTemplate t = MustParse("/v1/stats");
  std::vector<Binding> b;
  EXPECT_TRUE(t.Match("/v1/stats", &b));
  EXPECT_FALSE(t.Match("/v1/stats/", &b));
  EXPECT_FALSE(t.Match("/v1", &b));
  EXPECT_THAT(b, IsEmpty());
}

TEST(PathTemplateTest, BindsAndDecodesVariable) {
  PathTemplate t = MustParse("/history/{session_id}");
  std::vector<Binding> b;
  ASSERT_TRUE(t.Match("/history/a%20b", &b));
  EXPECT_THAT(b, ElementsAre(Pair("session_id", "a b")));
  EXPECT_FALSE(t.Match("/history/", &b));
  EXPECT_FALSE(t.Match("/history/a/b", &b));
}

TEST(PathTemplateTest, VerbIsStrippedFromTheEnd) {
  PathTemplate t = MustParse("/v1/sessions/{session_id}:reset");
  std::vector<Binding> b;
  // Session ids may contain ':', so only the suffix is the verb.
  ASSERT_TRUE(t.Match("/v1/sessions/user:42:reset", &b));
  EXPECT_THAT(b, ElementsAre(Pair("session_id", "user:42")));
  EXPECT_FALSE(t.Match("/v1/sessions/x", &b));
}

TEST(PathTemplateTest, VerbOnLiteral) {
  PathTemplate t = MustParse("/v1/chat:stream");
  std::vector<Binding> b;
  EXPECT_TRUE(t.Match("/v1/chat:stream", &b));
  EXPECT_FALSE(t.Match("/v1/chat", &b));
  EXPECT_FALSE(t.Match("/v1/chat:streamx", &b));
}

TEST(PathTemplateTest, VariableInTheMiddle) {
  PathTemplate t = MustParse("/v1/sessions/{session_id}/history");
  std::vector<Binding> b;
  ASSERT_TRUE(t.Match("/v1/sessions/s1/history", &b));
  EXPECT_THAT(b, ElementsAre(Pair("session_id", "s1")));
  EXPECT_THAT(t.VariableNames(), ElementsAre("session_id"));
}

TEST(PathTemplateTest, DoubleWildcardTakesTheRest) {
  PathTemplate t = MustParse("/files/{name=**}");
  std::vector<Binding> b;
  ASSERT_TRUE(t.Match("/files/a/b/c", &b));
  EXPECT_THAT(b, ElementsAre(Pair("name", "a/b/c")));
}

TEST(PathTemplateTest, RejectsMalformedTemplates) {
  EXPECT_FALSE(PathTemplate::Parse("v1/x").ok());
  EXPECT_FALSE(PathTemplate::Parse("/v1//x").ok());
  EXPECT_FALSE(PathTemplate::Parse("/v1/{x").ok());
  EXPECT_FALSE(PathTemplate::Parse("/v1/{x=a/b}").ok());
  EXPECT_FALSE(PathTemplate::Parse("/v1/**/x").ok());
}

// Found by tests/fuzz/path_template_fuzzer: "/a:" parsed with an empty verb
// and then matched "/a" but not "/a:" itself.
TEST(PathTemplateTest, RejectsAnEmptyVerb) {
  EXPECT_FALSE(PathTemplate::Parse("/v1/sessions:").ok());
  EXPECT_FALSE(PathTemplate::Parse("/v1/{x}:").ok());
  EXPECT_FALSE(PathTemplate::Parse("/:").ok());
}

TEST(QueryStringTest, SplitsAndDecodes) {
  EXPECT_THAT(ParseQueryString("page_size=5&page_token=a%2Bb&x=y+z&flag"),
              ElementsAre(Pair("page_size", "5"), Pair("page_token", "a+b"),
                          Pair("x", "y z"), Pair("flag", "")));
}

TEST(PercentDecodeTest, KeepsMalformedEscapes) {
  EXPECT_EQ(PercentDecode("%zz%4", false), "%zz%4");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
}

}  // namespace
}  // namespace chat::gateway
