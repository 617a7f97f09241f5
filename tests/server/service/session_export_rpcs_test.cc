// ExportSession, ExportSessions and ImportSession through a real channel to
// an in-process server (memory store, anonymous loopback caller: tenant
// "default"): what each answers, the stream ending after the last session,
// and the status codes of the refusals.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/service_fixture.h"

namespace chat {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

class SessionExportRpcsTest : public testing::ServiceFixture {
 protected:
  chat::v1::SessionExport Export(const std::string& session_id) {
    grpc::ClientContext context;
    chat::v1::ExportSessionRequest request;
    request.set_session_id(session_id);
    chat::v1::ExportSessionResponse response;
    grpc::Status status =
        server_.stub().ExportSession(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.session();
  }

  grpc::Status Import(const chat::v1::SessionExport& session, bool replace,
                      chat::v1::ImportSessionResponse* response) {
    grpc::ClientContext context;
    chat::v1::ImportSessionRequest request;
    *request.mutable_session() = session;
    request.set_replace(replace);
    return server_.stub().ImportSession(&context, request, response);
  }
};

TEST_F(SessionExportRpcsTest, ExportThenImportUnderAnotherId) {
  ServeNextTurn("s1");
  ServeNextTurn("s1");
  chat::v1::SessionExport exported = Export("s1");
  ASSERT_EQ(exported.messages_size(), 4);
  EXPECT_EQ(exported.active_turn_id(), 2);

  exported.set_session_id("copy");
  chat::v1::ImportSessionResponse response;
  grpc::Status status = Import(exported, false, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.session().session_id(), "copy");
  EXPECT_EQ(response.session().turns(), 2);
  EXPECT_EQ(Export("copy").SerializeAsString(), exported.SerializeAsString());
}

TEST_F(SessionExportRpcsTest, ImportOfATakenIdIsAlreadyExistsUnlessReplacing) {
  ServeNextTurn("s1");
  chat::v1::SessionExport exported = Export("s1");
  chat::v1::ImportSessionResponse response;
  EXPECT_EQ(Import(exported, false, &response).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_TRUE(Import(exported, true, &response).ok());
}

TEST_F(SessionExportRpcsTest, BadImportIsInvalidArgumentNamingTheField) {
  ServeNextTurn("s1");
  chat::v1::SessionExport exported = Export("s1");
  exported.set_session_id("s2");
  exported.mutable_messages(1)->set_role("robot");
  chat::v1::ImportSessionResponse response;
  grpc::Status status = Import(exported, false, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("session.messages[1].role"));

  grpc::ClientContext context;
  chat::v1::ImportSessionRequest empty;
  EXPECT_EQ(
      server_.stub().ImportSession(&context, empty, &response).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SessionExportRpcsTest, ExportOfAnUnknownSessionIsNotFound) {
  grpc::ClientContext context;
  chat::v1::ExportSessionRequest request;
  request.set_session_id("nope");
  chat::v1::ExportSessionResponse response;
  EXPECT_EQ(
      server_.stub().ExportSession(&context, request, &response).error_code(),
      grpc::StatusCode::NOT_FOUND);
}

TEST_F(SessionExportRpcsTest, MarkdownFormatAndUnknownFormat) {
  ServeNextTurn("s1");
  {
    grpc::ClientContext context;
    chat::v1::ExportSessionRequest request;
    request.set_session_id("s1");
    request.set_format("markdown");
    chat::v1::ExportSessionResponse response;
    ASSERT_TRUE(
        server_.stub().ExportSession(&context, request, &response).ok());
    EXPECT_FALSE(response.has_session());
    EXPECT_THAT(response.markdown(), HasSubstr("## Assistant"));
  }
  grpc::ClientContext context;
  chat::v1::ExportSessionRequest request;
  request.set_session_id("s1");
  request.set_format("pdf");
  chat::v1::ExportSessionResponse response;
  grpc::Status status =
      server_.stub().ExportSession(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("format"));
}

TEST_F(SessionExportRpcsTest, ExportSessionsStreamsEverySessionThenEnds) {
  ServeNextTurn("a");
  ServeNextTurn("b");
  ServeNextTurn("c");
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<chat::v1::ExportSessionsResponse>> reader =
      server_.stub().ExportSessions(&context, {});
  std::vector<std::string> ids;
  chat::v1::ExportSessionsResponse message;
  while (reader->Read(&message)) {
    ids.push_back(message.session().session_id());
    EXPECT_EQ(message.session().messages_size(), 2);
  }
  grpc::Status status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(ids, UnorderedElementsAre("a", "b", "c"));
}

TEST_F(SessionExportRpcsTest, ExportSessionsOfAnEmptyTenantEndsAtOnce) {
  grpc::ClientContext context;
  auto reader = server_.stub().ExportSessions(&context, {});
  chat::v1::ExportSessionsResponse message;
  EXPECT_FALSE(reader->Read(&message));
  EXPECT_TRUE(reader->Finish().ok());
}

}  // namespace
}  // namespace chat
