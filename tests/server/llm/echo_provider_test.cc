// EchoProvider: the reply it builds, how it is cut into deltas, and that a
// streamed call delivers those deltas then completes, or stops when
// cancelled.

#include "server/llm/echo_provider.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::llm {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;

class CollectingSink final : public CompletionSink {
 public:
  void OnDelta(absl::string_view text) override {
    absl::MutexLock lock(&mu_);
    deltas.emplace_back(text);
  }
  void OnComplete(absl::StatusOr<CompletionResult> r) override {
    {
      absl::MutexLock lock(&mu_);
      result = std::move(r);
    }
    done.Notify();
  }
  absl::Mutex mu_;
  std::vector<std::string> deltas;
  absl::StatusOr<CompletionResult> result = absl::UnknownError("pending");
  absl::Notification done;
};

CompletionRequest Conversation(std::vector<std::string> user_and_assistant) {
  CompletionRequest request;
  request.system_prompt = "You are a helpful AI assistant.";
  for (size_t i = 0; i < user_and_assistant.size(); ++i) {
    request.messages.push_back(
        {i % 2 == 0 ? "user" : "assistant", user_and_assistant[i]});
  }
  return request;
}

TEST(EchoProviderTest, FirstReplyQuotesTheMessage) {
  EXPECT_EQ(EchoProvider::Reply(Conversation({"Hello"})),
            "You said: \"Hello\". This is the start of our conversation.");
}

TEST(EchoProviderTest, LaterReplyQuotesThePreviousUserMessage) {
  std::string reply = EchoProvider::Reply(
      Conversation({"My name is Ada", "...", "What is my name?"}));
  EXPECT_THAT(reply, HasSubstr("You said: \"What is my name?\""));
  EXPECT_THAT(reply, HasSubstr("Before that you said: \"My name is Ada\""));
  EXPECT_THAT(reply, HasSubstr("message 2 of our conversation"));
}

TEST(EchoProviderTest, DeltasJoinBackIntoTheText) {
  std::vector<std::string> deltas =
      EchoProvider::SplitIntoDeltas("one two  three ");
  EXPECT_THAT(deltas, ::testing::ElementsAre("one ", "two ", " ", "three "));
  EXPECT_EQ(absl::StrJoin(deltas, ""), "one two  three ");
}

TEST(EchoProviderTest, StreamsDeltasThenCompletes) {
  EchoProvider provider({absl::Milliseconds(1)});
  auto sink = std::make_shared<CollectingSink>();
  CompletionRequest request = Conversation({"Hello"});
  provider.Start(request, sink);
  sink->done.WaitForNotification();
  ASSERT_THAT(sink->result, IsOk());
  EXPECT_GT(sink->deltas.size(), 3u);
  EXPECT_EQ(absl::StrJoin(sink->deltas, ""), EchoProvider::Reply(request));
  EXPECT_EQ(sink->result->stop_reason, "end_turn");
  EXPECT_EQ(sink->result->model, "echo");
  EXPECT_GT(sink->result->input_tokens, 0);
  EXPECT_GT(sink->result->output_tokens, 0);
}

TEST(EchoProviderTest, MaxTokensCutsTheReply) {
  EchoProvider provider({absl::ZeroDuration()});
  auto sink = std::make_shared<CollectingSink>();
  CompletionRequest request = Conversation({"Hello"});
  request.max_tokens = 2;
  provider.Start(request, sink);
  sink->done.WaitForNotification();
  ASSERT_THAT(sink->result, IsOk());
  EXPECT_EQ(sink->deltas.size(), 2u);
  EXPECT_EQ(sink->result->stop_reason, "max_tokens");
}

TEST(EchoProviderTest, CancelStopsTheStream) {
  // The first delta is due in a minute: only a prompt cancel ends it sooner.
  EchoProvider provider({absl::Minutes(1)});
  auto sink = std::make_shared<CollectingSink>();
  std::shared_ptr<CompletionCall> call =
      provider.Start(Conversation({"Hello"}), sink);
  call->Cancel();
  call->Cancel();  // Idempotent.
  ASSERT_TRUE(sink->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_THAT(sink->result, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_TRUE(sink->deltas.empty());
}

}  // namespace
}  // namespace chat::llm
