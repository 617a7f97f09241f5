// The tenant isolation matrix (issue 9, point 4) through the real chat-server.
//
// Strategy: start chat-server (echo provider) with an admin key, on a SQLite
// file and on a fresh PostgreSQL schema, make one API key for tenant A and one
// for tenant B, and let both use the SAME session ids. Then, for every
// ChatService RPC, check that nothing A does can be read or changed with B's
// key:
//  - B's answer for A's session is byte-for-byte its answer for that session
//    id recorded before anyone created it (status code, message, details and
//    response), i.e. exactly what a session that exists nowhere gets, and A's
//    history is identical before and after B's reads, deletes and resets;
//    (every RPC naming a session: history, rename, regenerate, edit, switch
//    branch, resume, cancel, reset, delete);
//  - both chatting (unary and streamed) in one session id keep two histories;
//  - ListSessions (paged, and with a page token A was given) and GetStats of
//    B show B's sessions and counts only;
//  - --max_sessions_per_tenant counts per tenant;
//  - AdminService.GetUsage puts each turn under its own tenant only.
// On PostgreSQL, a key revoked on one replica stops working on another within
// the key cache's lifetime (bounded Eventually, no fixed sleep). Every A
// message carries a marker that must never appear in anything B receives.

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chat/admin/v1/admin.grpc.pb.h"
#include "chat/v1/chat.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testing/chat_calls.h"
#include "tests/testing/eventually.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::Eventually;
using ::chat::testing::MakeTempDir;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::Not;

namespace adminpb = ::chat::admin::v1;

const bool kFastClientPolling = ::chat::testing::PollIdleChannelsOften();

constexpr char kAdminKey[] = "isolation-admin-key-0123456789";
// In every message tenant A sends; nothing tenant B receives may contain it.
constexpr char kAMarker[] = "alpha-secret";
constexpr char kASystemPrompt[] = "alpha-secret system prompt";

enum class StoreKind { kSqlite, kPostgres };

void PrintTo(StoreKind kind, std::ostream* os) {
  *os << (kind == StoreKind::kSqlite ? "SQLite" : "PostgreSQL");
}

std::string StoreName(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param == StoreKind::kSqlite ? "Sqlite" : "Postgres";
}

// One running chat-server and stubs to it.
struct Replica {
  std::unique_ptr<ServerProcess> process;
  std::unique_ptr<v1::ChatService::Stub> chat;
  std::unique_ptr<adminpb::AdminService::Stub> admin;
};

// A tenant's API key.
struct Tenant {
  std::string name;
  std::string key;
  std::string key_id() const { return key.substr(6, 12); }
};

// Everything a call answered, to compare two answers byte for byte.
struct Answer {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  std::string details;
  std::string response;  // The serialized response message.

  bool operator==(const Answer& other) const {
    return code == other.code && message == other.message &&
           details == other.details && response == other.response;
  }
  bool operator!=(const Answer& other) const { return !(*this == other); }
};

std::ostream& operator<<(std::ostream& os, const Answer& a) {
  return os << "{code " << a.code << ", message \"" << a.message
            << "\", details " << a.details.size() << " bytes, response "
            << a.response.size() << " bytes}";
}

Answer AnswerOf(const grpc::Status& status,
                const google::protobuf::Message& response) {
  return {status.error_code(), status.error_message(), status.error_details(),
          status.ok() ? response.SerializeAsString() : ""};
}

void Prepare(grpc::ClientContext* context, const std::string& key) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  if (!key.empty()) context->AddMetadata("authorization", "Bearer " + key);
}

class TenantIsolationTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    if (GetParam() == StoreKind::kSqlite) {
      store_ = absl::StrCat("sqlite:", dir_, "/chat.db");
      return;
    }
    absl::StatusOr<std::string> conninfo =
        ::chat::testing::MakeFreshPostgresSchema();
    if (!conninfo.ok()) {
      if (::chat::testing::PostgresRequired()) {
        GTEST_FAIL() << "PostgreSQL required (CHAT_TEST_REQUIRE_POSTGRES=1): "
                     << conninfo.status();
      }
      GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run: "
                   << conninfo.status();
    }
    store_ = absl::StrCat("postgres:", *conninfo);
  }

  // Starts a chat-server on the test's store with `extra` flags.
  std::unique_ptr<Replica> Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--listen=127.0.0.1:0", absl::StrCat("--store=", store_),
        "--provider=echo", "--echo_delay=0s", "--shutdown_grace=2s"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto replica = std::make_unique<Replica>();
    replica->process = std::make_unique<ServerProcess>(
        CHAT_SERVER_BINARY, args,
        std::map<std::string, std::string>{{"CHAT_ADMIN_KEY", kAdminKey}});
    replica->process->set_working_dir(dir_);
    absl::Status started = replica->process->Start();
    EXPECT_TRUE(started.ok()) << started;
    if (!started.ok()) return nullptr;
    auto channel = grpc::CreateChannel(replica->process->address(),
                                       grpc::InsecureChannelCredentials());
    replica->chat = v1::ChatService::NewStub(channel);
    replica->admin = adminpb::AdminService::NewStub(channel);
    return replica;
  }

  // Starts one chat-server and makes the keys of tenants A and B on it.
  void StartWithTenants(std::vector<std::string> extra = {}) {
    server_ = Start(std::move(extra));
    ASSERT_NE(server_, nullptr);
    a_ = NewTenant(*server_, "tenant-a");
    b_ = NewTenant(*server_, "tenant-b");
    ASSERT_FALSE(a_.key.empty());
    ASSERT_FALSE(b_.key.empty());
  }

  static Tenant NewTenant(Replica& replica, const std::string& name) {
    grpc::ClientContext context;
    Prepare(&context, kAdminKey);
    adminpb::CreateKeyRequest request;
    request.set_tenant(name);
    request.set_name("isolation");
    adminpb::CreateKeyResponse response;
    grpc::Status status =
        replica.admin->CreateKey(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {name, response.key()};
  }

  static grpc::Status Chat(Replica& r, const Tenant& t,
                           const std::string& session,
                           const std::string& message,
                           v1::ChatResponse* response,
                           std::optional<std::string> system_prompt = {}) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::ChatRequest request =
        ::chat::testing::MakeChatRequest(session, message);
    if (system_prompt.has_value()) request.set_system_prompt(*system_prompt);
    return r.chat->Chat(&context, request, response);
  }

  // A streamed turn; `done` receives the final event's metadata.
  static grpc::Status Stream(Replica& r, const Tenant& t,
                             const std::string& session,
                             const std::string& message,
                             v1::ChatResponse* done) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::ChatStreamRequest request;
    request.set_session_id(session);
    request.set_message(message);
    auto reader = r.chat->ChatStream(&context, request);
    v1::ChatStreamResponse event;
    while (reader->Read(&event)) {
      if (event.has_done()) *done = event.done();
    }
    return reader->Finish();
  }

  static Answer History(Replica& r, const Tenant& t, const std::string& session,
                        v1::GetHistoryResponse* out = nullptr) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::GetHistoryRequest request;
    request.set_session_id(session);
    v1::GetHistoryResponse response;
    grpc::Status status = r.chat->GetHistory(&context, request, &response);
    if (out != nullptr) *out = response;
    return AnswerOf(status, response);
  }

  static Answer Delete(Replica& r, const Tenant& t,
                       const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::DeleteSessionRequest request;
    request.set_session_id(session);
    v1::DeleteSessionResponse response;
    return AnswerOf(r.chat->DeleteSession(&context, request, &response),
                    response);
  }

  static Answer Reset(Replica& r, const Tenant& t, const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::ResetSessionRequest request;
    request.set_session_id(session);
    v1::ResetSessionResponse response;
    return AnswerOf(r.chat->ResetSession(&context, request, &response),
                    response);
  }

  static grpc::Status List(Replica& r, const Tenant& t, int page_size,
                           const std::string& token,
                           v1::ListSessionsResponse* response) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::ListSessionsRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    return r.chat->ListSessions(&context, request, response);
  }

  // Every page, `page_size` at a time: session id -> turns.
  static std::map<std::string, int> ListAll(Replica& r, const Tenant& t,
                                            int page_size) {
    std::map<std::string, int> sessions;
    std::string token;
    for (int page = 0; page < 100; ++page) {
      v1::ListSessionsResponse response;
      grpc::Status status = List(r, t, page_size, token, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      EXPECT_LE(response.sessions_size(), page_size);
      for (const v1::SessionSummary& s : response.sessions()) {
        EXPECT_TRUE(sessions.emplace(s.session_id(), s.turns()).second)
            << s.session_id() << " listed twice";
      }
      token = response.next_page_token();
      if (token.empty()) break;
    }
    return sessions;
  }

  static v1::GetStatsResponse Stats(Replica& r, const Tenant& t) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::GetStatsResponse response;
    grpc::Status status =
        r.chat->GetStats(&context, v1::GetStatsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static grpc::Status Usage(Replica& r, const std::string& tenant,
                            adminpb::GetUsageResponse* response) {
    grpc::ClientContext context;
    Prepare(&context, kAdminKey);
    adminpb::GetUsageRequest request;
    request.set_tenant(tenant);
    return r.admin->GetUsage(&context, request, response);
  }

  static Answer Rename(Replica& r, const Tenant& t,
                       const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::UpdateSessionRequest request;
    request.set_session_id(session);
    request.set_title("renamed by another tenant");
    v1::UpdateSessionResponse response;
    return AnswerOf(r.chat->UpdateSession(&context, request, &response),
                    response);
  }

  static Answer Regenerate(Replica& r, const Tenant& t,
                           const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::RegenerateTurnRequest request;
    request.set_session_id(session);
    v1::RegenerateTurnResponse response;
    return AnswerOf(r.chat->RegenerateTurn(&context, request, &response),
                    response);
  }

  static Answer Edit(Replica& r, const Tenant& t, const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::EditMessageRequest request;
    request.set_session_id(session);
    request.set_turn_id(1);
    request.set_message("edited by another tenant");
    v1::EditMessageResponse response;
    return AnswerOf(r.chat->EditMessage(&context, request, &response),
                    response);
  }

  static Answer Switch(Replica& r, const Tenant& t,
                       const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::SwitchBranchRequest request;
    request.set_session_id(session);
    request.set_turn_id(1);
    v1::SwitchBranchResponse response;
    return AnswerOf(r.chat->SwitchBranch(&context, request, &response),
                    response);
  }

  // Every event of the resumed stream, serialized one after the other.
  static Answer Resume(Replica& r, const Tenant& t,
                       const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::ResumeStreamRequest request;
    request.set_session_id(session);
    auto reader = r.chat->ResumeStream(&context, request);
    std::string events;
    v1::ChatStreamResponse event;
    while (reader->Read(&event)) events += event.SerializeAsString();
    grpc::Status status = reader->Finish();
    Answer answer = AnswerOf(status, event);
    answer.response = events;
    return answer;
  }

  static Answer Cancel(Replica& r, const Tenant& t,
                       const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::CancelStreamRequest request;
    request.set_session_id(session);
    v1::CancelStreamResponse response;
    return AnswerOf(r.chat->CancelStream(&context, request, &response),
                    response);
  }

  // CreateSession of `session` with no system prompt. The answer's times
  // are cleared: they are the call's own, and would tell two probes apart.
  static Answer Create(Replica& r, const Tenant& t,
                       const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, t.key);
    v1::CreateSessionRequest request;
    request.set_session_id(session);
    v1::CreateSessionResponse response;
    grpc::Status status = r.chat->CreateSession(&context, request, &response);
    response.mutable_session()->clear_created_at();
    response.mutable_session()->clear_updated_at();
    return AnswerOf(status, response);
  }

  // What B is told about `session` by every RPC that names a session, in an
  // order that leaves B's view unchanged when the session does not exist for
  // B: history, rename, regenerate, edit, switch branch, resume, cancel,
  // reset, delete, history, create (B's own session, never A's: no
  // ALREADY_EXISTS), delete.
  static std::vector<Answer> ProbeSession(Replica& r, const Tenant& t,
                                          const std::string& session) {
    return {History(r, t, session),    Rename(r, t, session),
            Regenerate(r, t, session), Edit(r, t, session),
            Switch(r, t, session),     Resume(r, t, session),
            Cancel(r, t, session),     Reset(r, t, session),
            Delete(r, t, session),     History(r, t, session),
            Create(r, t, session),     Delete(r, t, session)};
  }

  std::string dir_;
  std::string store_;
  std::unique_ptr<Replica> server_;
  Tenant a_;
  Tenant b_;
};

TEST_P(TenantIsolationTest, AnotherTenantsSessionAnswersLikeOneThatIsNowhere) {
  StartWithTenants();
  Replica& s = *server_;
  // B's answers for "shared" while it exists nowhere, and for an id nobody
  // ever uses.
  const std::vector<Answer> nowhere = ProbeSession(s, b_, "shared");
  ASSERT_EQ(nowhere.front().code, grpc::StatusCode::NOT_FOUND);
  const std::vector<Answer> never = ProbeSession(s, b_, "never-used");

  // A creates "shared", unary and streamed, with its own system prompt.
  v1::ChatResponse response;
  ASSERT_TRUE(Chat(s, a_, "shared", absl::StrCat(kAMarker, " 1"), &response,
                   kASystemPrompt)
                  .ok());
  ASSERT_TRUE(
      Stream(s, a_, "shared", absl::StrCat(kAMarker, " 2"), &response).ok());
  ASSERT_EQ(response.turn_count(), 2);
  v1::GetHistoryResponse before;
  ASSERT_EQ(History(s, a_, "shared", &before).code, grpc::StatusCode::OK);
  ASSERT_EQ(before.messages_size(), 4);

  // B reads, resets and deletes it: every answer is the "nowhere" one.
  EXPECT_EQ(ProbeSession(s, b_, "shared"), nowhere);
  EXPECT_EQ(ProbeSession(s, b_, "never-used"), never);
  for (const Answer& answer : ProbeSession(s, b_, "shared")) {
    EXPECT_THAT(answer.message, Not(HasSubstr(kAMarker)));
    EXPECT_THAT(answer.response, Not(HasSubstr(kAMarker)));
  }

  // Every probe but reset and delete (which succeed on a session that does
  // not exist, leaving nothing behind) and create (B's own session, deleted
  // by the last probe) was refused as NOT_FOUND.
  EXPECT_EQ(nowhere[10].code, grpc::StatusCode::OK) << nowhere[10];
  for (size_t i = 0; i < nowhere.size(); ++i) {
    if (i == 7 || i == 8 || i >= 10) continue;
    EXPECT_EQ(nowhere[i].code, grpc::StatusCode::NOT_FOUND)
        << "probe " << i << ": " << nowhere[i];
  }

  // A's session is untouched, timestamps included.
  v1::GetHistoryResponse after;
  ASSERT_EQ(History(s, a_, "shared", &after).code, grpc::StatusCode::OK);
  EXPECT_EQ(after.SerializeAsString(), before.SerializeAsString());
  // And A's own probe differs from B's: the comparison above can fail.
  EXPECT_NE(History(s, a_, "shared"), nowhere.front());
}

TEST_P(TenantIsolationTest, BothTenantsInOneSessionIdKeepSeparateHistories) {
  StartWithTenants();
  Replica& s = *server_;
  v1::ChatResponse response;
  // Interleaved turns, each RPC by each tenant, in the same session id.
  ASSERT_TRUE(Chat(s, a_, "shared", absl::StrCat(kAMarker, " one"), &response,
                   kASystemPrompt)
                  .ok());
  EXPECT_EQ(response.turn_count(), 1);
  ASSERT_TRUE(Chat(s, b_, "shared", "bravo one", &response).ok());
  EXPECT_EQ(response.turn_count(), 1);
  EXPECT_THAT(response.response(), Not(HasSubstr(kAMarker)));
  ASSERT_TRUE(
      Stream(s, a_, "shared", absl::StrCat(kAMarker, " two"), &response).ok());
  EXPECT_EQ(response.turn_count(), 2);
  ASSERT_TRUE(Stream(s, b_, "shared", "bravo two", &response).ok());
  EXPECT_EQ(response.turn_count(), 2);
  EXPECT_THAT(response.response(), Not(HasSubstr(kAMarker)));
  ASSERT_TRUE(
      Chat(s, a_, "shared", absl::StrCat(kAMarker, " three"), &response).ok());
  EXPECT_EQ(response.turn_count(), 3);

  v1::GetHistoryResponse a_history;
  v1::GetHistoryResponse b_history;
  ASSERT_EQ(History(s, a_, "shared", &a_history).code, grpc::StatusCode::OK);
  ASSERT_EQ(History(s, b_, "shared", &b_history).code, grpc::StatusCode::OK);
  EXPECT_EQ(a_history.turn_count(), 3);
  EXPECT_EQ(a_history.system_prompt(), kASystemPrompt);
  ASSERT_EQ(a_history.messages_size(), 6);
  for (int i = 0; i < 6; i += 2) {
    EXPECT_THAT(a_history.messages(i).content(), HasSubstr(kAMarker));
  }
  EXPECT_EQ(b_history.turn_count(), 2);
  EXPECT_NE(b_history.system_prompt(), kASystemPrompt);
  ASSERT_EQ(b_history.messages_size(), 4);
  EXPECT_EQ(b_history.messages(0).content(), "bravo one");
  EXPECT_EQ(b_history.messages(2).content(), "bravo two");
  EXPECT_THAT(b_history.SerializeAsString(), Not(HasSubstr(kAMarker)));

  // B resets then deletes its own "shared"; A's stays as it was.
  EXPECT_EQ(Reset(s, b_, "shared").code, grpc::StatusCode::OK);
  v1::GetHistoryResponse a_after;
  ASSERT_EQ(History(s, a_, "shared", &a_after).code, grpc::StatusCode::OK);
  EXPECT_EQ(a_after.SerializeAsString(), a_history.SerializeAsString());
  v1::DeleteSessionResponse deleted;
  {
    grpc::ClientContext context;
    Prepare(&context, b_.key);
    v1::DeleteSessionRequest request;
    request.set_session_id("shared");
    ASSERT_TRUE(s.chat->DeleteSession(&context, request, &deleted).ok());
  }
  EXPECT_EQ(deleted.status(), "cleared");
  ASSERT_EQ(History(s, a_, "shared", &a_after).code, grpc::StatusCode::OK);
  EXPECT_EQ(a_after.SerializeAsString(), a_history.SerializeAsString());
  EXPECT_EQ(History(s, b_, "shared").code, grpc::StatusCode::NOT_FOUND);
}

TEST_P(TenantIsolationTest, ListingsAndStatsShowOnlyTheCallersSessions) {
  StartWithTenants();
  Replica& s = *server_;
  // A: s-0..s-4 with two turns each (one streamed); B: s-0..s-2 with one.
  std::map<std::string, int> a_sessions;
  std::map<std::string, int> b_sessions;
  int64_t a_input = 0, a_output = 0, b_input = 0, b_output = 0;
  for (int i = 0; i < 5; ++i) {
    const std::string id = absl::StrCat("s-", i);
    v1::ChatResponse response;
    ASSERT_TRUE(
        Chat(s, a_, id, absl::StrCat(kAMarker, " ", i), &response).ok());
    a_input += response.usage().input_tokens();
    a_output += response.usage().output_tokens();
    ASSERT_TRUE(
        Stream(s, a_, id, absl::StrCat(kAMarker, " again ", i), &response)
            .ok());
    a_input += response.usage().input_tokens();
    a_output += response.usage().output_tokens();
    a_sessions[id] = 2;
    if (i < 3) {
      ASSERT_TRUE(Chat(s, b_, id, "bravo", &response).ok());
      b_input += response.usage().input_tokens();
      b_output += response.usage().output_tokens();
      b_sessions[id] = 1;
    }
  }

  // Whole listings, two at a time and all at once.
  for (int page_size : {1, 2, 100}) {
    SCOPED_TRACE(absl::StrCat("page_size ", page_size));
    EXPECT_EQ(ListAll(s, a_, page_size), a_sessions);
    EXPECT_EQ(ListAll(s, b_, page_size), b_sessions);
  }

  // A page token made for A, replayed by B: refused, or a page of B's own.
  v1::ListSessionsResponse a_page;
  ASSERT_TRUE(List(s, a_, 2, "", &a_page).ok());
  ASSERT_FALSE(a_page.next_page_token().empty());
  for (int page_size : {1, 2, 100}) {
    v1::ListSessionsResponse replayed;
    grpc::Status status =
        List(s, b_, page_size, a_page.next_page_token(), &replayed);
    if (!status.ok()) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      continue;
    }
    for (const v1::SessionSummary& summary : replayed.sessions()) {
      ASSERT_EQ(b_sessions.count(summary.session_id()), 1u)
          << summary.session_id() << " is not B's";
      EXPECT_EQ(summary.turns(), 1)
          << "A's turn count of " << summary.session_id();
    }
  }

  // Stats count each tenant's own sessions, messages and tokens.
  v1::GetStatsResponse a_stats = Stats(s, a_);
  EXPECT_EQ(a_stats.total_sessions(), 5);
  EXPECT_EQ(a_stats.total_messages(), 20);
  EXPECT_EQ(a_stats.total_input_tokens(), a_input);
  EXPECT_EQ(a_stats.total_output_tokens(), a_output);
  v1::GetStatsResponse b_stats = Stats(s, b_);
  EXPECT_EQ(b_stats.total_sessions(), 3);
  EXPECT_EQ(b_stats.total_messages(), 6);
  EXPECT_EQ(b_stats.total_input_tokens(), b_input);
  EXPECT_EQ(b_stats.total_output_tokens(), b_output);

  // B deleting every one of its sessions leaves A's listing and stats whole.
  for (const auto& [id, turns] : b_sessions) {
    EXPECT_EQ(Delete(s, b_, id).code, grpc::StatusCode::OK);
  }
  EXPECT_TRUE(ListAll(s, b_, 100).empty());
  EXPECT_EQ(Stats(s, b_).total_sessions(), 0);
  EXPECT_EQ(ListAll(s, a_, 2), a_sessions);
  EXPECT_EQ(Stats(s, a_).SerializeAsString(), a_stats.SerializeAsString());
}

TEST_P(TenantIsolationTest, TheSessionCapCountsPerTenant) {
  StartWithTenants({"--max_sessions_per_tenant=2"});
  Replica& s = *server_;
  v1::ChatResponse response;
  ASSERT_TRUE(Chat(s, a_, "s-0", kAMarker, &response).ok());
  ASSERT_TRUE(Chat(s, a_, "s-1", kAMarker, &response).ok());
  grpc::Status refused = Chat(s, a_, "s-2", kAMarker, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  // A at its cap does not stop B, in the same session ids or others.
  ASSERT_TRUE(Chat(s, b_, "s-0", "bravo", &response).ok());
  ASSERT_TRUE(Stream(s, b_, "s-2", "bravo", &response).ok());
  refused = Stream(s, b_, "s-1", "bravo", &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  // B freeing a session frees B's count, not A's.
  EXPECT_EQ(Delete(s, b_, "s-0").code, grpc::StatusCode::OK);
  ASSERT_TRUE(Chat(s, b_, "s-1", "bravo", &response).ok());
  refused = Chat(s, a_, "s-2", kAMarker, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  // A's existing sessions still take turns.
  EXPECT_TRUE(Chat(s, a_, "s-0", kAMarker, &response).ok());
}

TEST_P(TenantIsolationTest, UsageIsCountedUnderEachTenantOnly) {
  StartWithTenants();
  Replica& s = *server_;
  int64_t a_input = 0, a_output = 0, b_input = 0, b_output = 0;
  v1::ChatResponse response;
  for (const char* id : {"shared", "other", "shared"}) {
    ASSERT_TRUE(Chat(s, a_, id, kAMarker, &response).ok());
    a_input += response.usage().input_tokens();
    a_output += response.usage().output_tokens();
  }
  ASSERT_TRUE(Stream(s, a_, "shared", kAMarker, &response).ok());
  a_input += response.usage().input_tokens();
  a_output += response.usage().output_tokens();
  ASSERT_TRUE(Chat(s, b_, "shared", "bravo", &response).ok());
  b_input += response.usage().input_tokens();
  b_output += response.usage().output_tokens();
  ASSERT_GT(a_output, 0) << "the echo provider reports no tokens";

  // Usage is flushed to the store once a second: poll until both tenants'
  // calls are in, then check every number.
  adminpb::GetUsageResponse all;
  EXPECT_TRUE(Eventually(
      [&] {
        all.Clear();
        if (!Usage(s, "", &all).ok()) return false;
        int64_t calls = 0;
        for (const adminpb::Usage& u : all.tenants()) calls += u.calls();
        return calls >= 5;
      },
      absl::Seconds(15)))
      << all.DebugString();
  const std::map<std::string, std::tuple<int64_t, int64_t, int64_t>> expected =
      {{a_.name, {4, a_input, a_output}}, {b_.name, {1, b_input, b_output}}};
  std::map<std::string, std::tuple<int64_t, int64_t, int64_t>> tenants;
  for (const adminpb::Usage& u : all.tenants()) {
    tenants[u.tenant()] = {u.calls(), u.input_tokens(), u.output_tokens()};
  }
  EXPECT_EQ(tenants, expected) << all.DebugString();

  for (const Tenant* t : {&a_, &b_}) {
    SCOPED_TRACE(t->name);
    adminpb::GetUsageResponse one;
    ASSERT_TRUE(Usage(s, t->name, &one).ok());
    ASSERT_EQ(one.tenants_size(), 1) << one.DebugString();
    EXPECT_EQ(one.tenants(0).tenant(), t->name);
    EXPECT_EQ(
        std::make_tuple(one.tenants(0).calls(), one.tenants(0).input_tokens(),
                        one.tenants(0).output_tokens()),
        expected.at(t->name));
    ASSERT_EQ(one.keys_size(), 1) << one.DebugString();
    EXPECT_EQ(one.keys(0).tenant(), t->name);
    EXPECT_EQ(one.keys(0).key_id(), t->key_id());
    EXPECT_EQ(one.keys(0).calls(), std::get<0>(expected.at(t->name)));
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, TenantIsolationTest,
                         ::testing::Values(StoreKind::kSqlite,
                                           StoreKind::kPostgres),
                         StoreName);

// Two replicas on one PostgreSQL database: tenants stay apart across them,
// and a key revoked on one stops working on the other within seconds.
class TenantIsolationReplicasTest : public TenantIsolationTest {};

TEST_P(TenantIsolationReplicasTest, ARevokedKeyStopsWorkingOnEveryReplica) {
  std::unique_ptr<Replica> one = Start();
  ASSERT_NE(one, nullptr);
  std::unique_ptr<Replica> two = Start();
  ASSERT_NE(two, nullptr);
  a_ = NewTenant(*one, "tenant-a");
  b_ = NewTenant(*one, "tenant-b");
  ASSERT_FALSE(a_.key.empty());
  ASSERT_FALSE(b_.key.empty());

  // A's turn on replica one is A's on replica two, and not B's there.
  v1::ChatResponse response;
  grpc::Status last;
  ASSERT_TRUE(Eventually([&] {
    last = Chat(*two, a_, "warm-up", "hello", &response);
    return last.ok();
  })) << "replica two never accepted a key made on replica one: "
      << last.error_message();
  const std::vector<Answer> nowhere = ProbeSession(*two, b_, "shared");
  ASSERT_TRUE(Chat(*one, a_, "shared", kAMarker, &response).ok());
  v1::GetHistoryResponse history;
  EXPECT_EQ(History(*two, a_, "shared", &history).code, grpc::StatusCode::OK);
  EXPECT_EQ(history.turn_count(), 1);
  EXPECT_EQ(ProbeSession(*two, b_, "shared"), nowhere);
  EXPECT_EQ(History(*one, a_, "shared").code, grpc::StatusCode::OK);

  // Revoked on replica one; replica two refuses it within the key cache's
  // lifetime (2 s) plus slack. B's key keeps working on both.
  {
    grpc::ClientContext context;
    Prepare(&context, kAdminKey);
    adminpb::RevokeKeyRequest request;
    request.set_key_id(a_.key_id());
    adminpb::RevokeKeyResponse revoked;
    ASSERT_TRUE(one->admin->RevokeKey(&context, request, &revoked).ok());
  }
  const absl::Time revoked_at = absl::Now();
  EXPECT_TRUE(Eventually(
      [&] {
        last = Chat(*two, a_, "shared", kAMarker, &response);
        return last.error_code() == grpc::StatusCode::UNAUTHENTICATED;
      },
      absl::Seconds(10)))
      << last.error_message();
  EXPECT_EQ(last.error_message(), "invalid API key");
  EXPECT_LT(absl::Now() - revoked_at, absl::Seconds(10));
  EXPECT_EQ(Chat(*one, a_, "shared", kAMarker, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Chat(*two, b_, "shared", "bravo", &response).ok());
  EXPECT_TRUE(Chat(*one, b_, "shared", "bravo", &response).ok());
}

INSTANTIATE_TEST_SUITE_P(Stores, TenantIsolationReplicasTest,
                         ::testing::Values(StoreKind::kPostgres), StoreName);

}  // namespace
}  // namespace chat
