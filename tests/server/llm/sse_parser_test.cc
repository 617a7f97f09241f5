// SseParser is a pure function of its input. Strategy: each case of the table
// is fed whole, byte by byte, and split in two (and three) at every possible
// position; every way must give exactly the expected events.

#include "server/llm/sse_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::llm {
namespace {

struct SseCase {
  std::string name;
  std::string input;
  std::vector<SseEvent> expected;
};

std::vector<SseEvent> FeedInPieces(const std::string& input,
                                   const std::vector<size_t>& cuts) {
  SseParser parser;
  std::vector<SseEvent> events;
  size_t start = 0;
  for (size_t cut : cuts) {
    for (SseEvent& e : parser.Feed(input.substr(start, cut - start))) {
      events.push_back(std::move(e));
    }
    start = cut;
  }
  for (SseEvent& e : parser.Feed(input.substr(start)))
    events.push_back(std::move(e));
  return events;
}

class SseParserTest : public ::testing::TestWithParam<SseCase> {};

TEST_P(SseParserTest, WholeInput) {
  EXPECT_EQ(FeedInPieces(GetParam().input, {}), GetParam().expected);
}

TEST_P(SseParserTest, EverySplitInTwo) {
  const std::string& input = GetParam().input;
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    EXPECT_EQ(FeedInPieces(input, {cut}), GetParam().expected)
        << "cut at " << cut;
  }
}

TEST_P(SseParserTest, EverySplitInThree) {
  const std::string& input = GetParam().input;
  for (size_t a = 0; a <= input.size(); ++a) {
    for (size_t b = a; b <= input.size(); ++b) {
      ASSERT_EQ(FeedInPieces(input, {a, b}), GetParam().expected)
          << "cuts at " << a << ", " << b;
    }
  }
}

TEST_P(SseParserTest, ByteByByte) {
  const std::string& input = GetParam().input;
  std::vector<size_t> cuts;
  for (size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  EXPECT_EQ(FeedInPieces(input, cuts), GetParam().expected);
}

const std::string kBig(100000, 'x');

INSTANTIATE_TEST_SUITE_P(
    Cases, SseParserTest,
    ::testing::Values(
        SseCase{"Empty", "", {}},
        SseCase{"OneEventLf", "data: hello\n\n", {{"", "hello", ""}}},
        SseCase{
            "CrLf", "event: ping\r\ndata: {}\r\n\r\n", {{"ping", "{}", ""}}},
        SseCase{"BareCr", "data: a\rdata: b\r\r", {{"", "a\nb", ""}}},
        SseCase{"MixedEndings",
                "data: 1\r\n\ndata: 2\n\r\ndata: 3\r\r",
                {{"", "1", ""}, {"", "2", ""}, {"", "3", ""}}},
        SseCase{"Comments",
                ": OPENROUTER PROCESSING\n\n:\ndata: x\n: mid-event\n\n",
                {{"", "x", ""}}},
        SseCase{"MultiLineData",
                "data: a\ndata:b\ndata:  c\n\n",
                {{"", "a\nb\n c", ""}}},
        SseCase{"FieldWithoutValue",
                "data\n\ndata\ndata\n\n",
                {{"", "", ""}, {"", "\n", ""}}},
        SseCase{"EventWithoutDataIsDropped",
                "event: x\n\ndata: y\n\n",
                {{"", "y", ""}}},
        SseCase{"IdIsRemembered",
                "id: 7\ndata: a\n\ndata: b\n\n",
                {{"", "a", "7"}, {"", "b", "7"}}},
        SseCase{"UnknownFieldsAndRetryIgnored",
                "retry: 10\nfoo: bar\ndata: z\n\n",
                {{"", "z", ""}}},
        SseCase{"NoSpaceAfterColonAndColonInValue",
                "event:message_start\ndata:{\"a\":\"b: c\"}\n\n",
                {{"message_start", "{\"a\":\"b: c\"}", ""}}},
        SseCase{"UnterminatedEventIsHeld",
                "data: done\n\ndata: partial\n",
                {{"", "done", ""}}},
        SseCase{"LeadingBom",
                "\xEF\xBB\xBF"
                "data: b\n\n",
                {{"", "b", ""}}},
        SseCase{
            "AnthropicSequence",
            "event: message_start\n"
            "data: {\"type\":\"message_start\"}\n\n"
            "event: ping\n"
            "data: {\"type\": \"ping\"}\n\n"
            "event: content_block_delta\n"
            "data: "
            "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}"
            "\n\n",
            {{"message_start", "{\"type\":\"message_start\"}", ""},
             {"ping", "{\"type\": \"ping\"}", ""},
             {"content_block_delta",
              "{\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}",
              ""}}},
        SseCase{"OpenAiDone",
                "data: {\"choices\":[]}\n\ndata: [DONE]\n\n",
                {{"", "{\"choices\":[]}", ""}, {"", "[DONE]", ""}}}),
    [](const ::testing::TestParamInfo<SseCase>& info) {
      return info.param.name;
    });

TEST(SseParserLargeTest, EventLargerThanOneRead) {
  std::string input = "data: " + kBig + "\n\n";
  SseParser parser;
  std::vector<SseEvent> events;
  for (size_t i = 0; i < input.size(); i += 16384) {
    for (SseEvent& e : parser.Feed(absl::string_view(input).substr(i, 16384))) {
      events.push_back(std::move(e));
    }
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, kBig);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(SseParserFeedEachTest, HandsOutEachEventAndStopsWhenAsked) {
  SseParser parser;
  std::vector<SseEvent> seen;
  EXPECT_FALSE(parser.FeedEach(
      "id: 7\nevent: a\ndata: 1\n\nevent: b\ndata: 2\ndata: 3\n\n"
      "data: never\n\n",
      [&](const SseEvent& e) {
        seen.push_back(e);
        return seen.size() < 2;
      }));
  EXPECT_EQ(seen, (std::vector<SseEvent>{{"a", "1", "7"}, {"b", "2\n3", "7"}}));
  // Nothing of a dispatched event lingers in the next one.
  EXPECT_EQ(parser.Feed("data: 4\n\n"),
            (std::vector<SseEvent>{{"", "4", "7"}}));
}

}  // namespace
}  // namespace chat::llm
