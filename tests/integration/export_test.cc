// Export and import through the real binaries: chat-server on SQLite or
// PostgreSQL (CHAT_TEST_POSTGRES_DSN; skipped without it) behind
// chat-gateway, driven with curl as a user would, with API keys made
// through the admin service so tenants are real.
//
// Strategy: the round trip is compared as bytes. A session with a title and
// branches (a regenerated turn, an edited one, a switch back) is exported
// from a SQLite server, imported into a second server (SQLite, and
// PostgreSQL when available), and exported again: both HTTP bodies, and the
// tenants' JSON-lines streams, must be byte-identical. The refusals (another
// tenant's session, a taken id, bad trees) are checked by status and by the
// field the error names. Skips if curl is missing.

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "chat/admin/v1/admin.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

using ::chat::testing::MakeTempDir;
using ::chat::testing::RunCommand;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::Not;

namespace adminpb = ::chat::admin::v1;

constexpr char kAdminKey[] = "export-admin-key-0123456789abcdef";

// One chat-server and the gateway in front of it.
struct Stack {
  std::unique_ptr<ServerProcess> server;
  std::unique_ptr<ServerProcess> gateway;
  std::string base;  // http://localhost:PORT

  ~Stack() {
    if (gateway != nullptr) (void)gateway->Stop(SIGTERM);
    if (server != nullptr) (void)server->Stop(SIGTERM);
  }

  // A new API key of `tenant`, made through the admin service.
  std::string NewKey(const std::string& tenant) {
    auto admin = adminpb::AdminService::NewStub(grpc::CreateChannel(
        server->address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kAdminKey));
    adminpb::CreateKeyRequest request;
    request.set_tenant(tenant);
    request.set_name("export-test");
    adminpb::CreateKeyResponse response;
    grpc::Status status = admin->CreateKey(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.key();
  }
};

// "sqlite:..." in a new directory, or a fresh PostgreSQL schema; empty when
// PostgreSQL is wanted but not configured.
std::string StoreUrl(const std::string& kind) {
  if (kind == "Sqlite") {
    return absl::StrCat("sqlite:", MakeTempDir(), "/chat.db");
  }
  absl::StatusOr<std::string> conninfo =
      ::chat::testing::MakeFreshPostgresSchema();
  if (!conninfo.ok()) return "";
  return absl::StrCat("postgres:", *conninfo);
}

std::unique_ptr<Stack> StartStack(const std::string& store) {
  auto stack = std::make_unique<Stack>();
  stack->server = std::make_unique<ServerProcess>(
      CHAT_SERVER_BINARY,
      std::vector<std::string>{
          "--listen=127.0.0.1:0", absl::StrCat("--store=", store),
          "--provider=echo", "--echo_delay=0s", "--shutdown_grace=2s"},
      std::map<std::string, std::string>{{"CHAT_ADMIN_KEY", kAdminKey}});
  absl::Status started = stack->server->Start();
  EXPECT_TRUE(started.ok()) << started << stack->server->Log();
  if (!started.ok()) return nullptr;
  stack->gateway = std::make_unique<ServerProcess>(
      CHAT_GATEWAY_BINARY,
      std::vector<std::string>{
          "--listen=127.0.0.1:0",
          absl::StrCat("--backend=", stack->server->address())});
  started = stack->gateway->Start();
  EXPECT_TRUE(started.ok()) << started << stack->gateway->Log();
  if (!started.ok()) return nullptr;
  stack->base = absl::StrCat("http://localhost:", stack->gateway->port());
  return stack;
}

// An HTTP answer: status and body.
struct Http {
  int status = 0;
  std::string body;
};

// Runs curl against the gateway as `key`; the body written to a file first,
// as a user would send a saved export.
Http Curl(const std::string& key, std::vector<std::string> args,
          const std::string* body = nullptr) {
  std::vector<std::string> argv = {
      "/usr/bin/curl",  "-sS", "-w",
      "\n%{http_code}", "-H",  absl::StrCat("Authorization: Bearer ", key)};
  if (body != nullptr) {
    const std::string path = absl::StrCat(MakeTempDir(), "/body.json");
    FILE* f = fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    fwrite(body->data(), 1, body->size(), f);
    fclose(f);
    argv.insert(argv.end(), {"-H", "Content-Type: application/json",
                             "--data-binary", absl::StrCat("@", path)});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output;
  absl::StatusOr<int> code = RunCommand(argv, &output);
  EXPECT_TRUE(code.ok() && *code == 0) << output;
  Http http;
  const size_t newline = output.rfind('\n');
  if (newline == std::string::npos) return http;
  http.body = output.substr(0, newline);
  http.status = std::atoi(output.c_str() + newline + 1);
  return http;
}

// A session with a title and branches, made through the REST routes.
void MakeBranchedSession(Stack& stack, const std::string& key,
                         const std::string& session) {
  for (const char* message :
       {"first question", "second question", "third question"}) {
    Http chat = Curl(key, {"-X", "POST", stack.base + "/v1/chat", "-d",
                           absl::StrCat(R"({"session_id":")", session,
                                        R"(","message":")", message, R"("})")});
    ASSERT_EQ(chat.status, 200) << chat.body;
  }
  Http regenerated =
      Curl(key, {"-X", "POST",
                 stack.base + "/v1/sessions/" + session + ":regenerate", "-d",
                 R"({"turn_id":3})"});
  ASSERT_EQ(regenerated.status, 200) << regenerated.body;
  Http edited =
      Curl(key, {"-X", "POST",
                 stack.base + "/v1/sessions/" + session + "/turns/2:edit", "-d",
                 R"({"message":"second, \"edited\" — ünïcode"})"});
  ASSERT_EQ(edited.status, 200) << edited.body;
  Http switched =
      Curl(key, {"-X", "POST",
                 stack.base + "/v1/sessions/" + session + ":switchBranch", "-d",
                 R"({"turn_id":3})"});
  ASSERT_EQ(switched.status, 200) << switched.body;
  Http titled =
      Curl(key, {"-X", "PATCH", stack.base + "/v1/sessions/" + session, "-d",
                 R"({"title":"Branched <session>"})"});
  ASSERT_EQ(titled.status, 200) << titled.body;
}

class ExportTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (access("/usr/bin/curl", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/curl";
    if (GetParam() == "Postgres" &&
        ::chat::testing::PostgresTestDsn().empty()) {
      if (::chat::testing::PostgresRequired()) {
        GTEST_FAIL() << "CHAT_TEST_REQUIRE_POSTGRES=1 but "
                        "CHAT_TEST_POSTGRES_DSN is unset";
      }
      GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run on PostgreSQL";
    }
  }
};

// SQLite -> JSON -> the parameter's store -> JSON, compared as bytes.
TEST_P(ExportTest, RoundTripFromSqliteIsByteIdentical) {
  std::unique_ptr<Stack> source = StartStack(StoreUrl("Sqlite"));
  ASSERT_NE(source, nullptr);
  const std::string source_key = source->NewKey("acme");
  MakeBranchedSession(*source, source_key, "trip");
  MakeBranchedSession(*source, source_key, "other");
  const Http exported =
      Curl(source_key, {source->base + "/v1/sessions/trip/export"});
  ASSERT_EQ(exported.status, 200) << exported.body;
  nlohmann::json parsed = nlohmann::json::parse(exported.body, nullptr, false);
  ASSERT_TRUE(parsed.is_object());
  EXPECT_EQ(parsed["session"]["title"], "Branched <session>");
  EXPECT_EQ(parsed["session"]["messages"].size(), 10u);  // 5 turns.
  // Turns 1-2-3, 4 (3 regenerated) under 2, 5 (2 edited) under 1; the
  // switch went back to 3.
  EXPECT_EQ(parsed["session"]["active_turn_id"], 3);

  const std::string target_store = StoreUrl(GetParam());
  ASSERT_FALSE(target_store.empty());
  std::unique_ptr<Stack> target = StartStack(target_store);
  ASSERT_NE(target, nullptr);
  // Another deployment, another tenant name: the export carries none.
  const std::string target_key = target->NewKey("acme-moved");
  // The export's body is an import request as it is.
  const Http imported =
      Curl(target_key, {"-X", "POST", target->base + "/v1/sessions:import"},
           &exported.body);
  ASSERT_EQ(imported.status, 200) << imported.body;
  EXPECT_THAT(imported.body, HasSubstr(R"("turns":3)"));

  const Http again =
      Curl(target_key, {target->base + "/v1/sessions/trip/export"});
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.body, exported.body);

  // The moved session goes on like any other: the next turn follows the
  // active branch with the next id.
  Http more = Curl(target_key, {"-X", "POST", target->base + "/v1/chat", "-d",
                                R"({"session_id":"trip","message":"more"})"});
  ASSERT_EQ(more.status, 200) << more.body;
  EXPECT_THAT(more.body, HasSubstr(R"("turn_count":4)"));

  // The whole tenant, as JSON lines, imported line by line.
  const Http all = Curl(source_key, {"-H", "Accept: application/x-ndjson",
                                     source->base + "/v1/sessions:export"});
  ASSERT_EQ(all.status, 200) << all.body;
  std::unique_ptr<Stack> third = StartStack(StoreUrl(GetParam()));
  ASSERT_NE(third, nullptr);
  const std::string third_key = third->NewKey("acme");
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(all.body, '\n')) {
    if (line.empty()) continue;
    ++lines;
    nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(event.contains("result")) << line;
    const std::string body = event["result"].dump();
    Http one = Curl(third_key,
                    {"-X", "POST", third->base + "/v1/sessions:import"}, &body);
    ASSERT_EQ(one.status, 200) << one.body;
  }
  EXPECT_EQ(lines, 2);
  const Http all_again = Curl(third_key, {"-H", "Accept: application/x-ndjson",
                                          third->base + "/v1/sessions:export"});
  EXPECT_EQ(all_again.body, all.body);
}

TEST_P(ExportTest, TenantsCannotExportOrImportIntoEachOthersSessions) {
  const std::string store = StoreUrl(GetParam());
  ASSERT_FALSE(store.empty());
  std::unique_ptr<Stack> stack = StartStack(store);
  ASSERT_NE(stack, nullptr);
  const std::string a = stack->NewKey("tenant-a");
  const std::string b = stack->NewKey("tenant-b");
  MakeBranchedSession(*stack, a, "mine");
  const Http theirs = Curl(b, {stack->base + "/v1/sessions/mine/export"});
  EXPECT_EQ(theirs.status, 404) << theirs.body;
  const Http markdown =
      Curl(b, {stack->base + "/v1/sessions/mine/export?format=markdown"});
  EXPECT_EQ(markdown.status, 404) << markdown.body;
  const Http none = Curl(b, {stack->base + "/v1/sessions:export"});
  EXPECT_EQ(none.status, 200);
  EXPECT_THAT(none.body, Not(HasSubstr("mine")));

  // B imports a session with the same id, replacing: it lands in B's
  // tenant, and A's session stays as it was.
  const Http original = Curl(a, {stack->base + "/v1/sessions/mine/export"});
  ASSERT_EQ(original.status, 200);
  nlohmann::json request = nlohmann::json::parse(original.body);
  request["session"]["title"] = "B's copy";
  request["session"]["messages"][0]["content"] = "overwritten?";
  request["replace"] = true;
  const std::string body = request.dump();
  const Http imported =
      Curl(b, {"-X", "POST", stack->base + "/v1/sessions:import"}, &body);
  ASSERT_EQ(imported.status, 200) << imported.body;
  EXPECT_EQ(Curl(a, {stack->base + "/v1/sessions/mine/export"}).body,
            original.body);
  EXPECT_THAT(Curl(b, {stack->base + "/v1/sessions/mine/export"}).body,
              HasSubstr("B's copy"));
}

TEST_P(ExportTest, BadImportsAreRefusedNamingTheField) {
  const std::string store = StoreUrl(GetParam());
  ASSERT_FALSE(store.empty());
  std::unique_ptr<Stack> stack = StartStack(store);
  ASSERT_NE(stack, nullptr);
  const std::string key = stack->NewKey("acme");
  MakeBranchedSession(*stack, key, "s");
  const Http exported = Curl(key, {stack->base + "/v1/sessions/s/export"});
  ASSERT_EQ(exported.status, 200);
  const nlohmann::json good = nlohmann::json::parse(exported.body);
  const std::string import_url = stack->base + "/v1/sessions:import";

  // The same id again: 409 unless replacing.
  const Http taken = Curl(key, {"-X", "POST", import_url}, &exported.body);
  EXPECT_EQ(taken.status, 409) << taken.body;

  struct Case {
    std::string field;
    std::function<void(nlohmann::json&)> spoil;
  };
  const std::vector<Case> cases = {
      {"session.messages[4].parent_turn_id",
       [](nlohmann::json& s) { s["messages"][4]["parent_turn_id"] = 9; }},
      {"session.messages[2].parent_turn_id",  // Its own parent: a cycle.
       [](nlohmann::json& s) { s["messages"][2]["parent_turn_id"] = 2; }},
      {"session.messages[1].role",
       [](nlohmann::json& s) { s["messages"][1]["role"] = "system"; }},
      {"session.messages[3].timestamp",
       [](nlohmann::json& s) { s["messages"][3]["timestamp"] = "noon"; }},
      {"session.active_turn_id",
       [](nlohmann::json& s) { s["active_turn_id"] = 42; }},
      {"session.session_id",
       [](nlohmann::json& s) { s["session_id"] = "no spaces allowed"; }},
      {"session.format_version",
       [](nlohmann::json& s) { s["format_version"] = 2; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.field);
    nlohmann::json request = good;
    request["session"]["session_id"] = "fresh";
    c.spoil(request["session"]);
    const std::string body = request.dump();
    const Http refused = Curl(key, {"-X", "POST", import_url}, &body);
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_THAT(refused.body, HasSubstr(c.field));
  }
  // Nothing was half-written.
  EXPECT_EQ(Curl(key, {stack->base + "/v1/sessions/fresh/export"}).status, 404);
}

INSTANTIATE_TEST_SUITE_P(Stores, ExportTest,
                         ::testing::Values("Sqlite", "Postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace chat
