// The JSON lines must parse as JSON whatever the message holds; the text
// lines stay readable.

#include "common/logging.h"

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOkAndHolds;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

const absl::Time kTime = absl::FromUnixMillis(1767225600123);  // 2026-01-01

TEST(JsonEscapeTest, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(JsonEscape("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(JsonEscape("line1\nline2\r\t"), "line1\\nline2\\r\\t");
  EXPECT_EQ(JsonEscape(std::string("\x01\x1f\x7f", 3)),
            "\\u0001\\u001f\\u007f");
  EXPECT_EQ(JsonEscape(std::string("nul\0x", 5)), "nul\\u0000x");
  EXPECT_EQ(JsonEscape("caf\xc3\xa9 \xe2\x9c\x93"), "caf\xc3\xa9 \xe2\x9c\x93");
}

TEST(FormatLogLineTest, JsonLineHasTimeLevelMessageAndTypedFields) {
  LogFields fields;
  fields.Add("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
      .Add("status", "OK")
      .Add("input_tokens", int64_t{12})
      .Add("streamed", true)
      .Add("cost", 0.25)
      .AddMillis("latency_ms", absl::Microseconds(1500))
      .Add("empty", "");  // Left out.
  std::string line = FormatLogLine(LogFormat::kJson, kTime, LogSeverity::kInfo,
                                   "rpc \"Chat\"\n", fields.fields());
  nlohmann::json json = nlohmann::json::parse(line);
  EXPECT_EQ(json["ts"], "2026-01-01T00:00:00.123Z");
  EXPECT_EQ(json["level"], "info");
  EXPECT_EQ(json["msg"], "rpc \"Chat\"\n");
  EXPECT_EQ(json["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(json["status"], "OK");
  EXPECT_EQ(json["input_tokens"], 12);
  EXPECT_EQ(json["streamed"], true);
  EXPECT_DOUBLE_EQ(json["cost"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(json["latency_ms"].get<double>(), 1.5);
  EXPECT_FALSE(json.contains("empty"));
  EXPECT_EQ(line.find('\n'), std::string::npos);
}

TEST(FormatLogLineTest, HostileFieldValuesStayInsideTheirString) {
  LogFields fields;
  fields.Add("session", "x\",\"level\":\"error");
  fields.Add("key\"", std::string("\x02\\", 2));
  nlohmann::json json = nlohmann::json::parse(FormatLogLine(
      LogFormat::kJson, kTime, LogSeverity::kWarning, "m", fields.fields()));
  EXPECT_EQ(json["level"], "warning");
  EXPECT_EQ(json["session"], "x\",\"level\":\"error");
  EXPECT_EQ(json["key\""], std::string("\x02\\", 2));
}

TEST(FormatLogLineTest, NonFiniteNumbersAreLeftOut) {
  LogFields fields;
  fields.Add("nan", std::nan(""));
  EXPECT_TRUE(fields.fields().empty());
}

TEST(FormatLogLineTest, TextLineQuotesOnlyValuesThatNeedIt) {
  LogFields fields;
  fields.Add("rpc", "Chat").Add("status", "deadline exceeded").Add("n", 3);
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTime, LogSeverity::kError, "call",
                          fields.fields()),
            "2026-01-01T00:00:00.123Z ERROR call rpc=Chat "
            "status=\"deadline exceeded\" n=3");
}

TEST(FormatLogLineTest, TimestampsReadAsAbslFormatsThem) {
  for (absl::Time t :
       {kTime, absl::UnixEpoch(), absl::FromUnixMicros(1767225599999999),
        absl::FromCivil(absl::CivilSecond(2024, 2, 29, 23, 59, 59),
                        absl::UTCTimeZone()) +
            absl::Nanoseconds(999999999)}) {
    std::string line = FormatLogLine(LogFormat::kText, t, LogSeverity::kInfo,
                                     "m", LogFields().fields());
    EXPECT_EQ(line,
              absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone()) +
                  " INFO m");
  }
}

TEST(FormatLogLineTest, MillisecondsReadAsPrintfWritesThem) {
  for (absl::Duration d :
       {absl::ZeroDuration(), absl::Microseconds(1500), absl::Nanoseconds(1499),
        absl::Nanoseconds(12345678), absl::Microseconds(-2500),
        absl::Hours(2) + absl::Nanoseconds(999600)}) {
    LogFields fields;
    fields.AddMillis("latency_ms", d);
    ASSERT_EQ(fields.fields().size(), 1u);
    EXPECT_EQ(fields.fields()[0].value,
              absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(d)))
        << d;
  }
}

// Log writes each line whole to file descriptor 2.
TEST(LogTest, WritesOneWholeLineToStandardError) {
  std::FILE* captured = std::tmpfile();
  ASSERT_NE(captured, nullptr);
  const int saved = ::dup(STDERR_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_GE(::dup2(::fileno(captured), STDERR_FILENO), 0);
  Log(LogSeverity::kWarning, "turn",
      LogFields().Add("rpc", "Chat").Add("input_tokens", 7));
  LogInfo("second ", 2);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::rewind(captured);
  std::string text;
  char buffer[512];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), captured)) > 0) {
    text.append(buffer, n);
  }
  std::fclose(captured);
  EXPECT_THAT(text, ::testing::MatchesRegex(
                        "[0-9T:.-]+Z WARN turn rpc=Chat input_tokens=7\n"
                        "[0-9T:.-]+Z INFO second 2\n"));
}

TEST(ParseLogFlagsTest, AcceptsKnownNamesOnly) {
  EXPECT_THAT(ParseLogFormat("json"), IsOkAndHolds(LogFormat::kJson));
  EXPECT_THAT(ParseLogFormat("TEXT"), IsOkAndHolds(LogFormat::kText));
  EXPECT_THAT(
      ParseLogFormat("xml").status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--log_format")));
  EXPECT_THAT(ParseLogLevel("debug"), IsOkAndHolds(LogSeverity::kDebug));
  EXPECT_THAT(ParseLogLevel("warning"), IsOkAndHolds(LogSeverity::kWarning));
  EXPECT_THAT(ParseLogLevel("error"), IsOkAndHolds(LogSeverity::kError));
  EXPECT_THAT(
      ParseLogLevel("loud").status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--log_level")));
}

TEST(LogLevelTest, MessagesBelowTheMinimumAreDropped) {
  SetMinLogLevel(LogSeverity::kWarning);
  EXPECT_FALSE(LogEnabled(LogSeverity::kInfo));
  EXPECT_TRUE(LogEnabled(LogSeverity::kError));
  SetMinLogLevel(LogSeverity::kInfo);
  EXPECT_TRUE(LogEnabled(LogSeverity::kInfo));
  EXPECT_FALSE(LogEnabled(LogSeverity::kDebug));
}

}  // namespace
}  // namespace chat
