// OutgoingEvents, the write queue both stream kinds share: one write at a
// time, deltas merged behind a slow write, the end after the last write,
// nothing after the client is gone.

#include "server/service/outgoing_events.h"

#include <string>

#include "absl/status/status.h"
#include "chat/v1/chat.pb.h"
#include "gtest/gtest.h"

namespace chat {
namespace {

using ::chat::v1::ChatStreamResponse;
using ::chat::v1::CompleteStreamResponse;

ChatStreamResponse ChatDelta(const std::string& text, const std::string& id) {
  ChatStreamResponse event;
  event.mutable_delta()->set_text(text);
  event.set_event_id(id);
  return event;
}

CompleteStreamResponse CompleteDelta(const std::string& text) {
  CompleteStreamResponse event;
  event.mutable_delta()->set_text(text);
  return event;
}

TEST(OutgoingEventsTest, DeltasBehindASlowWriteGoOutAsOneWithTheLastId) {
  OutgoingEvents<ChatStreamResponse> events;
  events.Push(ChatDelta("a", "1"));
  OutgoingEvents<ChatStreamResponse>::Step first = events.Next();
  ASSERT_NE(first.send, nullptr);
  EXPECT_EQ(first.send->delta().text(), "a");
  // While the first write is in flight, nothing else goes.
  events.Push(ChatDelta("b", "2"));
  events.Push(ChatDelta("c", "3"));
  EXPECT_EQ(events.Next().send, nullptr);

  events.WriteDone(true);
  OutgoingEvents<ChatStreamResponse>::Step merged = events.Next();
  ASSERT_NE(merged.send, nullptr);
  EXPECT_EQ(merged.send->delta().text(), "bc");
  EXPECT_EQ(merged.send->event_id(), "3");
}

TEST(OutgoingEventsTest, TheDoneEventIsNeverMergedAndTheEndComesLast) {
  OutgoingEvents<CompleteStreamResponse> events;
  events.Push(CompleteDelta("a"));
  ASSERT_NE(events.Next().send, nullptr);
  events.Push(CompleteDelta("b"));
  CompleteStreamResponse done;
  done.mutable_done()->set_response("ab");
  events.Push(done);
  events.SetEnd(absl::OkStatus());

  events.WriteDone(true);
  OutgoingEvents<CompleteStreamResponse>::Step delta = events.Next();
  ASSERT_NE(delta.send, nullptr);
  EXPECT_EQ(delta.send->delta().text(), "b");
  EXPECT_FALSE(delta.end.has_value());
  events.WriteDone(true);
  OutgoingEvents<CompleteStreamResponse>::Step last = events.Next();
  ASSERT_NE(last.send, nullptr);
  EXPECT_TRUE(last.send->has_done());
  EXPECT_FALSE(last.end.has_value());
  events.WriteDone(true);
  OutgoingEvents<CompleteStreamResponse>::Step end = events.Next();
  EXPECT_EQ(end.send, nullptr);
  ASSERT_TRUE(end.end.has_value());
  EXPECT_TRUE(end.end->ok());
  // Once.
  EXPECT_FALSE(events.Next().end.has_value());
}

TEST(OutgoingEventsTest, CompletionDeltasMergeToo) {
  OutgoingEvents<CompleteStreamResponse> events;
  events.Push(CompleteDelta("a"));
  ASSERT_NE(events.Next().send, nullptr);
  events.Push(CompleteDelta("b"));
  events.Push(CompleteDelta("c"));
  events.WriteDone(true);
  OutgoingEvents<CompleteStreamResponse>::Step merged = events.Next();
  ASSERT_NE(merged.send, nullptr);
  EXPECT_EQ(merged.send->delta().text(), "bc");
}

TEST(OutgoingEventsTest, ADeltaBehindAnotherEventIsNotMergedIntoIt) {
  OutgoingEvents<ChatStreamResponse> events;
  events.Push(ChatDelta("a", "1"));
  ASSERT_NE(events.Next().send, nullptr);
  ChatStreamResponse other;  // Neither a delta nor done: an event of its own.
  other.set_event_id("2");
  events.Push(other);
  events.Push(ChatDelta("b", "3"));
  events.WriteDone(true);
  OutgoingEvents<ChatStreamResponse>::Step first = events.Next();
  ASSERT_NE(first.send, nullptr);
  EXPECT_FALSE(first.send->has_delta());
  EXPECT_EQ(first.send->event_id(), "2");
  events.WriteDone(true);
  OutgoingEvents<ChatStreamResponse>::Step second = events.Next();
  ASSERT_NE(second.send, nullptr);
  EXPECT_EQ(second.send->delta().text(), "b");
}

TEST(OutgoingEventsTest, AFailedWriteDropsWhatIsQueuedAndWhatFollows) {
  OutgoingEvents<ChatStreamResponse> events;
  events.Push(ChatDelta("a", "1"));
  ASSERT_NE(events.Next().send, nullptr);
  events.Push(ChatDelta("b", "2"));
  events.WriteDone(false);
  EXPECT_TRUE(events.client_gone());
  events.Push(ChatDelta("c", "3"));
  events.SetEnd(absl::CancelledError("gone"));
  OutgoingEvents<ChatStreamResponse>::Step step = events.Next();
  EXPECT_EQ(step.send, nullptr);
  ASSERT_TRUE(step.end.has_value());
  EXPECT_EQ(step.end->code(), absl::StatusCode::kCancelled);
}

TEST(OutgoingEventsTest, TheEndWaitsForTheWriteInFlight) {
  OutgoingEvents<ChatStreamResponse> events;
  events.Push(ChatDelta("a", "1"));
  ASSERT_NE(events.Next().send, nullptr);
  events.ClientGone();
  events.SetEnd(absl::CancelledError("cancelled"));
  EXPECT_FALSE(events.Next().end.has_value());
  events.WriteDone(true);
  EXPECT_TRUE(events.Next().end.has_value());
}

}  // namespace
}  // namespace chat
