// Resumable streams (ResumeStream, CancelStream, --detached_stream_ttl)
// through real chat-server processes on SQLite and PostgreSQL, with the fake
// upstream (tests/fake_upstream/server.mjs) as the Anthropic provider.
//
// Strategy: the fake's `hold` behaviour sends the first delta and then waits
// for the test's release, so a client reads that delta, drops the call and
// resumes at a known point while the answer is provably still running. The
// fake counts the provider calls per model (attempts, completed, closed
// early): one attempt per answer proves the model was not asked again, and
// closed_early proves an upstream cancel. What the client was sent is
// checked against the `done` event and the stored history: the first delta
// plus the resumed deltas is the whole reply, once and in order. On
// PostgreSQL two replicas share the database: the answer runs on A and is
// resumed (and cancelled) on B. No sleeps: each step waits for the event it
// needs (a read, the fake's counters).

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/eventually.h"
#include "tests/testing/fake_upstream.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::Eventually;
using ::chat::testing::FakeUpstream;
using ::chat::testing::MakeTempDir;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatService;
using ::chat::v1::ChatStreamRequest;
using ::chat::v1::ChatStreamResponse;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const bool kFastClientPolling = ::chat::testing::PollIdleChannelsOften();

struct Replica {
  std::unique_ptr<ServerProcess> process;
  std::unique_ptr<ChatService::Stub> stub;
};

// What a stream call delivered.
struct StreamResult {
  std::string text;  // The deltas, concatenated.
  std::vector<std::string> event_ids;
  bool got_done = false;
  chat::v1::ChatResponse done;
  grpc::Status status;
};

// The sequence number of an event id "<answer>:<seq>"; -1 if malformed.
int64_t SeqOf(const std::string& event_id) {
  const size_t colon = event_id.rfind(':');
  int64_t seq = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(event_id.substr(colon + 1), &seq)) {
    return -1;
  }
  return seq;
}

std::string AnswerOf(const std::string& event_id) {
  return event_id.substr(0, event_id.rfind(':'));
}

void ReadAll(grpc::ClientReader<ChatStreamResponse>& reader,
             StreamResult* result) {
  ChatStreamResponse event;
  while (reader.Read(&event)) {
    result->event_ids.push_back(event.event_id());
    if (event.has_delta()) result->text += event.delta().text();
    if (event.has_done()) {
      result->got_done = true;
      result->done = event.done();
    }
  }
  result->status = reader.Finish();
}

class ResumeTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (std::string(CHAT_NODE_BINARY).empty()) return;
    absl::StatusOr<std::unique_ptr<FakeUpstream>> started =
        FakeUpstream::Start(CHAT_NODE_BINARY, CHAT_FAKE_UPSTREAM_DIR);
    ASSERT_TRUE(started.ok()) << started.status();
    upstream_ = started->release();
  }
  static void TearDownTestSuite() {
    delete upstream_;
    upstream_ = nullptr;
  }

  void SetUp() override {
    if (upstream_ == nullptr) {
      GTEST_SKIP() << "node was not found at configure time";
    }
    if (GetParam() == "sqlite") {
      store_ = absl::StrCat("sqlite:", MakeTempDir(), "/chat.db");
      return;
    }
    absl::StatusOr<std::string> conninfo =
        ::chat::testing::MakeFreshPostgresSchema();
    if (!conninfo.ok()) {
      if (::chat::testing::PostgresRequired()) {
        GTEST_FAIL() << "PostgreSQL required but CHAT_TEST_POSTGRES_DSN is "
                        "unusable: "
                     << conninfo.status();
      }
      GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run";
    }
    store_ = absl::StrCat("postgres:", *conninfo);
  }

  void TearDown() override {
    // A test that failed half-way leaves no held call behind.
    if (upstream_ != nullptr) upstream_->Release(Model());
  }

  Replica Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0", absl::StrCat("--store=", store_),
        "--provider=anthropic", "--provider_retries=0", "--shutdown_grace=5s"};
    args.insert(args.end(), extra.begin(), extra.end());
    Replica replica;
    replica.process = std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY, args,
        std::map<std::string, std::string>{
            {"ANTHROPIC_API_KEY", "sk-ant-test-secret"},
            {"ANTHROPIC_BASE_URL", upstream_->base_url()}});
    absl::Status started = replica.process->Start();
    EXPECT_TRUE(started.ok()) << started << replica.process->Log();
    replica.stub = ChatService::NewStub(grpc::CreateChannel(
        replica.process->address(), grpc::InsecureChannelCredentials()));
    return replica;
  }

  // The fake holds this test's answers after their first delta.
  std::string Model() const {
    const ::testing::TestInfo* info =
        ::testing::UnitTest::GetInstance()->current_test_info();
    return absl::StrCat("hold@resume/", info->name());
  }
  int Stat(const std::string& field) const {
    return upstream_->Stats(Model())[field].get<int>();
  }

  // Starts a ChatStream on `replica`, reads its first event (the delta the
  // fake sends before holding), then drops the call as a lost connection
  // would. Returns that event.
  ChatStreamResponse StartAndDrop(Replica& replica, const std::string& session,
                                  const std::string& message) {
    grpc::ClientContext context;
    ChatStreamRequest request;
    request.set_session_id(session);
    request.set_message(message);
    request.set_model(Model());
    auto reader = replica.stub->ChatStream(&context, request);
    ChatStreamResponse first;
    EXPECT_TRUE(reader->Read(&first));
    EXPECT_TRUE(first.has_delta());
    context.TryCancel();
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    return first;
  }

  StreamResult Resume(Replica& replica, const std::string& session,
                      const std::string& last_event_id,
                      bool as_metadata = false) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    chat::v1::ResumeStreamRequest request;
    request.set_session_id(session);
    if (as_metadata) {
      context.AddMetadata("last-event-id", last_event_id);
    } else {
      request.set_last_event_id(last_event_id);
    }
    auto reader = replica.stub->ResumeStream(&context, request);
    StreamResult result;
    ReadAll(*reader, &result);
    return result;
  }

  grpc::Status Cancel(Replica& replica, const std::string& session) {
    grpc::ClientContext context;
    chat::v1::CancelStreamRequest request;
    request.set_session_id(session);
    chat::v1::CancelStreamResponse response;
    grpc::Status status =
        replica.stub->CancelStream(&context, request, &response);
    if (status.ok()) {
      EXPECT_EQ(response.status(), "cancelled");
    }
    return status;
  }

  // Checks that `resumed`, after `first`, is the rest of the answer exactly
  // once and in order, and that the stored turn is that answer.
  void ExpectRestOfAnswer(Replica& replica, const std::string& session,
                          const ChatStreamResponse& first,
                          const StreamResult& resumed) {
    ASSERT_TRUE(resumed.status.ok()) << resumed.status.error_message();
    ASSERT_TRUE(resumed.got_done);
    EXPECT_EQ(first.delta().text() + resumed.text, resumed.done.response());
    EXPECT_THAT(resumed.done.response(), StartsWith("Echo of 1 messages"));
    int64_t last = SeqOf(first.event_id());
    for (const std::string& id : resumed.event_ids) {
      EXPECT_EQ(AnswerOf(id), AnswerOf(first.event_id()));
      EXPECT_GT(SeqOf(id), last) << id;
      last = SeqOf(id);
    }
    grpc::Status status;
    chat::v1::GetHistoryResponse history =
        ::chat::testing::CallGetHistory(*replica.stub, session, &status);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(history.messages_size(), 2);
    EXPECT_EQ(history.messages(1).content(), resumed.done.response());
  }

  static FakeUpstream* upstream_;
  std::string store_;
};

FakeUpstream* ResumeTest::upstream_ = nullptr;

TEST_P(ResumeTest, ADroppedStreamResumesLiveWithTheRestOnceAndOneCall) {
  Replica a = Start();
  ChatStreamResponse first = StartAndDrop(a, "live", "resume me please");
  EXPECT_EQ(SeqOf(first.event_id()), 1);
  // The answer is held upstream: the resume attaches while it runs, and the
  // rest arrives live once the fake lets it go.
  grpc::ClientContext context;
  chat::v1::ResumeStreamRequest request;
  request.set_session_id("live");
  request.set_last_event_id(first.event_id());
  auto reader = a.stub->ResumeStream(&context, request);
  upstream_->Release(Model());
  StreamResult resumed;
  ReadAll(*reader, &resumed);
  ExpectRestOfAnswer(a, "live", first, resumed);
  EXPECT_EQ(Stat("attempts"), 1);
}

TEST_P(ResumeTest, AResumeAfterTheAnswerEndedReplaysTheRestAndDone) {
  Replica a = Start();
  ChatStreamResponse first = StartAndDrop(a, "ended", "finish without me");
  upstream_->Release(Model());
  ASSERT_TRUE(Eventually([&] { return Stat("completed") >= 1; }));
  // The turn ran to its end with nobody attached; the Last-Event-ID
  // metadata (what the gateway makes of the header) resumes after the
  // first delta.
  StreamResult resumed =
      Resume(a, "ended", first.event_id(), /*as_metadata=*/true);
  ExpectRestOfAnswer(a, "ended", first, resumed);
  // From the start: the whole answer.
  StreamResult whole = Resume(a, "ended", "");
  ASSERT_TRUE(whole.got_done);
  EXPECT_EQ(whole.text, whole.done.response());
  EXPECT_EQ(Stat("attempts"), 1);
}

// A regeneration streams through ChatStream like any turn (a branch of the
// session's last turn): resumed after it ended, its `done` still names the
// new version's turn.
TEST_P(ResumeTest, AResumedRegenerationEndsWithItsTurnId) {
  Replica a = Start();
  chat::v1::ChatRequest turn;
  turn.set_session_id("again");
  turn.set_message("answer me twice");
  turn.set_model(absl::StrCat("ok@resume/", Model()));
  chat::v1::ChatResponse answered;
  grpc::Status status = ::chat::testing::CallChat(*a.stub, turn, &answered);
  ASSERT_TRUE(status.ok()) << status.error_message();

  grpc::ClientContext context;
  ChatStreamRequest request;
  request.set_session_id("again");
  request.set_regenerate_turn_id(0);  // The last turn.
  request.set_model(Model());
  auto reader = a.stub->ChatStream(&context, request);
  ChatStreamResponse first;
  ASSERT_TRUE(reader->Read(&first));
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  upstream_->Release(Model());
  ASSERT_TRUE(Eventually([&] { return Stat("completed") >= 1; }));

  StreamResult resumed = Resume(a, "again", first.event_id());
  ASSERT_TRUE(resumed.status.ok()) << resumed.status.error_message();
  ASSERT_TRUE(resumed.got_done);
  EXPECT_EQ(first.delta().text() + resumed.text, resumed.done.response());
  EXPECT_EQ(resumed.done.turn_id(), 2);
  EXPECT_EQ(resumed.done.turn_count(), 1);
  chat::v1::GetHistoryResponse history =
      ::chat::testing::CallGetHistory(*a.stub, "again", &status);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(history.messages_size(), 2);
  EXPECT_EQ(history.messages(1).content(), resumed.done.response());
  EXPECT_THAT(history.messages(1).sibling_turn_ids(),
              ::testing::ElementsAre(1, 2));
  EXPECT_EQ(Stat("attempts"), 1);
}

TEST_P(ResumeTest, AnUnknownAnswerIsNotFound) {
  Replica a = Start();
  EXPECT_EQ(Resume(a, "nothing", "").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Resume(a, "nothing", "0123abcd:4").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Resume(a, "nothing", "no-sequence").status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Cancel(a, "nothing").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_P(ResumeTest, AnAnswerWithNoClientForTheTtlIsCancelledUpstream) {
  Replica a = Start({"--detached_stream_ttl=300ms"});
  ChatStreamResponse first = StartAndDrop(a, "abandoned", "nobody listens");
  // Still held: only the detached TTL can end it.
  ASSERT_TRUE(Eventually([&] { return Stat("closed_early") >= 1; }))
      << upstream_->Stats(Model()).dump();
  StreamResult resumed = Resume(a, "abandoned", first.event_id());
  EXPECT_EQ(resumed.status.error_code(), grpc::StatusCode::CANCELLED)
      << resumed.status.error_message();
  grpc::Status status;
  ::chat::testing::CallGetHistory(*a.stub, "abandoned", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Stat("attempts"), 1);
}

TEST_P(ResumeTest, CancelStopsTheRunningAnswerAndItsClient) {
  Replica a = Start();
  grpc::ClientContext context;
  ChatStreamRequest request;
  request.set_session_id("stopped");
  request.set_message("stop me");
  request.set_model(Model());
  auto reader = a.stub->ChatStream(&context, request);
  ChatStreamResponse first;
  ASSERT_TRUE(reader->Read(&first));
  ASSERT_TRUE(Cancel(a, "stopped").ok());
  StreamResult rest;
  ReadAll(*reader, &rest);
  EXPECT_EQ(rest.status.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(Eventually([&] { return Stat("closed_early") >= 1; }));
  // Nothing runs any more, once the ended answer's outcome is stored (the
  // client hears of the end first; until then a cancel only marks it).
  EXPECT_TRUE(Eventually([&] {
    return Cancel(a, "stopped").error_code() == grpc::StatusCode::NOT_FOUND;
  }));
}

INSTANTIATE_TEST_SUITE_P(Stores, ResumeTest,
                         ::testing::Values("sqlite", "postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// Two replicas on one PostgreSQL database.
class ResumeReplicasTest : public ResumeTest {};

TEST_P(ResumeReplicasTest, AStreamStartedOnAResumesOnB) {
  Replica a = Start();
  Replica b = Start();
  ChatStreamResponse first = StartAndDrop(a, "moved", "follow me to b");
  grpc::ClientContext context;
  chat::v1::ResumeStreamRequest request;
  request.set_session_id("moved");
  request.set_last_event_id(first.event_id());
  auto reader = b.stub->ResumeStream(&context, request);
  upstream_->Release(Model());
  StreamResult resumed;
  ReadAll(*reader, &resumed);
  ExpectRestOfAnswer(b, "moved", first, resumed);
  EXPECT_EQ(Stat("attempts"), 1);
}

// B reads the ended answer from the store: its `done` keeps an edit's turn.
TEST_P(ResumeReplicasTest, AnEditStreamedOnAEndsWithItsTurnIdOnB) {
  Replica a = Start();
  Replica b = Start();
  chat::v1::ChatRequest turn;
  turn.set_session_id("edited");
  turn.set_message("first words");
  turn.set_model(absl::StrCat("ok@resume/", Model()));
  chat::v1::ChatResponse answered;
  grpc::Status status = ::chat::testing::CallChat(*a.stub, turn, &answered);
  ASSERT_TRUE(status.ok()) << status.error_message();

  grpc::ClientContext context;
  ChatStreamRequest request;
  request.set_session_id("edited");
  request.set_edit_turn_id(1);
  request.set_message("better words");
  request.set_model(Model());
  auto reader = a.stub->ChatStream(&context, request);
  ChatStreamResponse first;
  ASSERT_TRUE(reader->Read(&first));
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  upstream_->Release(Model());
  ASSERT_TRUE(Eventually([&] { return Stat("completed") >= 1; }));

  // B finds the answer once A stored its outcome.
  StreamResult resumed;
  ASSERT_TRUE(Eventually([&] {
    resumed = Resume(b, "edited", first.event_id());
    return resumed.got_done;
  })) << resumed.status.error_message();
  EXPECT_EQ(first.delta().text() + resumed.text, resumed.done.response());
  EXPECT_THAT(resumed.done.response(), HasSubstr("better words"));
  EXPECT_EQ(resumed.done.turn_id(), 2);
  EXPECT_EQ(Stat("attempts"), 1);
}

TEST_P(ResumeReplicasTest, CancelOnBStopsTheAnswerRunningOnA) {
  Replica a = Start();
  Replica b = Start();
  grpc::ClientContext context;
  ChatStreamRequest request;
  request.set_session_id("remote-stop");
  request.set_message("stop me from b");
  request.set_model(Model());
  auto reader = a.stub->ChatStream(&context, request);
  ChatStreamResponse first;
  ASSERT_TRUE(reader->Read(&first));
  // B knows the answer only once A wrote it (every 100ms).
  grpc::Status cancelled;
  ASSERT_TRUE(Eventually([&] {
    cancelled = Cancel(b, "remote-stop");
    return cancelled.error_code() != grpc::StatusCode::NOT_FOUND;
  }));
  ASSERT_TRUE(cancelled.ok()) << cancelled.error_message();
  StreamResult rest;
  ReadAll(*reader, &rest);
  EXPECT_EQ(rest.status.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(Eventually([&] { return Stat("closed_early") >= 1; }));
  EXPECT_EQ(Stat("attempts"), 1);
}

INSTANTIATE_TEST_SUITE_P(Postgres, ResumeReplicasTest,
                         ::testing::Values("postgres"));

}  // namespace
}  // namespace chat
