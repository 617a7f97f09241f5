// Ctrl-C handling without a terminal: the self-pipe, and WaitForCall against
// an in-process ChatService whose fake provider holds the reply open, so a
// call is certainly in flight when the interrupts arrive. Interrupts are
// bytes written to a pipe (what the SIGINT handler writes), so "twice before
// the call ended" is exact here, where two real SIGINTs may merge into one.

#include "clients/cli/interrupts.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "clients/cli/chat_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/test_server.h"

namespace chat::cli {
namespace {

using ::chat::testing::Eventually;
using ::chat::testing::FakeScript;
using ::chat::testing::TestServer;
using ::testing::ElementsAre;

class FakeInterrupts {
 public:
  FakeInterrupts() { EXPECT_EQ(pipe2(fds_, O_CLOEXEC | O_NONBLOCK), 0); }
  ~FakeInterrupts() {
    close(fds_[0]);
    close(fds_[1]);
  }
  int fd() const { return fds_[0]; }
  void Press(int times) {
    for (int i = 0; i < times; ++i) {
      ASSERT_EQ(write(fds_[1], "i", 1), 1);
    }
  }

 private:
  int fds_[2];
};

class InterruptsTest : public ::testing::Test {
 protected:
  InterruptsTest()
      : client_(grpc::CreateChannel(server_.address(),
                                    grpc::InsecureChannelCredentials()),
                "", absl::Seconds(30)) {}

  chat::v1::ChatStreamRequest Request(const std::string& session) {
    chat::v1::ChatStreamRequest request;
    request.set_session_id(session);
    request.set_message("hi");
    return request;
  }

  // Deltas seen, in order.
  std::vector<std::string> Deltas() {
    absl::MutexLock lock(&mu_);
    return deltas_;
  }
  StreamCall::DeltaFn Collect() {
    return [this](const std::string& text) {
      absl::MutexLock lock(&mu_);
      deltas_.push_back(text);
    };
  }

  TestServer server_;
  ChatClient client_;
  absl::Mutex mu_;
  std::vector<std::string> deltas_ ABSL_GUARDED_BY(mu_);
};

TEST_F(InterruptsTest, WithoutInterruptsTheReplyCompletes) {
  FakeInterrupts interrupts;
  auto call = client_.StartChatStream(Request("s0"), Collect());
  CallOutcome outcome = WaitForCall(*call, interrupts.fd());
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.error_message();
  EXPECT_FALSE(outcome.interrupted);
  EXPECT_FALSE(outcome.exit_requested);
  EXPECT_EQ(outcome.done.response(), "Hello there");
  EXPECT_THAT(Deltas(), ElementsAre("Hello", " there"));
}

TEST_F(InterruptsTest, OneInterruptCancelsTheCallUpstream) {
  FakeScript script;
  script.hold = true;
  server_.provider().SetScript(script);
  FakeInterrupts interrupts;
  auto call = client_.StartChatStream(Request("s1"), Collect());
  server_.provider().WaitForStarted(1);
  interrupts.Press(1);
  CallOutcome outcome = WaitForCall(*call, interrupts.fd());
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(outcome.interrupted);
  EXPECT_FALSE(outcome.exit_requested);
  // The server cancelled the provider's call and stored nothing.
  EXPECT_TRUE(
      Eventually([&] { return server_.provider().cancelled_calls() == 1; }));
  EXPECT_TRUE(server_.WaitForFinished("ChatStream", 1));
  EXPECT_TRUE(server_.History("s1").empty());
}

TEST_F(InterruptsTest, ASecondInterruptBeforeTheEndAsksToExit) {
  FakeScript script;
  script.hold = true;
  server_.provider().SetScript(script);
  FakeInterrupts interrupts;
  auto call = client_.StartChatStream(Request("s2"), Collect());
  server_.provider().WaitForStarted(1);
  interrupts.Press(2);
  CallOutcome outcome = WaitForCall(*call, interrupts.fd());
  EXPECT_EQ(outcome.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(outcome.interrupted);
  EXPECT_TRUE(outcome.exit_requested);
  EXPECT_EQ(DrainInterrupts(interrupts.fd()), 0);
}

TEST(InterruptPipeTest, SigintBecomesAByteOnThePipe) {
  absl::StatusOr<std::unique_ptr<InterruptPipe>> pipe =
      InterruptPipe::Install();
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  EXPECT_EQ(DrainInterrupts((*pipe)->fd()), 0);
  // One per process.
  EXPECT_FALSE(InterruptPipe::Install().ok());
  ASSERT_EQ(raise(SIGINT), 0);  // The handler has run when raise returns.
  ASSERT_EQ(raise(SIGINT), 0);
  EXPECT_EQ(DrainInterrupts((*pipe)->fd()), 2);
  pipe->reset();
  // Gone: another may be installed.
  absl::StatusOr<std::unique_ptr<InterruptPipe>> again =
      InterruptPipe::Install();
  EXPECT_TRUE(again.ok()) << again.status();
}

}  // namespace
}  // namespace chat::cli
