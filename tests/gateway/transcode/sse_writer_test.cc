// Framing of the three streaming formats, byte for byte.

#include "gateway/transcode/sse_writer.h"

#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

TEST(SseWriterTest, OneEvent) {
  EXPECT_EQ(SseEvent("delta", R"({"text":"hi"})"),
            "event: delta\ndata: {\"text\":\"hi\"}\n\n");
}

TEST(SseWriterTest, MultilineDataBecomesSeveralDataLines) {
  EXPECT_EQ(SseEvent("x", "a\nb"), "event: x\ndata: a\ndata: b\n\n");
}

TEST(SseWriterTest, NdjsonLines) {
  EXPECT_EQ(NdjsonResult(R"({"delta":{"text":"a"}})"),
            "{\"result\":{\"delta\":{\"text\":\"a\"}}}\n");
  EXPECT_EQ(
      NdjsonError(MakeHttpError(503, grpc::StatusCode::UNAVAILABLE, "down")),
      "{\"error\":{\"code\":14,\"message\":\"down\",\"details\":[]}}\n");
}

TEST(SseWriterTest, RawTextErrorIsTheTemplates) {
  EXPECT_EQ(RawTextError(MakeHttpError(504, grpc::StatusCode::DEADLINE_EXCEEDED,
                                       "too slow")),
            "\nError: too slow");
}

TEST(SseWriterTest, ContentTypes) {
  EXPECT_EQ(StreamContentType(StreamFormat::kSse), "text/event-stream");
  EXPECT_EQ(StreamContentType(StreamFormat::kNdjson), "application/x-ndjson");
  EXPECT_EQ(StreamContentType(StreamFormat::kRawText),
            "text/plain; charset=utf-8");
}

}  // namespace
}  // namespace chat::gateway
