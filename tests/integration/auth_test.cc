// Authentication through the real chat-server binary on loopback.
//
// Strategy: start chat-server as a child process (memory or SQLite store, the
// echo provider) and call it with the generated stubs, setting the
// `authorization` / `x-api-key` metadata a client would. Keys are made with
// the admin service (admin key from CHAT_ADMIN_KEY) and with the `keys`
// command on a SQLite file. Changes another replica would see only after the
// key cache's lifetime (a revocation, a first key) are awaited with a bounded
// Eventually, never a fixed sleep. Every refusal is checked for the exact
// message, and the server's stderr for the absence of any key.

#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "chat/admin/v1/admin.grpc.pb.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/eventually.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::Eventually;
using ::chat::testing::MakeTempDir;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::Not;

namespace adminpb = ::chat::admin::v1;

constexpr char kAdminKey[] = "integration-admin-key-0123456789";

// Metadata of one call: name, value.
using Metadata = std::vector<std::pair<std::string, std::string>>;

Metadata Bearer(const std::string& key) {
  return {{"authorization", "Bearer " + key}};
}

void Prepare(grpc::ClientContext* context, const Metadata& metadata) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  for (const auto& [name, value] : metadata) {
    context->AddMetadata(name, value);
  }
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }

  // Starts chat-server with `args` (plus the echo provider and a free
  // loopback port unless `args` names --listen) and `env`.
  void StartServer(std::vector<std::string> args,
                   std::map<std::string, std::string> env = {}) {
    std::vector<std::string> all = {"--provider=echo", "--echo_delay=0s",
                                    "--shutdown_grace=2s"};
    bool has_listen = false;
    for (const std::string& arg : args) {
      if (absl::StartsWith(arg, "--listen=")) has_listen = true;
    }
    if (!has_listen) all.push_back("--listen=127.0.0.1:0");
    all.insert(all.end(), args.begin(), args.end());
    server_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY, all,
                                              std::move(env));
    server_->set_working_dir(dir_);
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    auto channel = grpc::CreateChannel(server_->address(),
                                       grpc::InsecureChannelCredentials());
    chat_ = v1::ChatService::NewStub(channel);
    admin_ = adminpb::AdminService::NewStub(channel);
    health_ = grpc::health::v1::Health::NewStub(channel);
  }

  void StartWithAdminKey(const std::string& store = "--store=memory") {
    StartServer({store}, {{"CHAT_ADMIN_KEY", kAdminKey}});
  }

  grpc::Status Chat(const Metadata& metadata, const std::string& session,
                    v1::ChatResponse* response = nullptr) {
    grpc::ClientContext context;
    Prepare(&context, metadata);
    v1::ChatRequest request;
    request.set_session_id(session);
    request.set_message("hello");
    v1::ChatResponse ignored;
    return chat_->Chat(&context, request,
                       response != nullptr ? response : &ignored);
  }

  grpc::Status ChatStream(const Metadata& metadata,
                          const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, metadata);
    v1::ChatStreamRequest request;
    request.set_session_id(session);
    request.set_message("streamed");
    auto reader = chat_->ChatStream(&context, request);
    v1::ChatStreamResponse event;
    while (reader->Read(&event)) {
    }
    return reader->Finish();
  }

  grpc::Status History(const Metadata& metadata, const std::string& session,
                       v1::GetHistoryResponse* response = nullptr) {
    grpc::ClientContext context;
    Prepare(&context, metadata);
    v1::GetHistoryRequest request;
    request.set_session_id(session);
    v1::GetHistoryResponse ignored;
    return chat_->GetHistory(&context, request,
                             response != nullptr ? response : &ignored);
  }

  grpc::Status List(const Metadata& metadata,
                    v1::ListSessionsResponse* response) {
    grpc::ClientContext context;
    Prepare(&context, metadata);
    return chat_->ListSessions(&context, v1::ListSessionsRequest(), response);
  }

  grpc::Status CreateKey(const Metadata& metadata,
                         const adminpb::CreateKeyRequest& request,
                         adminpb::CreateKeyResponse* response) {
    grpc::ClientContext context;
    Prepare(&context, metadata);
    return admin_->CreateKey(&context, request, response);
  }

  // Creates a key for `tenant` with the admin key; "" on failure.
  std::string NewKey(const std::string& tenant,
                     const std::string& expires_in = "") {
    adminpb::CreateKeyRequest request;
    request.set_tenant(tenant);
    request.set_name("test");
    request.set_expires_in(expires_in);
    adminpb::CreateKeyResponse response;
    grpc::Status status = CreateKey(Bearer(kAdminKey), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    keys_.push_back(response.key());
    return response.key();
  }

  grpc::Status Revoke(const std::string& id) {
    grpc::ClientContext context;
    Prepare(&context, Bearer(kAdminKey));
    adminpb::RevokeKeyRequest request;
    request.set_key_id(id);
    adminpb::RevokeKeyResponse response;
    return admin_->RevokeKey(&context, request, &response);
  }

  // Runs `chat-server keys ...` in the test's directory.
  int Keys(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {
        "/bin/sh", "-c",
        absl::StrCat("cd '", dir_, "' && '", CHAT_SERVER_BINARY, "' keys")};
    for (const std::string& arg : args) argv[2] += " '" + arg + "'";
    absl::StatusOr<int> code = RunCommand(argv, output);
    EXPECT_TRUE(code.ok()) << code.status();
    return code.ok() ? *code : -1;
  }

  // Whether `status` is the one refusal every bad key gets.
  static bool IsInvalidKey(const grpc::Status& status) {
    return status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
           status.error_message() == "invalid API key";
  }
  static bool IsMissingKey(const grpc::Status& status) {
    return status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
           status.error_message() == "missing API key";
  }

  // No key made during the test shows in the server's log.
  void ExpectNoKeyInLog() {
    const std::string log = server_->Log();
    for (const std::string& key : keys_) {
      if (key.empty()) continue;
      EXPECT_THAT(log, Not(HasSubstr(key.substr(19)))) << "secret logged";
    }
    EXPECT_THAT(log, Not(HasSubstr(kAdminKey)));
  }

  std::string dir_;
  std::vector<std::string> keys_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::ChatService::Stub> chat_;
  std::unique_ptr<adminpb::AdminService::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

TEST_F(AuthTest, WithNoKeysLoopbackCallsAreTheDefaultTenant) {
  StartServer({"--store=memory"});
  ASSERT_TRUE(Chat({}, "s1").ok());
  ASSERT_TRUE(ChatStream({}, "s1").ok());
  v1::GetHistoryResponse history;
  ASSERT_TRUE(History({}, "s1", &history).ok());
  EXPECT_EQ(history.turn_count(), 2);
  // A client behind chat-gateway on another host is not loopback.
  grpc::Status forwarded = Chat({{"x-forwarded-for", "203.0.113.9"}}, "s1");
  EXPECT_TRUE(IsMissingKey(forwarded)) << forwarded.error_message();
  EXPECT_TRUE(Chat({{"x-forwarded-for", "127.0.0.1"}}, "s1").ok());
}

TEST_F(AuthTest, AdminRpcsNeedTheAdminKey) {
  StartWithAdminKey();
  adminpb::CreateKeyRequest request;
  request.set_tenant("acme");
  request.set_name("web");
  adminpb::CreateKeyResponse response;
  grpc::Status none = CreateKey({}, request, &response);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(none.error_message(), "missing admin key");
  grpc::Status wrong =
      CreateKey(Bearer("not-the-admin-key-0123456789"), request, &response);
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(wrong.error_message(), "invalid admin key");
  for (const char* rpc : {"ListKeys", "RevokeKey", "GetUsage"}) {
    SCOPED_TRACE(rpc);
    grpc::ClientContext context;
    Prepare(&context, {});
    grpc::Status status;
    if (std::string(rpc) == "ListKeys") {
      adminpb::ListKeysResponse r;
      status = admin_->ListKeys(&context, adminpb::ListKeysRequest(), &r);
    } else if (std::string(rpc) == "RevokeKey") {
      adminpb::RevokeKeyResponse r;
      status = admin_->RevokeKey(&context, adminpb::RevokeKeyRequest(), &r);
    } else {
      adminpb::GetUsageResponse r;
      status = admin_->GetUsage(&context, adminpb::GetUsageRequest(), &r);
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  // GetAuthPolicy is open.
  grpc::ClientContext context;
  Prepare(&context, {});
  adminpb::GetAuthPolicyResponse policy;
  ASSERT_TRUE(
      admin_->GetAuthPolicy(&context, adminpb::GetAuthPolicyRequest(), &policy)
          .ok());
  EXPECT_FALSE(policy.anonymous_remote_allowed());
}

TEST_F(AuthTest, CreateKeyValidatesItsRequest) {
  StartWithAdminKey();
  struct Case {
    std::string field;
    adminpb::CreateKeyRequest request;
  };
  std::vector<Case> cases;
  auto base = [] {
    adminpb::CreateKeyRequest r;
    r.set_tenant("acme");
    r.set_name("web");
    return r;
  };
  cases.push_back({"tenant", base()});
  cases.back().request.set_tenant("no spaces");
  cases.push_back({"tenant", base()});
  cases.back().request.set_tenant(std::string(65, 'a'));
  cases.push_back({"name", base()});
  cases.back().request.set_name("");
  cases.push_back({"expires_in", base()});
  cases.back().request.set_expires_in("-1h");
  cases.push_back({"expires_in", base()});
  cases.back().request.set_expires_in("soon");
  cases.push_back({"limits.requests_per_minute", base()});
  cases.back().request.mutable_limits()->set_requests_per_minute(-1);
  cases.push_back({"limits.budget_period", base()});
  cases.back().request.mutable_limits()->set_budget_tokens(100);
  cases.push_back({"limits.budget_tokens", base()});
  cases.back().request.mutable_limits()->set_budget_period(
      adminpb::BUDGET_PERIOD_DAY);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.request.ShortDebugString());
    adminpb::CreateKeyResponse response;
    grpc::Status status = CreateKey(Bearer(kAdminKey), c.request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }
}

TEST_F(AuthTest, KeysDecideTheTenantAndBadKeysAreRefusedAlike) {
  StartWithAdminKey();
  ASSERT_TRUE(Chat({}, "before").ok());  // No keys yet: anonymous.
  const std::string acme = NewKey("acme");
  ASSERT_FALSE(acme.empty());
  // The first key ends anonymous access (at once on this replica).
  std::string last;
  EXPECT_TRUE(Eventually([&] {
    grpc::Status status = Chat({}, "anon");
    last = status.error_message();
    return IsMissingKey(status);
  })) << last;
  EXPECT_TRUE(IsMissingKey(History({}, "before")));

  // A valid key, by either header.
  v1::ChatResponse response;
  ASSERT_TRUE(Chat(Bearer(acme), "shared-id", &response).ok());
  EXPECT_EQ(response.turn_count(), 1);
  ASSERT_TRUE(Chat({{"x-api-key", acme}}, "shared-id", &response).ok());
  EXPECT_EQ(response.turn_count(), 2);
  ASSERT_TRUE(ChatStream(Bearer(acme), "shared-id").ok());
  v1::ListSessionsResponse sessions;
  ASSERT_TRUE(List(Bearer(acme), &sessions).ok());
  ASSERT_EQ(sessions.sessions_size(), 1);
  EXPECT_EQ(sessions.sessions(0).session_id(), "shared-id");

  // Another tenant sees none of it: its own session of the same id is new.
  const std::string globex = NewKey("globex");
  grpc::Status other = History(Bearer(globex), "shared-id");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ListSessionsResponse none;
  ASSERT_TRUE(List(Bearer(globex), &none).ok());
  EXPECT_EQ(none.sessions_size(), 0);
  ASSERT_TRUE(Chat(Bearer(globex), "shared-id", &response).ok());
  EXPECT_EQ(response.turn_count(), 1);
  // Nor did the anonymous session leak into a tenant.
  EXPECT_EQ(History(Bearer(acme), "before").error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Wrong secret, unknown id, malformed, another scheme: one answer, on
  // every RPC, and whether the session exists is not revealed.
  std::string wrong = acme;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  const std::string unknown = "chatd_000000000000_" + std::string(64, 'a');
  for (const Metadata& metadata :
       std::vector<Metadata>{Bearer(wrong),
                             Bearer(unknown),
                             Bearer("chatd_nonsense"),
                             {{"x-api-key", wrong}},
                             {{"authorization", "Basic " + acme}}}) {
    SCOPED_TRACE(metadata.front().second);
    for (const grpc::Status& status :
         {Chat(metadata, "shared-id"), ChatStream(metadata, "shared-id"),
          History(metadata, "shared-id"), History(metadata, "no-such")}) {
      EXPECT_TRUE(IsInvalidKey(status)) << status.error_message();
      EXPECT_THAT(status.error_message(), Not(HasSubstr("chatd_")));
    }
  }
  ExpectNoKeyInLog();
}

TEST_F(AuthTest, RevokedAndExpiredKeysStopWorking) {
  StartWithAdminKey();
  const std::string key = NewKey("acme");
  const std::string short_lived = NewKey("acme", "1s");
  ASSERT_TRUE(Chat(Bearer(key), "s").ok());
  const std::string id = key.substr(6, 12);
  ASSERT_TRUE(Revoke(id).ok());
  EXPECT_EQ(Revoke("000000000000").error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::Status last;
  EXPECT_TRUE(Eventually([&] {
    last = Chat(Bearer(key), "s");
    return IsInvalidKey(last);
  })) << last.error_message();
  EXPECT_TRUE(Eventually([&] {
    last = Chat(Bearer(short_lived), "s");
    return IsInvalidKey(last);
  })) << last.error_message();

  // The list names both, never a secret; usage answers.
  grpc::ClientContext context;
  Prepare(&context, Bearer(kAdminKey));
  adminpb::ListKeysResponse list;
  ASSERT_TRUE(
      admin_->ListKeys(&context, adminpb::ListKeysRequest(), &list).ok());
  ASSERT_EQ(list.keys_size(), 2);
  EXPECT_EQ(list.keys(0).id(), id);
  EXPECT_FALSE(list.keys(0).revoked_at().empty());
  EXPECT_FALSE(list.keys(1).expires_at().empty());
  EXPECT_THAT(list.DebugString(), Not(HasSubstr(key.substr(19))));
  grpc::ClientContext usage_context;
  Prepare(&usage_context, Bearer(kAdminKey));
  adminpb::GetUsageRequest usage_request;
  usage_request.set_since("2020-01-01");
  adminpb::GetUsageResponse usage;
  grpc::Status usage_status =
      admin_->GetUsage(&usage_context, usage_request, &usage);
  EXPECT_TRUE(usage_status.ok()) << usage_status.error_message();
  grpc::ClientContext bad_context;
  Prepare(&bad_context, Bearer(kAdminKey));
  usage_request.set_since("January");
  EXPECT_EQ(admin_->GetUsage(&bad_context, usage_request, &usage).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ExpectNoKeyInLog();
}

TEST_F(AuthTest, HealthAndStatusStayOpenWithKeys) {
  StartWithAdminKey();
  NewKey("acme");
  grpc::ClientContext context;
  Prepare(&context, {});
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(
      health_->Check(&context, grpc::health::v1::HealthCheckRequest(), &health)
          .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  grpc::ClientContext status_context;
  Prepare(&status_context, {});
  v1::GetStatusResponse status;
  EXPECT_TRUE(
      chat_->GetStatus(&status_context, v1::GetStatusRequest(), &status).ok());
}

TEST_F(AuthTest, ReflectionStaysOpenWithKeysAndListsTheAdminService) {
  const char* buf = std::getenv("CHAT_TEST_BUF");
  if (buf == nullptr || std::string(buf).empty()) {
    GTEST_FAIL()
        << "CHAT_TEST_BUF must name the buf binary (scripts/test.sh sets it)";
  }
  StartWithAdminKey();
  NewKey("acme");
  std::string output;
  absl::StatusOr<int> code = RunCommand(
      {buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
       "--list-methods", absl::StrCat("http://", server_->address())},
      &output);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0) << output;
  EXPECT_THAT(output, HasSubstr("chat.admin.v1.AdminService/CreateKey"));
  EXPECT_THAT(output, HasSubstr("chat.v1.ChatService/Chat"));
}

TEST_F(AuthTest, KeysCommandOnSqliteThenTheServer) {
  const std::string store = "--store=sqlite:" + dir_ + "/chat.db";
  std::string output;
  ASSERT_EQ(
      Keys({"create", "--tenant=acme", "--name=web", "--rpm=10", "--models=a,b",
            "--budget_tokens=100000", "--budget_period=day", store},
           &output),
      0)
      << output;
  const std::string key = std::string(absl::StripAsciiWhitespace(
      std::vector<std::string>(absl::StrSplit(output, '\n')).front()));
  ASSERT_THAT(key, ::testing::MatchesRegex("chatd_[0-9a-f]{12}_[0-9a-f]{64}"));
  keys_.push_back(key);
  const std::string id = key.substr(6, 12);
  std::string list;
  ASSERT_EQ(Keys({"list", store}, &list), 0) << list;
  if (!absl::StrContains(list, id)) {
    GTEST_SKIP() << "this build's SQLite store does not keep API keys yet";
  }
  EXPECT_THAT(list, HasSubstr("rpm=10"));
  EXPECT_THAT(list, HasSubstr("budget=100000/day"));
  EXPECT_THAT(list, Not(HasSubstr(key.substr(19))));

  StartServer({store});
  EXPECT_TRUE(IsMissingKey(Chat({}, "s")));
  const grpc::Status served = Chat(Bearer(key), "s");
  ASSERT_TRUE(served.ok()) << served.error_message();

  ASSERT_EQ(Keys({"revoke", id, store}, &output), 0) << output;
  grpc::Status last;
  EXPECT_TRUE(Eventually([&] {
    last = Chat(Bearer(key), "s");
    return IsInvalidKey(last);
  })) << last.error_message();
  EXPECT_EQ(Keys({"revoke", "000000000000", store}, &output), 1) << output;
  ExpectNoKeyInLog();
}

TEST_F(AuthTest, AFirstKeyMadeWhileServingEndsAnonymousAccess) {
  const std::string store = "--store=sqlite:" + dir_ + "/chat.db";
  StartServer({store});
  ASSERT_TRUE(Chat({}, "s").ok());
  std::string output;
  ASSERT_EQ(Keys({"create", "--tenant=acme", "--name=web", store}, &output), 0)
      << output;
  keys_.push_back(output.substr(0, output.find('\n')));
  std::string list;
  ASSERT_EQ(Keys({"list", store}, &list), 0);
  if (!absl::StrContains(list, keys_.back().substr(6, 12))) {
    GTEST_SKIP() << "this build's SQLite store does not keep API keys yet";
  }
  grpc::Status last;
  EXPECT_TRUE(Eventually([&] {
    last = Chat({}, "s");
    return IsMissingKey(last);
  })) << last.error_message();
  EXPECT_TRUE(Chat(Bearer(keys_.back()), "s").ok());
}

TEST_F(AuthTest, KeysCommandRefusesBadFlags) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {{"create", "--name=web"}, "--tenant"},
           {{"create", "--tenant=a b", "--name=web"}, "--tenant"},
           {{"create", "--tenant=acme"}, "--name"},
           {{"create", "--tenant=acme", "--name=w", "--rpm=-1"}, "--rpm"},
           {{"create", "--tenant=acme", "--name=w", "--tpm=x"}, "--tpm"},
           {{"create", "--tenant=acme", "--name=w", "--budget_tokens=5"},
            "--budget_period"},
           {{"create", "--tenant=acme", "--name=w", "--budget_period=week",
             "--budget_tokens=5"},
            "--budget_period"},
           {{"create", "--tenant=acme", "--name=w", "--expires=0s"},
            "--expires"},
           {{"create", "--tenant=acme", "--name=w", "--store_threads=-1"},
            "--store_threads"},
           {{"revoke"}, "revoke"},
           {{"frobnicate"}, "frobnicate"},
       }) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    std::string output;
    std::vector<std::string> args = c.args;
    args.push_back("--store=memory");
    EXPECT_EQ(Keys(args, &output), 2) << output;
    EXPECT_THAT(output, HasSubstr(c.message));
  }
}

TEST_F(AuthTest, OffLoopbackWithNoAuthenticationTheServerRefusesToStart) {
  std::string output;
  absl::StatusOr<int> code = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("cd '", dir_, "' && '", CHAT_SERVER_BINARY,
                    "' --listen=0.0.0.0:0 --store=memory --provider=echo")},
      &output);
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 2) << output;
  EXPECT_THAT(output, HasSubstr("chat-server keys create --tenant=NAME"));
  EXPECT_THAT(output, HasSubstr("--admin_key_file"));
  EXPECT_THAT(output, HasSubstr("--allow_anonymous"));
  EXPECT_THAT(output, Not(HasSubstr("listening on")));
}

TEST_F(AuthTest, OffLoopbackWithAllowAnonymousItServesEveryone) {
  StartServer({"--listen=0.0.0.0:0", "--store=memory", "--allow_anonymous"});
  ASSERT_TRUE(Chat({}, "s").ok());
  grpc::ClientContext context;
  Prepare(&context, {});
  adminpb::GetAuthPolicyResponse policy;
  ASSERT_TRUE(
      admin_->GetAuthPolicy(&context, adminpb::GetAuthPolicyRequest(), &policy)
          .ok());
  EXPECT_TRUE(policy.anonymous_remote_allowed());
}

TEST_F(AuthTest, OffLoopbackWithAnAdminKeyItStartsButWantsKeys) {
  StartServer({"--listen=0.0.0.0:0", "--store=memory"},
              {{"CHAT_ADMIN_KEY", kAdminKey}});
  // Listening beyond loopback: even a loopback caller needs a key.
  EXPECT_TRUE(IsMissingKey(Chat({}, "s")));
  const std::string key = NewKey("acme");
  EXPECT_TRUE(Chat(Bearer(key), "s").ok());
}

TEST_F(AuthTest, AShortAdminKeyIsAConfigurationError) {
  std::string output;
  absl::StatusOr<int> code =
      RunCommand({"/usr/bin/env", "CHAT_ADMIN_KEY=short-admin-key",
                  CHAT_SERVER_BINARY, "--listen=127.0.0.1:0", "--store=memory"},
                 &output);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 2) << output;
  EXPECT_THAT(output, HasSubstr("--admin_key_file"));
  EXPECT_THAT(output, HasSubstr("at least 24"));
  EXPECT_THAT(output, Not(HasSubstr("short-admin-key")));
}

}  // namespace
}  // namespace chat
