// Edit and regenerate as branches, through the real chat-server binary on
// SQLite and on PostgreSQL (CHAT_TEST_POSTGRES_DSN; skipped without it).
//
// Strategy: the echo provider's reply names the user message before the new
// one ("Before that you said: ..."), so every answer proves which branch the
// model was shown. Each test builds a short conversation, edits or
// regenerates a turn (unary and streamed), switches between the versions,
// and reads GetHistory after each step.

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::MakeTempDir;
using ::chat::testing::ServerProcess;
using ::chat::v1::ChatResponse;
using ::chat::v1::ChatService;
using ::chat::v1::GetHistoryResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

const bool kFastClientPolling = ::chat::testing::PollIdleChannelsOften();

std::chrono::system_clock::time_point Deadline() {
  return std::chrono::system_clock::now() + std::chrono::seconds(30);
}

std::vector<std::string> Contents(const GetHistoryResponse& history) {
  std::vector<std::string> contents;
  for (const chat::v1::Message& m : history.messages()) {
    contents.push_back(m.role() == "user" ? m.content() : "(answer)");
  }
  return contents;
}

class BranchesTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string store;
    if (GetParam() == "Postgres") {
      if (::chat::testing::PostgresTestDsn().empty()) {
        if (::chat::testing::PostgresRequired()) {
          GTEST_FAIL() << "CHAT_TEST_REQUIRE_POSTGRES=1 but "
                          "CHAT_TEST_POSTGRES_DSN is unset";
        }
        GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run on PostgreSQL";
      }
      absl::StatusOr<std::string> conninfo =
          ::chat::testing::MakeFreshPostgresSchema();
      ASSERT_TRUE(conninfo.ok()) << conninfo.status();
      store = absl::StrCat("postgres:", *conninfo);
    } else {
      store = absl::StrCat("sqlite:", MakeTempDir(), "/chat.db");
    }
    server_ = std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY,
        std::vector<std::string>{
            "--listen=127.0.0.1:0", absl::StrCat("--store=", store),
            "--echo_delay=1ms", "--shutdown_grace=5s", "--provider=echo"});
    ASSERT_TRUE(server_->Start().ok()) << server_->Log();
    stub_ = ChatService::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    absl::StatusOr<int> code = server_->Stop(SIGTERM);
    ASSERT_TRUE(code.ok()) << code.status();
    EXPECT_EQ(*code, 0) << server_->Log();
  }

  void Say(const std::string& message) {
    ChatResponse response;
    grpc::Status status = ::chat::testing::CallChat(
        *stub_, ::chat::testing::MakeChatRequest("s", message), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  grpc::Status Regenerate(int turn_id,
                          chat::v1::RegenerateTurnResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    chat::v1::RegenerateTurnRequest request;
    request.set_session_id("s");
    if (turn_id > 0) request.set_turn_id(turn_id);
    return stub_->RegenerateTurn(&context, request, response);
  }

  grpc::Status Edit(int turn_id, const std::string& message,
                    chat::v1::EditMessageResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    chat::v1::EditMessageRequest request;
    request.set_session_id("s");
    request.set_turn_id(turn_id);
    request.set_message(message);
    return stub_->EditMessage(&context, request, response);
  }

  grpc::Status Switch(int turn_id, GetHistoryResponse* history) {
    chat::v1::SwitchBranchResponse switched;
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    chat::v1::SwitchBranchRequest request;
    request.set_session_id("s");
    request.set_turn_id(turn_id);
    grpc::Status status = stub_->SwitchBranch(&context, request, &switched);
    // The same fields, so the same bytes.
    history->ParseFromString(switched.SerializeAsString());
    return status;
  }

  // A streamed edit or regeneration; returns the joined deltas in `text`.
  grpc::Status Stream(const chat::v1::ChatStreamRequest& request,
                      std::string* text, ChatResponse* done) {
    grpc::ClientContext context;
    context.set_deadline(Deadline());
    std::unique_ptr<grpc::ClientReader<chat::v1::ChatStreamResponse>> reader =
        stub_->ChatStream(&context, request);
    chat::v1::ChatStreamResponse event;
    while (reader->Read(&event)) {
      if (event.has_delta()) text->append(event.delta().text());
      if (event.has_done()) *done = event.done();
    }
    return reader->Finish();
  }

  GetHistoryResponse History() {
    grpc::Status status;
    GetHistoryResponse history =
        ::chat::testing::CallGetHistory(*stub_, "s", &status);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return history;
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<ChatService::Stub> stub_;
};

TEST_P(BranchesTest, EditKeepsTheOldBranchAndTheModelSeesTheNewOne) {
  Say("one");
  Say("two");
  Say("three");
  chat::v1::EditMessageResponse edited;
  grpc::Status status = Edit(2, "deux", &edited);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(edited.turn_id(), 4);
  EXPECT_EQ(edited.turn_count(), 2);
  EXPECT_THAT(edited.response(), HasSubstr("You said: \"deux\""));
  EXPECT_THAT(edited.response(), HasSubstr("Before that you said: \"one\""));

  GetHistoryResponse history = History();
  EXPECT_EQ(history.turn_count(), 2);
  EXPECT_THAT(Contents(history),
              ElementsAre("one", "(answer)", "deux", "(answer)"));
  EXPECT_THAT(history.messages(2).sibling_turn_ids(), ElementsAre(2, 4));
  EXPECT_EQ(history.messages(2).sibling_index(), 1);
  EXPECT_EQ(history.messages(3).turn_id(), 4);
  EXPECT_EQ(history.messages(0).sibling_turn_ids_size(), 1);

  // The next turn follows the edit, not the old "three".
  Say("four");
  history = History();
  EXPECT_THAT(history.messages(5).content(),
              HasSubstr("Before that you said: \"deux\""));

  // Back to the old version: its whole branch, "three" included.
  ASSERT_TRUE(Switch(2, &history).ok());
  EXPECT_EQ(history.turn_count(), 3);
  EXPECT_THAT(Contents(history), ElementsAre("one", "(answer)", "two",
                                             "(answer)", "three", "(answer)"));
  EXPECT_EQ(history.messages(2).sibling_index(), 0);
  EXPECT_EQ(History().turn_count(), 3);
  // And forward again: the edit's branch, with "four".
  ASSERT_TRUE(Switch(4, &history).ok());
  EXPECT_THAT(Contents(history), ElementsAre("one", "(answer)", "deux",
                                             "(answer)", "four", "(answer)"));
}

TEST_P(BranchesTest, RegenerateAsksTheSameMessageAgainAsASibling) {
  Say("one");
  Say("two");
  chat::v1::RegenerateTurnResponse again;
  grpc::Status status = Regenerate(0, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.turn_id(), 3);
  EXPECT_EQ(again.turn_count(), 2);
  EXPECT_THAT(again.response(), HasSubstr("You said: \"two\""));
  EXPECT_THAT(again.response(), HasSubstr("Before that you said: \"one\""));

  // The first turn regenerated: a new first turn, seeing nothing before it.
  status = Regenerate(1, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.turn_id(), 4);
  EXPECT_EQ(again.turn_count(), 1);
  EXPECT_THAT(again.response(), HasSubstr("start of our conversation"));
  GetHistoryResponse history = History();
  EXPECT_THAT(Contents(history), ElementsAre("one", "(answer)"));
  EXPECT_THAT(history.messages(0).sibling_turn_ids(), ElementsAre(1, 4));

  ASSERT_TRUE(Switch(1, &history).ok());
  EXPECT_THAT(Contents(history),
              ElementsAre("one", "(answer)", "two", "(answer)"));
  EXPECT_THAT(history.messages(3).sibling_turn_ids(), ElementsAre(2, 3));
  EXPECT_EQ(history.messages(3).sibling_index(), 1);
}

TEST_P(BranchesTest, ChatStreamEditsAndRegeneratesByFlag) {
  Say("one");
  Say("two");
  chat::v1::ChatStreamRequest request;
  request.set_session_id("s");
  request.set_message("zwei");
  request.set_edit_turn_id(2);
  std::string text;
  ChatResponse done;
  grpc::Status status = Stream(request, &text, &done);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(text, done.response());
  EXPECT_THAT(text, HasSubstr("You said: \"zwei\""));
  EXPECT_EQ(done.turn_id(), 3);

  request.Clear();
  request.set_session_id("s");
  request.set_regenerate_turn_id(0);
  text.clear();
  status = Stream(request, &text, &done);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(text, HasSubstr("You said: \"zwei\""));
  EXPECT_EQ(done.turn_id(), 4);
  GetHistoryResponse history = History();
  EXPECT_THAT(history.messages(2).sibling_turn_ids(), ElementsAre(2, 3, 4));
  EXPECT_EQ(history.messages(2).sibling_index(), 2);
}

// A turn after an earlier turn forks the conversation there: the turns that
// followed stay on their own branch.
TEST_P(BranchesTest, ATurnAfterAnEarlierTurnStartsABranchThere) {
  Say("one");
  Say("two");
  Say("three");
  chat::v1::ChatRequest after = ::chat::testing::MakeChatRequest("s", "deux");
  after.set_after_turn_id(1);
  ChatResponse response;
  grpc::Status status = ::chat::testing::CallChat(*stub_, after, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.turn_id(), 4);
  EXPECT_EQ(response.turn_count(), 2);
  EXPECT_THAT(response.response(), HasSubstr("Before that you said: \"one\""));
  GetHistoryResponse history = History();
  EXPECT_THAT(Contents(history),
              ElementsAre("one", "(answer)", "deux", "(answer)"));
  EXPECT_THAT(history.messages(2).sibling_turn_ids(), ElementsAre(2, 4));

  // After the last turn of the active branch it is a plain next turn, and
  // streamed it says which turn it stored.
  chat::v1::ChatStreamRequest streamed;
  streamed.set_session_id("s");
  streamed.set_message("trois");
  streamed.set_after_turn_id(4);
  std::string text;
  ChatResponse done;
  status = Stream(streamed, &text, &done);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(done.turn_id(), 5);
  EXPECT_EQ(done.turn_count(), 3);
  EXPECT_THAT(text, HasSubstr("Before that you said: \"deux\""));
  EXPECT_EQ(History().messages(4).sibling_turn_ids_size(), 1);

  // The old branch is untouched.
  ASSERT_TRUE(Switch(3, &history).ok());
  EXPECT_THAT(Contents(history), ElementsAre("one", "(answer)", "two",
                                             "(answer)", "three", "(answer)"));

  after.set_after_turn_id(9);
  EXPECT_EQ(::chat::testing::CallChat(*stub_, after, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  after.set_after_turn_id(0);
  EXPECT_EQ(::chat::testing::CallChat(*stub_, after, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  after.set_after_turn_id(1);
  after.set_request_id("retry-safe");
  EXPECT_EQ(::chat::testing::CallChat(*stub_, after, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  streamed.set_edit_turn_id(1);
  EXPECT_EQ(Stream(streamed, &text, &done).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(BranchesTest, RefusalsLeaveTheHistoryAsItWas) {
  chat::v1::EditMessageResponse edited;
  chat::v1::RegenerateTurnResponse regenerated;
  ChatResponse response;
  EXPECT_EQ(Edit(1, "x", &edited).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Regenerate(0, &regenerated).error_code(),
            grpc::StatusCode::NOT_FOUND);
  Say("one");
  EXPECT_EQ(Edit(5, "x", &edited).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Edit(1, "", &edited).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Regenerate(9, &regenerated).error_code(),
            grpc::StatusCode::NOT_FOUND);
  GetHistoryResponse history;
  EXPECT_EQ(Switch(9, &history).error_code(), grpc::StatusCode::NOT_FOUND);

  chat::v1::ChatStreamRequest both;
  both.set_session_id("s");
  both.set_edit_turn_id(1);
  both.set_regenerate_turn_id(1);
  std::string text;
  EXPECT_EQ(Stream(both, &text, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  chat::v1::ChatStreamRequest regenerate_with_message;
  regenerate_with_message.set_session_id("s");
  regenerate_with_message.set_message("x");
  regenerate_with_message.set_regenerate_turn_id(1);
  EXPECT_EQ(Stream(regenerate_with_message, &text, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  {
    grpc::ClientContext context;
    chat::v1::ResetSessionRequest reset;
    reset.set_session_id("s");
    chat::v1::ResetSessionResponse reset_response;
    ASSERT_TRUE(stub_->ResetSession(&context, reset, &reset_response).ok());
  }
  EXPECT_EQ(Regenerate(0, &regenerated).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  history = History();
  EXPECT_EQ(history.messages_size(), 0);
  EXPECT_THAT(history.messages(), Not(::testing::Contains(::testing::_)));
}

INSTANTIATE_TEST_SUITE_P(Stores, BranchesTest,
                         ::testing::Values("Sqlite", "Postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace chat
