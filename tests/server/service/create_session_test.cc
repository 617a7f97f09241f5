// CreateSession through a real channel to an in-process server (memory
// store, anonymous loopback caller: tenant "default"), and EmptySessionFor
// on its own: the ids it makes and accepts, the defaults, the refusals and
// their codes, and that the first turn of a created session uses the
// system prompt it was created with.

#include "server/service/create_session.h"

#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/engine/validation.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/service_fixture.h"
#include "tests/testing/status_matchers.h"

namespace chat {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(NewSessionIdTest, IsAValidSessionIdAndFresh) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string id = NewSessionId();
    EXPECT_THAT(ValidateSessionId(id), IsOk()) << id;
    EXPECT_TRUE(absl::StartsWith(id, "s-")) << id;
    EXPECT_EQ(id.size(), 2u + kNewSessionIdRandomChars) << id;
    EXPECT_TRUE(seen.insert(id).second) << id;
  }
}

TEST(EmptySessionForTest, FillsDefaultsAndTrimsTheTitle) {
  chat::v1::CreateSessionRequest request;
  request.set_title("  Plans  ");
  absl::StatusOr<store::SessionArchive> archive =
      EmptySessionFor(request, "default prompt", {}, absl::FromUnixSeconds(7));
  ASSERT_THAT(archive, IsOk());
  EXPECT_TRUE(absl::StartsWith(archive->session_id, "s-"));
  EXPECT_EQ(archive->system_prompt, "default prompt");
  EXPECT_EQ(archive->title, "Plans");
  EXPECT_EQ(archive->created_at, absl::FromUnixSeconds(7));
  EXPECT_EQ(archive->updated_at, absl::FromUnixSeconds(7));
  EXPECT_TRUE(archive->turns.empty());
  EXPECT_EQ(archive->active_turn_id, 0);
  EXPECT_THAT(store::ValidateSessionArchive(*archive), IsOk());
}

TEST(EmptySessionForTest, AnEmptySystemPromptIsKept) {
  chat::v1::CreateSessionRequest request;
  request.set_session_id("mine");
  request.set_system_prompt("");
  absl::StatusOr<store::SessionArchive> archive =
      EmptySessionFor(request, "default prompt", {}, absl::Now());
  ASSERT_THAT(archive, IsOk());
  EXPECT_EQ(archive->session_id, "mine");
  EXPECT_EQ(archive->system_prompt, "");
}

struct BadRequestCase {
  std::string name;
  chat::v1::CreateSessionRequest request;
  std::string field;
};

class EmptySessionForRefusalTest
    : public ::testing::TestWithParam<BadRequestCase> {};

TEST_P(EmptySessionForRefusalTest, IsInvalidArgumentNamingTheField) {
  RequestLimits limits;
  limits.max_system_prompt_bytes = 10;
  EXPECT_THAT(EmptySessionFor(GetParam().request, "p", limits, absl::Now()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().field)));
}

std::vector<BadRequestCase> BadRequests() {
  std::vector<BadRequestCase> cases;
  auto add = [&](std::string name, std::string field, auto fill) {
    BadRequestCase c{std::move(name), {}, std::move(field)};
    fill(c.request);
    cases.push_back(std::move(c));
  };
  add("EmptyId", "session_id",
      [](chat::v1::CreateSessionRequest& r) { r.set_session_id(""); });
  add("IdWithASpace", "session_id",
      [](chat::v1::CreateSessionRequest& r) { r.set_session_id("a b"); });
  add("IdTooLong", "session_id", [](chat::v1::CreateSessionRequest& r) {
    r.set_session_id(std::string(kMaxSessionIdBytes + 1, 'a'));
  });
  add("PromptTooLong", "system_prompt", [](chat::v1::CreateSessionRequest& r) {
    r.set_system_prompt(std::string(11, 'a'));
  });
  add("PromptWithNul", "system_prompt", [](chat::v1::CreateSessionRequest& r) {
    r.set_system_prompt(std::string("a\0b", 3));
  });
  add("TitleTooLong", "title", [](chat::v1::CreateSessionRequest& r) {
    r.set_title(std::string(201, 'a'));
  });
  add("TitleWithControl", "title",
      [](chat::v1::CreateSessionRequest& r) { r.set_title("a\nb"); });
  return cases;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EmptySessionForRefusalTest, ::testing::ValuesIn(BadRequests()),
    [](const ::testing::TestParamInfo<BadRequestCase>& info) {
      return info.param.name;
    });

class CreateSessionRpcTest : public testing::ServiceFixture {
 protected:
  grpc::Status Create(const chat::v1::CreateSessionRequest& request,
                      chat::v1::CreateSessionResponse* response) {
    grpc::ClientContext context;
    return server_.stub().CreateSession(&context, request, response);
  }

  grpc::Status History(const std::string& session,
                       chat::v1::GetHistoryResponse* response) {
    grpc::ClientContext context;
    chat::v1::GetHistoryRequest request;
    request.set_session_id(session);
    return server_.stub().GetHistory(&context, request, response);
  }
};

TEST_F(CreateSessionRpcTest, CreatesAnEmptySessionOthersSee) {
  chat::v1::CreateSessionRequest request;
  request.set_session_id("fresh");
  request.set_system_prompt("be terse");
  request.set_title("Plans");
  chat::v1::CreateSessionResponse response;
  grpc::Status status = Create(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.session().session_id(), "fresh");
  EXPECT_EQ(response.session().turns(), 0);
  EXPECT_EQ(response.session().title(), "Plans");
  EXPECT_FALSE(response.session().created_at().empty());
  EXPECT_EQ(response.session().updated_at(), response.session().created_at());
  EXPECT_EQ(response.system_prompt(), "be terse");

  chat::v1::GetHistoryResponse history;
  status = History("fresh", &history);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(history.messages(), IsEmpty());
  EXPECT_EQ(history.system_prompt(), "be terse");
  EXPECT_EQ(history.title(), "Plans");
  EXPECT_EQ(history.created_at(), response.session().created_at());

  grpc::ClientContext context;
  chat::v1::ListSessionsResponse listed;
  ASSERT_TRUE(
      server_.stub()
          .ListSessions(&context, chat::v1::ListSessionsRequest(), &listed)
          .ok());
  ASSERT_EQ(listed.sessions_size(), 1);
  EXPECT_EQ(listed.sessions(0).session_id(), "fresh");
}

TEST_F(CreateSessionRpcTest, TheFirstTurnUsesTheCreatedSystemPrompt) {
  chat::v1::CreateSessionRequest request;
  request.set_session_id("fresh");
  request.set_system_prompt("be terse");
  chat::v1::CreateSessionResponse response;
  ASSERT_TRUE(Create(request, &response).ok());

  ServeNextTurn("fresh");
  std::vector<llm::CompletionRequest> asked = server_.provider().requests();
  ASSERT_FALSE(asked.empty());
  EXPECT_EQ(asked.back().system_prompt, "be terse");
  EXPECT_EQ(Contents("fresh").size(), 2u);
}

TEST_F(CreateSessionRpcTest, WithoutAnIdTheServerMakesOneAndTheDefaultPrompt) {
  chat::v1::CreateSessionResponse first;
  chat::v1::CreateSessionResponse second;
  ASSERT_TRUE(Create({}, &first).ok());
  ASSERT_TRUE(Create({}, &second).ok());
  EXPECT_TRUE(absl::StartsWith(first.session().session_id(), "s-"));
  EXPECT_NE(first.session().session_id(), second.session().session_id());
  EXPECT_EQ(first.system_prompt(), ChatEngineOptions().default_system_prompt);
  EXPECT_EQ(first.session().title(), "");
}

TEST_F(CreateSessionRpcTest, ATakenIdIsAlreadyExists) {
  ServeNextTurn("taken");
  chat::v1::CreateSessionRequest request;
  request.set_session_id("taken");
  chat::v1::CreateSessionResponse response;
  grpc::Status status = Create(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("taken"));
  // The session is as it was.
  EXPECT_EQ(Contents("taken").size(), 2u);
}

TEST_F(CreateSessionRpcTest, ABadFieldIsInvalidArgumentNamingIt) {
  chat::v1::CreateSessionRequest request;
  request.set_session_id("bad id");
  chat::v1::CreateSessionResponse response;
  grpc::Status status = Create(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("session_id"));
}

TEST(CreateSessionLimitTest, TheTenantsSessionLimitApplies) {
  ChatEngineOptions options;
  options.max_sessions_per_tenant = 1;
  testing::TestServer server(options);
  chat::v1::CreateSessionResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(server.stub().CreateSession(&context, {}, &response).ok());
  }
  grpc::ClientContext context;
  grpc::Status status = server.stub().CreateSession(&context, {}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_sessions_per_tenant"));
}

}  // namespace
}  // namespace chat
