// ChatServiceImpl through a real gRPC channel to an in-process server
// (tests/testing/test_server.h): the unary Chat's reactor stopped at each
// stage of its life, and the history RPCs' argument checks. Strategy as in
// chat_stream_reactor_test.cc: reach a stage by waiting for its event (the
// provider started, the server read the request), and check that nothing was
// stored only after a later turn of the same session was served, which the
// engine starts once the earlier one has ended. Calls are made with the
// callback client API so the test thread can cancel them.

#include "server/service/chat_service_impl.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/eventually.h"
#include "tests/testing/fake_llm_provider.h"
#include "tests/testing/service_fixture.h"
#include "tests/testing/test_server.h"

namespace chat {
namespace {

using ::chat::testing::FakeScript;
using ::chat::testing::TestServer;
using ::chat::v1::ChatRequest;
using ::chat::v1::ChatResponse;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// One unary Chat in flight.
struct UnaryCall {
  grpc::ClientContext context;
  ChatRequest request;
  ChatResponse response;
  grpc::Status status;
  absl::Notification done;

  // The callback writes into this object: never free it under a live call.
  ~UnaryCall() {
    context.TryCancel();
    done.WaitForNotificationWithTimeout(absl::Seconds(30));
  }

  // Waits for the call's status (bounded: a lost callback fails the test).
  grpc::Status Wait() {
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    return status;
  }
};

class ChatServiceImplTest : public ::chat::testing::ServiceFixture {
 protected:
  std::unique_ptr<UnaryCall> Start(const std::string& session,
                                   const std::string& message,
                                   absl::Duration timeout = absl::Seconds(30)) {
    auto call = std::make_unique<UnaryCall>();
    call->context.set_deadline(std::chrono::system_clock::now() +
                               absl::ToChronoMilliseconds(timeout));
    call->request.set_session_id(session);
    call->request.set_message(message);
    UnaryCall* c = call.get();
    server_.stub().async()->Chat(&c->context, &c->request, &c->response,
                                 [c](grpc::Status status) {
                                   c->status = std::move(status);
                                   c->done.Notify();
                                 });
    return call;
  }
};

TEST_F(ChatServiceImplTest, ChatAnswersWithTheWholeReplyAndStoresTheTurn) {
  std::unique_ptr<UnaryCall> call = Start("s", "hi");
  ASSERT_TRUE(call->Wait().ok()) << call->status.error_message();
  EXPECT_EQ(call->response.response(), "Hello there");
  EXPECT_EQ(call->response.session_id(), "s");
  EXPECT_EQ(call->response.turn_count(), 1);
  EXPECT_EQ(call->response.model(), "fake-model");
  EXPECT_THAT(Contents("s"), ElementsAre("hi", "Hello there"));
  ASSERT_EQ(server_.provider().requests().size(), 1u);
  EXPECT_EQ(server_.provider().requests()[0].messages.back().content, "hi");
}

TEST_F(ChatServiceImplTest, ARefusedRequestFinishesAtOnce) {
  std::unique_ptr<UnaryCall> call = Start("s", "");
  EXPECT_EQ(call->Wait().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(server_.provider().requests(), IsEmpty());
}

TEST_F(ChatServiceImplTest, AProviderErrorIsTheCallsStatusAndStoresNothing) {
  FakeScript script;
  script.error = absl::ResourceExhaustedError("rate limited");
  server_.provider().SetScript(script);
  std::unique_ptr<UnaryCall> call = Start("s", "hi");
  grpc::Status status = call->Wait();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "rate limited");
  EXPECT_THAT(Contents("s"), IsEmpty());
}

TEST_F(ChatServiceImplTest, CancelWhileQueuedBehindAnotherTurn) {
  server_.provider().SetScript(Held({"first"}));
  std::unique_ptr<UnaryCall> first = Start("s", "one");
  server_.provider().WaitForStarted(1);

  std::unique_ptr<UnaryCall> queued = Start("s", "two");
  ASSERT_TRUE(server_.WaitForCalls("Chat", 2));
  queued->context.TryCancel();
  EXPECT_EQ(queued->Wait().error_code(), grpc::StatusCode::CANCELLED);
  // The client's CANCELLED is its own; wait for the server to have ended
  // the queued call too, before the turn ahead lets it run.
  ASSERT_TRUE(server_.WaitForFinished("Chat", 1));

  server_.provider().Release();
  ASSERT_TRUE(first->Wait().ok());
  EXPECT_EQ(first->response.turn_count(), 1);

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 2);
  EXPECT_EQ(server_.provider().requests().size(), 2u);
  EXPECT_THAT(Contents("s"),
              ElementsAre("one", "first", "next", "Hello there"));
}

TEST_F(ChatServiceImplTest, CancelWhileTheProviderHoldsBeforeTheFirstDelta) {
  server_.provider().SetScript(Held({}));
  std::unique_ptr<UnaryCall> call = Start("s", "hi");
  server_.provider().WaitForStarted(1);
  call->context.TryCancel();
  EXPECT_EQ(call->Wait().error_code(), grpc::StatusCode::CANCELLED);

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 1);
  EXPECT_EQ(server_.provider().cancelled_calls(), 1);
  EXPECT_THAT(Contents("s"), ElementsAre("next", "Hello there"));
}

TEST_F(ChatServiceImplTest, CancelAfterSomeDeltas) {
  server_.provider().SetScript(Held({"one ", "two "}));
  std::unique_ptr<UnaryCall> call = Start("s", "hi");
  server_.provider().WaitForStarted(1);  // Both deltas are in the turn.
  call->context.TryCancel();
  EXPECT_EQ(call->Wait().error_code(), grpc::StatusCode::CANCELLED);

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 1);
  EXPECT_EQ(server_.provider().cancelled_calls(), 1);
  EXPECT_THAT(Contents("s"), ElementsAre("next", "Hello there"));
}

// The turn is stored before the reply is sent: a client that goes away while
// the answer is on its way is too late to undo it.
TEST_F(ChatServiceImplTest, CancelWhileTheAnswerIsInFlightKeepsTheTurn) {
  server_.provider().SetScript(Held({"all of it"}));
  std::unique_ptr<UnaryCall> call = Start("s", "hi");
  server_.provider().WaitForStarted(1);
  server_.provider().Release();
  // The store has no event to wait on; the turn is committed on the pool.
  ASSERT_TRUE(::chat::testing::Eventually(
      [&] { return server_.History("s").size() == 2; }));
  call->context.TryCancel();
  grpc::Status status = call->Wait();
  EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::CANCELLED)
      << status.error_message();

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 2);
  EXPECT_EQ(server_.provider().cancelled_calls(), 0);
  EXPECT_THAT(Contents("s"),
              ElementsAre("hi", "all of it", "next", "Hello there"));
}

TEST_F(ChatServiceImplTest, CancelAfterTheAnswerChangesNothing) {
  std::unique_ptr<UnaryCall> call = Start("s", "hi");
  ASSERT_TRUE(call->Wait().ok());
  call->context.TryCancel();
  EXPECT_EQ(ServeNextTurn("s").turn_count(), 2);
  EXPECT_THAT(Contents("s"),
              ElementsAre("hi", "Hello there", "next", "Hello there"));
}

TEST_F(ChatServiceImplTest,
       AnExpiredDeadlineCancelsTheProviderAndStoresNothing) {
  server_.provider().SetScript(Held({"slow"}));
  std::unique_ptr<UnaryCall> call = Start("s", "hi", absl::Milliseconds(300));
  EXPECT_EQ(call->Wait().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 1);
  EXPECT_EQ(server_.provider().cancelled_calls(), 1);
  EXPECT_THAT(Contents("s"), ElementsAre("next", "Hello there"));
}

TEST_F(ChatServiceImplTest, TheCallersDeadlineReachesTheProvider) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::unique_ptr<UnaryCall> call = Start("s", "hi", absl::Seconds(20));
  ASSERT_TRUE(call->Wait().ok());
  ASSERT_EQ(server_.provider().requests().size(), 1u);
  // The deadline travels as a grpc-timeout header, rounded up to its unit.
  const absl::Duration off =
      server_.provider().requests()[0].deadline - deadline;
  EXPECT_LT(absl::AbsDuration(off), absl::Seconds(1)) << off;
}

TEST_F(ChatServiceImplTest, ShutdownCancelsOpenCallsAndEndsTheirTurns) {
  server_.provider().SetScript(Held({"x"}));
  std::unique_ptr<UnaryCall> a = Start("a", "hi");
  std::unique_ptr<UnaryCall> b = Start("b", "hi");
  server_.provider().WaitForStarted(2);
  server_.Shutdown();
  EXPECT_EQ(server_.provider().cancelled_calls(), 2);
  EXPECT_FALSE(a->Wait().ok());
  EXPECT_FALSE(b->Wait().ok());
  EXPECT_THAT(Contents("a"), IsEmpty());
}

TEST_F(ChatServiceImplTest, HistoryOfAnUnknownSessionIsNotFound) {
  grpc::Status status;
  ::chat::testing::CallGetHistory(server_.stub(), "nobody", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ChatServiceImplTest, HistoryReadsBackTheStoredTurns) {
  ServeNextTurn("s");
  grpc::Status status;
  chat::v1::GetHistoryResponse history =
      ::chat::testing::CallGetHistory(server_.stub(), "s", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(history.turn_count(), 1);
  ASSERT_EQ(history.messages_size(), 2);
  EXPECT_EQ(history.messages(0).role(), "user");
  EXPECT_EQ(history.messages(1).content(), "Hello there");
}

TEST_F(ChatServiceImplTest, ListSessionsChecksItsArguments) {
  for (int page_size : {-1, 1001}) {
    grpc::ClientContext context;
    chat::v1::ListSessionsRequest request;
    request.set_page_size(page_size);
    chat::v1::ListSessionsResponse response;
    EXPECT_EQ(
        server_.stub().ListSessions(&context, request, &response).error_code(),
        grpc::StatusCode::INVALID_ARGUMENT)
        << page_size;
  }
  grpc::ClientContext context;
  chat::v1::ListSessionsRequest request;
  request.set_page_token("not a token");
  chat::v1::ListSessionsResponse response;
  EXPECT_EQ(
      server_.stub().ListSessions(&context, request, &response).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ChatServiceImplTest, ListSessionsPagesThroughEverySession) {
  for (const char* session : {"a", "b", "c"}) ServeNextTurn(session);
  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    grpc::ClientContext context;
    chat::v1::ListSessionsRequest request;
    request.set_page_size(2);
    request.set_page_token(token);
    chat::v1::ListSessionsResponse response;
    ASSERT_TRUE(server_.stub().ListSessions(&context, request, &response).ok());
    for (const auto& s : response.sessions()) listed.push_back(s.session_id());
    token = response.next_page_token();
  } while (!token.empty() && ++pages < 10);
  EXPECT_THAT(listed, ::testing::UnorderedElementsAre("a", "b", "c"));
}

}  // namespace
}  // namespace chat
