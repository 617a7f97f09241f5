// ChatStreamReactor through a real gRPC channel to an in-process server
// (tests/testing/test_server.h) whose provider is scripted and can be held.
// Strategy: stop the call at each stage of its life -- queued behind another
// turn of its session, provider held before its first delta, after some
// deltas, with the final event written but unread, a client that stops
// reading, a deadline -- and check what the client sees, that the provider
// was told, and what the history holds. Nothing here sleeps: a stage is
// reached by waiting for its event (the provider started, the server read the
// request, the client read a delta), and "nothing was stored" is checked
// after a later turn of the same session has been served, which the engine
// starts only once the earlier one has ended. The fixture's teardown waits
// for every reactor and turn to finish, so a leak or a lost callback shows up
// as a hang or an ASan report.

#include "server/service/chat_stream_reactor.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatStreamRequest;
using ::chat::v1::ChatStreamResponse;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// One ChatStream call from the client side.
struct ClientStream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<ChatStreamResponse>> reader;
  std::string text;  // The deltas read so far, concatenated.
  bool got_done = false;
  ChatResponse done;

  // Reads one event; false at the end of the stream.
  bool ReadOne() {
    ChatStreamResponse event;
    if (!reader->Read(&event)) return false;
    if (event.has_delta()) text += event.delta().text();
    if (event.has_done()) {
      got_done = true;
      done = event.done();
    }
    return true;
  }
  // Reads until the deltas add up to `want` (however the server batched
  // them); false if the stream ended first.
  bool ReadText(const std::string& want) {
    while (text.size() < want.size()) {
      if (!ReadOne()) return false;
    }
    return text == want;
  }
  void ReadToEnd() {
    while (ReadOne()) {
    }
  }
};

class ChatStreamReactorTest : public ::chat::testing::ServiceFixture {
 protected:
  std::unique_ptr<ClientStream> Open(
      const std::string& session, const std::string& message,
      absl::Duration timeout = absl::Seconds(30)) {
    auto stream = std::make_unique<ClientStream>();
    stream->context.set_deadline(std::chrono::system_clock::now() +
                                 absl::ToChronoMilliseconds(timeout));
    ChatStreamRequest request;
    request.set_session_id(session);
    request.set_message(message);
    stream->reader = server_.stub().ChatStream(&stream->context, request);
    return stream;
  }

  // ResumeStream of `session` after `last_event_id`, read to its end.
  std::unique_ptr<ClientStream> Resume(const std::string& session,
                                       const std::string& last_event_id) {
    auto stream = std::make_unique<ClientStream>();
    stream->context.set_deadline(std::chrono::system_clock::now() +
                                 std::chrono::seconds(30));
    chat::v1::ResumeStreamRequest request;
    request.set_session_id(session);
    request.set_last_event_id(last_event_id);
    stream->reader = server_.stub().ResumeStream(&stream->context, request);
    stream->ReadToEnd();
    return stream;
  }

  // The explicit cancel: CancelStream of `session`.
  grpc::Status CancelStream(const std::string& session) {
    grpc::ClientContext context;
    chat::v1::CancelStreamRequest request;
    request.set_session_id(session);
    chat::v1::CancelStreamResponse response;
    return server_.stub().CancelStream(&context, request, &response);
  }
};

TEST_F(ChatStreamReactorTest, DeltasThenDoneThenOkAndTheTurnIsStored) {
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  stream->ReadToEnd();
  ASSERT_TRUE(stream->reader->Finish().ok());
  EXPECT_EQ(stream->text, "Hello there");
  ASSERT_TRUE(stream->got_done);
  EXPECT_EQ(stream->done.response(), "Hello there");
  EXPECT_EQ(stream->done.session_id(), "s");
  EXPECT_EQ(stream->done.turn_count(), 1);
  // `done` is sent only once the turn is stored.
  EXPECT_THAT(Contents("s"), ElementsAre("hi", "Hello there"));
  EXPECT_EQ(server_.provider().cancelled_calls(), 0);
}

TEST_F(ChatStreamReactorTest, ARefusedRequestFinishesWithoutATurn) {
  std::unique_ptr<ClientStream> stream = Open("s", "");  // No message.
  stream->ReadToEnd();
  EXPECT_EQ(stream->reader->Finish().error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(stream->got_done);
  EXPECT_THAT(server_.provider().requests(), IsEmpty());
}

TEST_F(ChatStreamReactorTest, AProviderErrorEndsTheStreamAndStoresNothing) {
  FakeScript script;
  script.deltas = {"partial"};
  script.error = absl::UnavailableError("upstream down");
  server_.provider().SetScript(script);
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  stream->ReadToEnd();
  grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "upstream down");
  EXPECT_EQ(stream->text, "partial");
  EXPECT_FALSE(stream->got_done);
  EXPECT_THAT(Contents("s"), IsEmpty());
}

// A client that leaves detaches: its turn still runs when its turn comes,
// and a resume gets the whole answer.
TEST_F(ChatStreamReactorTest, ADisconnectWhileQueuedStillRunsTheTurn) {
  server_.provider().SetScript(Held({"first"}));
  std::unique_ptr<ClientStream> first = Open("s", "one");
  server_.provider().WaitForStarted(1);  // Running, and held.

  std::unique_ptr<ClientStream> queued = Open("s", "two");
  ASSERT_TRUE(server_.WaitForCalls("ChatStream", 2));
  queued->context.TryCancel();
  queued->ReadToEnd();
  EXPECT_EQ(queued->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(server_.WaitForFinished("ChatStream", 1));

  server_.provider().Release();
  first->ReadToEnd();
  ASSERT_TRUE(first->reader->Finish().ok());
  EXPECT_EQ(first->done.turn_count(), 1);

  // The session's latest answer is the detached one.
  std::unique_ptr<ClientStream> resumed = Resume("s", "");
  ASSERT_TRUE(resumed->reader->Finish().ok());
  EXPECT_EQ(resumed->text, "first");
  EXPECT_EQ(resumed->done.turn_count(), 2);
  EXPECT_EQ(server_.provider().cancelled_calls(), 0);
  EXPECT_THAT(Contents("s"), ElementsAre("one", "first", "two", "first"));
}

TEST_F(ChatStreamReactorTest, ADisconnectAfterSomeDeltasLetsTheTurnFinish) {
  server_.provider().SetScript(Held({"one ", "two "}));
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  ASSERT_TRUE(stream->ReadText("one two "));
  stream->context.TryCancel();
  stream->ReadToEnd();
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(server_.WaitForFinished("ChatStream", 1));
  server_.provider().Release();

  std::unique_ptr<ClientStream> resumed = Resume("s", "");
  ASSERT_TRUE(resumed->reader->Finish().ok());
  EXPECT_EQ(resumed->text, "one two ");
  EXPECT_EQ(resumed->done.response(), "one two ");
  EXPECT_EQ(server_.provider().cancelled_calls(), 0);
  EXPECT_THAT(Contents("s"), ElementsAre("hi", "one two "));
}

TEST_F(ChatStreamReactorTest, CancelWhileTheProviderHoldsBeforeTheFirstDelta) {
  server_.provider().SetScript(Held({}));
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  server_.provider().WaitForStarted(1);
  ASSERT_TRUE(CancelStream("s").ok());
  stream->ReadToEnd();
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(stream->text, "");

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 1);
  EXPECT_EQ(server_.provider().cancelled_calls(), 1);
  EXPECT_THAT(Contents("s"), ElementsAre("next", "Hello there"));
}

TEST_F(ChatStreamReactorTest, CancelAfterSomeDeltas) {
  server_.provider().SetScript(Held({"one ", "two "}));
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  ASSERT_TRUE(stream->ReadText("one two "));
  ASSERT_TRUE(CancelStream("s").ok());
  stream->ReadToEnd();
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_FALSE(stream->got_done);
  // Nothing runs any more, once the ended answer's outcome is stored: the
  // client hears of the end before the stream store does, and until then a
  // cancel only marks an answer that has ended.
  EXPECT_TRUE(::chat::testing::Eventually([&] {
    return CancelStream("s").error_code() == grpc::StatusCode::NOT_FOUND;
  }));

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 1);
  EXPECT_EQ(server_.provider().cancelled_calls(), 1);
  EXPECT_THAT(Contents("s"), ElementsAre("next", "Hello there"));
}

// The turn is stored before `done` is queued: a client that goes away while
// that last event is on its way (or after reading it) is too late to undo it.
TEST_F(ChatStreamReactorTest, CancelWhileTheFinalEventIsInFlightKeepsTheTurn) {
  server_.provider().SetScript(Held({"all of it"}));
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  ASSERT_TRUE(stream->ReadText("all of it"));
  server_.provider().Release();
  // The store has no event to wait on; the turn is committed on the pool.
  ASSERT_TRUE(::chat::testing::Eventually(
      [&] { return server_.History("s").size() == 2; }));
  stream->context.TryCancel();  // `done` unread: written or being written.
  stream->ReadToEnd();
  grpc::Status status = stream->reader->Finish();
  EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::CANCELLED)
      << status.error_message();

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 2);
  EXPECT_EQ(server_.provider().cancelled_calls(), 0);
  EXPECT_THAT(Contents("s"),
              ElementsAre("hi", "all of it", "next", "Hello there"));
}

TEST_F(ChatStreamReactorTest, CancelAfterDoneChangesNothing) {
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  while (!stream->got_done && stream->ReadOne()) {
  }
  ASSERT_TRUE(stream->got_done);
  stream->context.TryCancel();
  stream->ReadToEnd();
  grpc::Status status = stream->reader->Finish();
  EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::CANCELLED)
      << status.error_message();
  EXPECT_EQ(ServeNextTurn("s").turn_count(), 2);
  EXPECT_THAT(Contents("s"),
              ElementsAre("hi", "Hello there", "next", "Hello there"));
}

// Deltas big enough to fill the HTTP/2 flow-control windows: while the client
// does not read, they queue in the reactor (and are batched into fewer
// writes); nothing is lost or reordered when it reads again.
std::vector<std::string> BigDeltas() {
  std::vector<std::string> deltas;
  for (int i = 0; i < 48; ++i) {
    deltas.push_back(
        absl::StrCat(i, ":", std::string(32 * 1024, 'a' + i % 26), "\n"));
  }
  return deltas;
}

TEST_F(ChatStreamReactorTest,
       AClientThatStopsReadingThenResumesGetsEverything) {
  const std::vector<std::string> deltas = BigDeltas();
  std::string all;
  for (const std::string& d : deltas) all += d;
  server_.provider().SetScript(Held(deltas));
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  ASSERT_TRUE(stream->ReadOne());
  // Every delta has reached the reactor while the client reads nothing.
  server_.provider().WaitForStarted(1);
  server_.provider().Release();
  stream->ReadToEnd();
  ASSERT_TRUE(stream->reader->Finish().ok());
  EXPECT_TRUE(stream->text == all) << "the text came back altered";
  ASSERT_TRUE(stream->got_done);
  EXPECT_EQ(stream->done.turn_count(), 1);
  std::vector<store::StoredMessage> history = server_.History("s");
  ASSERT_EQ(history.size(), 2u);
  EXPECT_TRUE(history[1].content == all);
}

TEST_F(ChatStreamReactorTest, AClientThatStopsReadingThenCancelsStoresNothing) {
  server_.provider().SetScript(Held(BigDeltas()));
  std::unique_ptr<ClientStream> stream = Open("s", "hi");
  ASSERT_TRUE(stream->ReadOne());
  server_.provider().WaitForStarted(1);
  ASSERT_TRUE(CancelStream("s").ok());
  stream->ReadToEnd();
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 1);
  EXPECT_EQ(server_.provider().cancelled_calls(), 1);
  EXPECT_THAT(Contents("s"), ElementsAre("next", "Hello there"));
}

TEST_F(ChatStreamReactorTest,
       AnExpiredDeadlineCancelsTheProviderAndStoresNothing) {
  server_.provider().SetScript(Held({"slow"}));
  std::unique_ptr<ClientStream> stream =
      Open("s", "hi", absl::Milliseconds(300));
  stream->ReadToEnd();
  EXPECT_EQ(stream->reader->Finish().error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(stream->got_done);

  EXPECT_EQ(ServeNextTurn("s").turn_count(), 1);
  EXPECT_EQ(server_.provider().cancelled_calls(), 1);
  EXPECT_THAT(Contents("s"), ElementsAre("next", "Hello there"));
}

// A client's deadline timer fires before the server's, so its cancel can
// arrive while the deadline has not yet passed here: the answer it leaves
// detached still ends when that deadline passes.
TEST_F(ChatStreamReactorTest, AnAnswerLeftBeforeItsDeadlineEndsAtTheDeadline) {
  server_.provider().SetScript(Held({"slow"}));
  std::unique_ptr<ClientStream> stream =
      Open("s", "hi", absl::Milliseconds(500));
  server_.provider().WaitForStarted(1);
  stream->context.TryCancel();
  stream->ReadToEnd();
  EXPECT_EQ(stream->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // A client that follows the detached answer is told how it ended: at the
  // deadline, not cancelled by someone.
  std::unique_ptr<ClientStream> resumed = Resume("s", "");
  EXPECT_EQ(resumed->reader->Finish().error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);

  // Served only once the held answer has ended, at its deadline.
  EXPECT_EQ(ServeNextTurn("s").turn_count(), 1);
  EXPECT_EQ(server_.provider().cancelled_calls(), 1);
  EXPECT_THAT(Contents("s"), ElementsAre("next", "Hello there"));
}

TEST_F(ChatStreamReactorTest, ShutdownCancelsOpenStreamsAndEndsTheirTurns) {
  server_.provider().SetScript(Held({"x"}));
  std::unique_ptr<ClientStream> a = Open("a", "hi");
  std::unique_ptr<ClientStream> b = Open("b", "hi");
  server_.provider().WaitForStarted(2);
  server_.Shutdown();  // Returns once both reactors and turns are done.
  EXPECT_EQ(server_.provider().cancelled_calls(), 2);
  EXPECT_THAT(Contents("a"), IsEmpty());
  EXPECT_THAT(Contents("b"), IsEmpty());
  a->ReadToEnd();
  b->ReadToEnd();
  EXPECT_FALSE(a->reader->Finish().ok());
  EXPECT_FALSE(b->reader->Finish().ok());
}

// With the flush an hour away, an answer's end still reaches the stream
// store when the answer ends (a resumer on another replica reads only the
// store), and it is written alone: the deltas of an answer still running
// wait for the flush. (Writing every answer at each end kept the loop busy
// at thousands of streams.) The barrier: once C's end is stored, a write of
// everything at an end would have stored B's delta too.
TEST(ResumableStreamFlushTest,
     AnEndedAnswerIsStoredAloneWithoutWaitingForTheFlush) {
  ResumableStreamOptions streams;
  streams.flush_interval = absl::Hours(1);
  TestServer server({}, TestServer::DefaultAuthOptions(), streams);
  store::StreamStore* const store = server.store().streams();

  auto open = [&](grpc::ClientContext* context, const std::string& session) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    ChatStreamRequest request;
    request.set_session_id(session);
    request.set_message("hi");
    return server.stub().ChatStream(context, request);
  };
  auto answer_of = [](const std::string& event_id) {
    std::string answer_id;
    int64_t seq = 0;
    EXPECT_TRUE(ParseStreamEventId(event_id, &answer_id, &seq).ok())
        << event_id;
    return answer_id;
  };
  auto read = [&](const std::string& session, const std::string& answer_id) {
    return store->ReadStream(store::SessionKey{"default", session}, answer_id,
                             0, absl::Now(), std::nullopt);
  };
  // Runs a stream of `session` to its end, then waits for its end in the
  // store.
  auto run_to_stored_end = [&](const std::string& session) {
    grpc::ClientContext context;
    auto reader = open(&context, session);
    std::string last_event_id;
    for (ChatStreamResponse event; reader->Read(&event);) {
      last_event_id = event.event_id();
    }
    ASSERT_TRUE(reader->Finish().ok());
    const std::string answer_id = answer_of(last_event_id);
    absl::StatusOr<store::StreamRead> stored;
    EXPECT_TRUE(::chat::testing::Eventually(
        [&] {
          stored = read(session, answer_id);
          return stored.ok() && stored->outcome.has_value();
        },
        absl::Seconds(30)))
        << stored.status();
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(absl::StrJoin(stored->deltas, ""), "Hello there");
  };

  FakeScript held;
  held.deltas = {"x"};
  held.hold = true;
  server.provider().SetScript(held);
  grpc::ClientContext b_context;
  auto b = open(&b_context, "b");
  ChatStreamResponse b_first;
  ASSERT_TRUE(b->Read(&b_first));
  ASSERT_EQ(b_first.delta().text(), "x");
  const std::string b_answer = answer_of(b_first.event_id());

  server.provider().SetScript(FakeScript());
  run_to_stored_end("a");
  run_to_stored_end("c");
  EXPECT_TRUE(absl::IsNotFound(read("b", b_answer).status()))
      << read("b", b_answer).status();

  b_context.TryCancel();
  for (ChatStreamResponse event; b->Read(&event);) {
  }
  b->Finish();
}

}  // namespace
}  // namespace chat
