// traceparent per W3C Trace Context, version 00, and the ids we make.

#include "common/trace_context.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat {
namespace {

constexpr char kExample[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(ParseTraceparentTest, ReadsTheSpecExample) {
  std::optional<TraceContext> context = ParseTraceparent(kExample);
  ASSERT_TRUE(context.has_value());
  EXPECT_EQ(context->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(context->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(context->flags, "01");
  EXPECT_EQ(FormatTraceparent(*context), kExample);
}

TEST(ParseTraceparentTest, RejectsWhatTheSpecRejects) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
       }) {
    EXPECT_FALSE(ParseTraceparent(bad).has_value()) << bad;
  }
}

TEST(ParseTraceparentTest, ReadsALaterVersionAsVersion00) {
  EXPECT_TRUE(ParseTraceparent(
                  "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                  .has_value());
  EXPECT_TRUE(ParseTraceparent(
                  "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz")
                  .has_value());
}

TEST(NewTraceContextTest, MakesValidDistinctIds) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    TraceContext context = NewTraceContext();
    std::optional<TraceContext> parsed =
        ParseTraceparent(FormatTraceparent(context));
    ASSERT_TRUE(parsed.has_value()) << FormatTraceparent(context);
    EXPECT_EQ(parsed->trace_id, context.trace_id);
    EXPECT_TRUE(seen.insert(context.trace_id).second);
    EXPECT_EQ(NewSpanId().size(), 16u);
  }
}

}  // namespace
}  // namespace chat
