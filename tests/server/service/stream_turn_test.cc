// StreamTurn, the stream call apart from its transport, driven by a recording
// transport over a real ChatEngine and ResumableStreams (memory store, the
// scripted provider). The transport completes no write until the test says
// so, as a slow client would, so the test decides what is queued when the
// call is cancelled or its client goes. Nothing sleeps: each step waits for
// the event it needs (deltas seen, the answer's end).

#include "server/service/stream_turn.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "chat/v1/chat.pb.h"
#include "common/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/chat_engine.h"
#include "server/engine/resumable_streams.h"
#include "server/store/memory_store.h"
#include "tests/testing/fake_llm_provider.h"

namespace chat {
namespace {

using ::chat::testing::FakeScript;
using ::chat::v1::ChatStreamResponse;

// What the transport saw: the events sent and the end.
class RecordingTurn final : public StreamTurn {
 public:
  explicit RecordingTurn(ResumableStreams* streams) : StreamTurn(streams) {}

  using StreamTurn::Cancel;
  using StreamTurn::TransportDone;
  using StreamTurn::WriteDone;

  void OnDelta(absl::string_view event_id, absl::string_view text) override {
    StreamTurn::OnDelta(event_id, text);
    // Counted once the turn has taken it (sent or queued): a test that waits
    // for a delta may then complete its write.
    absl::MutexLock lock(&mu_);
    ++deltas_seen_;
  }
  void OnEnd(absl::string_view event_id,
             absl::StatusOr<ChatTurnResult> result) override {
    StreamTurn::OnEnd(event_id, std::move(result));
    absl::MutexLock lock(&mu_);
    answer_ended_ = true;  // Once the end is queued (or sent).
  }

  // Blocks until the answer gave `n` deltas; false after 10 s.
  bool WaitForDeltas(int n) {
    absl::MutexLock lock(&mu_);
    auto seen = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return deltas_seen_ >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&seen), absl::Seconds(10));
  }
  bool WaitForAnswerEnd() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&answer_ended_),
                                absl::Seconds(10));
  }

  // The events sent so far, as "delta:<text>" or "done".
  std::vector<std::string> sent() {
    absl::MutexLock lock(&mu_);
    return sent_;
  }
  std::optional<absl::Status> ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }
  // Both sides are done with the object.
  absl::Notification disposed;

 private:
  void AddInitialMetadata(const std::string& /*key*/,
                          const std::string& /*value*/) override {}
  void AddTrailingMetadata(const std::string& /*key*/,
                           const std::string& /*value*/) override {}
  void Send(const ChatStreamResponse& event) override {
    absl::MutexLock lock(&mu_);
    sent_.push_back(event.has_done() ? "done"
                                     : "delta:" + event.delta().text());
  }
  void End(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    ended_ = status;
  }
  void Dispose() override { disposed.Notify(); }  // The test owns it.

  absl::Mutex mu_;
  int deltas_seen_ ABSL_GUARDED_BY(mu_) = 0;
  bool answer_ended_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> sent_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> ended_ ABSL_GUARDED_BY(mu_);
};

class StreamTurnTest : public ::testing::Test {
 protected:
  ~StreamTurnTest() override {
    provider_.Release();  // Held answers end, detached ones included.
  }

  // A turn of session "s", started with `script`.
  std::unique_ptr<RecordingTurn> Start(FakeScript script) {
    provider_.SetScript(std::move(script));
    auto turn = std::make_unique<RecordingTurn>(&streams_);
    ChatTurnRequest request;
    request.session_id = "s";
    request.message = "hi";
    turn->Start(std::move(request));
    return turn;
  }

  // Ends the transport's side and waits until the turn is disposed of.
  static void Finish(RecordingTurn& turn) {
    turn.TransportDone();
    EXPECT_TRUE(
        turn.disposed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }

  store::MemoryConversationStore store_;
  ::chat::testing::FakeLlmProvider provider_;
  ThreadPool pool_{2};
  ChatEngine engine_{&store_, &provider_, &pool_, ChatEngineOptions()};
  ResumableStreams streams_{&engine_, store_.streams(), &pool_,
                            ResumableStreamOptions()};
};

TEST_F(StreamTurnTest, OneWriteAtATimeQueuedDeltasMergeThenDoneThenOk) {
  std::unique_ptr<RecordingTurn> turn = Start(FakeScript{{"a", "b", "c"}});
  ASSERT_TRUE(turn->WaitForAnswerEnd());
  // "a" went out alone; the rest waited for its write.
  EXPECT_THAT(turn->sent(), ::testing::ElementsAre("delta:a"));
  turn->WriteDone(true);
  EXPECT_THAT(turn->sent(), ::testing::ElementsAre("delta:a", "delta:bc"));
  turn->WriteDone(true);
  turn->WriteDone(true);
  EXPECT_THAT(turn->sent(),
              ::testing::ElementsAre("delta:a", "delta:bc", "done"));
  ASSERT_TRUE(turn->ended().has_value());
  EXPECT_TRUE(turn->ended()->ok()) << *turn->ended();
  Finish(*turn);
}

TEST_F(StreamTurnTest, ACancelDropsWhatIsNotWrittenAndEndsCancelled) {
  FakeScript held;
  held.deltas = {"a", "b", "c"};
  held.hold = true;
  std::unique_ptr<RecordingTurn> turn = Start(held);
  ASSERT_TRUE(turn->WaitForDeltas(3));  // "a" is being written.
  turn->Cancel(/*expired=*/false);
  // The call ends once the write in flight is done, with nothing more.
  EXPECT_FALSE(turn->ended().has_value());
  turn->WriteDone(true);
  EXPECT_THAT(turn->sent(), ::testing::ElementsAre("delta:a"));
  ASSERT_TRUE(turn->ended().has_value());
  EXPECT_TRUE(absl::IsCancelled(*turn->ended())) << *turn->ended();
  Finish(*turn);
}

TEST_F(StreamTurnTest, AnAnswerThatEndedKeepsItsDoneWhenCancelled) {
  std::unique_ptr<RecordingTurn> turn = Start(FakeScript{{"a", "b"}});
  ASSERT_TRUE(turn->WaitForAnswerEnd());
  turn->Cancel(/*expired=*/true);
  turn->WriteDone(true);
  turn->WriteDone(true);
  turn->WriteDone(true);
  EXPECT_THAT(turn->sent(),
              ::testing::ElementsAre("delta:a", "delta:b", "done"));
  ASSERT_TRUE(turn->ended().has_value());
  EXPECT_TRUE(turn->ended()->ok()) << *turn->ended();
  Finish(*turn);
}

TEST_F(StreamTurnTest, AfterAFailedWriteAnAnswerThatEndsSendsNoDone) {
  FakeScript held;
  held.deltas = {"a"};
  held.hold = true;
  std::unique_ptr<RecordingTurn> turn = Start(held);
  ASSERT_TRUE(turn->WaitForDeltas(1));
  turn->WriteDone(false);  // The client is gone; no cancel yet.
  provider_.Release();
  ASSERT_TRUE(turn->WaitForAnswerEnd());
  EXPECT_THAT(turn->sent(), ::testing::ElementsAre("delta:a"));
  ASSERT_TRUE(turn->ended().has_value());
  EXPECT_TRUE(absl::IsCancelled(*turn->ended())) << *turn->ended();
  Finish(*turn);
}

TEST_F(StreamTurnTest, ACancelBeforeTheStartRefusesTheTurn) {
  auto turn = std::make_unique<RecordingTurn>(&streams_);
  turn->Cancel(/*expired=*/false);
  ChatTurnRequest request;
  request.session_id = "s";
  request.message = "hi";
  turn->Start(std::move(request));
  EXPECT_THAT(turn->sent(), ::testing::IsEmpty());
  ASSERT_TRUE(turn->ended().has_value());
  EXPECT_TRUE(absl::IsCancelled(*turn->ended())) << *turn->ended();
  EXPECT_TRUE(provider_.requests().empty());  // No turn reached it.
  Finish(*turn);
}

}  // namespace
}  // namespace chat
