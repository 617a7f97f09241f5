// Titles, UpdateSession and SearchMessages through the real chat-server.
//
// With the echo provider (on SQLite, and on PostgreSQL when
// CHAT_TEST_POSTGRES_DSN is set): a session is named after the first words
// of its first message, a user renames it, and two tenants with API keys
// search the same words and only ever see their own messages. The title is
// made after the answer, so the tests wait for it by polling ListSessions
// (the event itself), never by sleeping.
//
// With the fake upstream (as Anthropic, on SQLite): the title is one more
// model call, to --title_model; a failing title call leaves the session
// untitled, counts in chatd_title_failures_total, and the turn still
// succeeds.

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
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
#include "tests/testing/fake_upstream.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/postgres_test_db.h"
#include "tests/testing/server_process.h"

namespace chat {
namespace {

namespace adminpb = ::chat::admin::v1;

using ::chat::testing::Eventually;
using ::chat::testing::FakeUpstream;
using ::chat::testing::MakeTempDir;
using ::chat::testing::ServerProcess;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kAdminKey[] = "search-test-admin-key-0123456789";
// U+E000 and U+E001, the snippet's match markers.
constexpr char kMatchStart[] = "\xEE\x80\x80";
constexpr char kMatchEnd[] = "\xEE\x80\x81";

enum class StoreKind { kSqlite, kPostgres };

void PrintTo(StoreKind kind, std::ostream* os) {
  *os << (kind == StoreKind::kSqlite ? "SQLite" : "PostgreSQL");
}

void Prepare(grpc::ClientContext* context, const std::string& key) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  if (!key.empty()) context->AddMetadata("authorization", "Bearer " + key);
}

// The port of "metrics on http://HOST:PORT/" in the server's log; 0 if none.
int MetricsPort(const std::string& log) {
  const std::string marker = "metrics on http://";
  size_t at = log.find(marker);
  if (at == std::string::npos) return 0;
  size_t colon = log.find(':', at + marker.size());
  size_t slash = log.find('/', colon);
  int port = 0;
  if (colon == std::string::npos || slash == std::string::npos ||
      !absl::SimpleAtoi(log.substr(colon + 1, slash - colon - 1), &port)) {
    return 0;
  }
  return port;
}

// A running chat-server and stubs on it.
class Server {
 public:
  bool Start(std::vector<std::string> args,
             std::map<std::string, std::string> env) {
    env["CHAT_ADMIN_KEY"] = kAdminKey;
    process_ = std::make_unique<ServerProcess>(CHAT_SERVER_BINARY,
                                               std::move(args), env);
    absl::Status started = process_->Start();
    EXPECT_TRUE(started.ok()) << started;
    if (!started.ok()) return false;
    auto channel = grpc::CreateChannel(process_->address(),
                                       grpc::InsecureChannelCredentials());
    chat_ = v1::ChatService::NewStub(channel);
    admin_ = adminpb::AdminService::NewStub(channel);
    return true;
  }

  std::string NewKey(const std::string& tenant) {
    grpc::ClientContext context;
    Prepare(&context, kAdminKey);
    adminpb::CreateKeyRequest request;
    request.set_tenant(tenant);
    request.set_name("search");
    adminpb::CreateKeyResponse response;
    grpc::Status status = admin_->CreateKey(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.key();
  }

  grpc::Status Chat(const std::string& key, const std::string& session,
                    const std::string& message, const std::string& model = "") {
    grpc::ClientContext context;
    Prepare(&context, key);
    v1::ChatRequest request =
        ::chat::testing::MakeChatRequest(session, message);
    if (!model.empty()) request.set_model(model);
    v1::ChatResponse response;
    return chat_->Chat(&context, request, &response);
  }

  // The session's title as ListSessions shows it; nullopt if not listed.
  std::optional<std::string> ListedTitle(const std::string& key,
                                         const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, key);
    v1::ListSessionsResponse response;
    if (!chat_->ListSessions(&context, v1::ListSessionsRequest(), &response)
             .ok()) {
      return std::nullopt;
    }
    for (const v1::SessionSummary& s : response.sessions()) {
      if (s.session_id() == session) return s.title();
    }
    return std::nullopt;
  }

  // Waits until the session has a title and returns it ("" on timeout).
  std::string AwaitTitle(const std::string& key, const std::string& session) {
    std::string title;
    Eventually([&] {
      title = ListedTitle(key, session).value_or("");
      return !title.empty();
    });
    return title;
  }

  grpc::Status Update(const std::string& key, const std::string& session,
                      std::optional<std::string> title,
                      v1::UpdateSessionResponse* response) {
    grpc::ClientContext context;
    Prepare(&context, key);
    v1::UpdateSessionRequest request;
    request.set_session_id(session);
    if (title.has_value()) request.set_title(*title);
    return chat_->UpdateSession(&context, request, response);
  }

  grpc::Status Search(const std::string& key, const std::string& query,
                      v1::SearchMessagesResponse* response, int page_size = 0,
                      const std::string& token = "") {
    grpc::ClientContext context;
    Prepare(&context, key);
    v1::SearchMessagesRequest request;
    request.set_query(query);
    request.set_page_size(page_size);
    request.set_page_token(token);
    return chat_->SearchMessages(&context, request, response);
  }

  v1::GetHistoryResponse History(const std::string& key,
                                 const std::string& session) {
    grpc::ClientContext context;
    Prepare(&context, key);
    v1::GetHistoryRequest request;
    request.set_session_id(session);
    v1::GetHistoryResponse response;
    grpc::Status status = chat_->GetHistory(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  ServerProcess& process() { return *process_; }

 private:
  std::unique_ptr<ServerProcess> process_;
  std::unique_ptr<v1::ChatService::Stub> chat_;
  std::unique_ptr<adminpb::AdminService::Stub> admin_;
};

class EchoSearchTest : public ::testing::TestWithParam<StoreKind> {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    std::string store = absl::StrCat("sqlite:", dir_, "/chat.db");
    if (GetParam() == StoreKind::kPostgres) {
      absl::StatusOr<std::string> conninfo =
          ::chat::testing::MakeFreshPostgresSchema();
      if (!conninfo.ok()) {
        if (::chat::testing::PostgresRequired()) {
          GTEST_FAIL() << "PostgreSQL required: " << conninfo.status();
        }
        GTEST_SKIP() << "set CHAT_TEST_POSTGRES_DSN to run: "
                     << conninfo.status();
      }
      store = absl::StrCat("postgres:", *conninfo);
    }
    ASSERT_TRUE(server_.Start(
        {"--listen=127.0.0.1:0", absl::StrCat("--store=", store),
         "--provider=echo", "--echo_delay=0s", "--shutdown_grace=2s"},
        {}));
    a_ = server_.NewKey("tenant-a");
    b_ = server_.NewKey("tenant-b");
    ASSERT_FALSE(a_.empty());
    ASSERT_FALSE(b_.empty());
  }

  std::string dir_;
  Server server_;
  std::string a_;
  std::string b_;
};

TEST_P(EchoSearchTest, FirstWordsBecomeTheTitleAndARenameSticks) {
  ASSERT_TRUE(
      server_.Chat(a_, "trip", "Plan a trip to Lisbon in spring, please").ok());
  EXPECT_EQ(server_.AwaitTitle(a_, "trip"), "Plan a trip to Lisbon in");
  EXPECT_EQ(server_.History(a_, "trip").title(), "Plan a trip to Lisbon in");

  v1::UpdateSessionResponse updated;
  grpc::Status status = server_.Update(a_, "trip", "  Lisbon 2026 ", &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.session().session_id(), "trip");
  EXPECT_EQ(updated.session().title(), "Lisbon 2026");
  EXPECT_EQ(updated.session().turns(), 1);
  // Later turns make no new title.
  ASSERT_TRUE(server_.Chat(a_, "trip", "And in summer?").ok());
  EXPECT_EQ(server_.ListedTitle(a_, "trip"), "Lisbon 2026");
  EXPECT_EQ(server_.History(a_, "trip").title(), "Lisbon 2026");
  // No title field: nothing changes.
  status = server_.Update(a_, "trip", std::nullopt, &updated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(updated.session().title(), "Lisbon 2026");
}

TEST_P(EchoSearchTest, BadRenamesAreRefused) {
  ASSERT_TRUE(server_.Chat(a_, "s1", "hello there").ok());
  v1::UpdateSessionResponse updated;
  EXPECT_EQ(
      server_.Update(a_, "s1", std::string(201, 'x'), &updated).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(server_.Update(a_, "s1", "two\nlines", &updated).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(server_.Update(a_, "missing", "x", &updated).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(server_.Update(a_, "bad id!", "x", &updated).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Another tenant cannot rename it: to B it does not exist.
  EXPECT_EQ(server_.Update(b_, "s1", "stolen", &updated).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(server_.AwaitTitle(a_, "s1"), "stolen");
}

TEST_P(EchoSearchTest, SearchSeesOnlyTheCallersTenant) {
  ASSERT_TRUE(server_.Chat(a_, "shared", "the walrus of tenant alpha").ok());
  ASSERT_TRUE(server_.Chat(a_, "a2", "another walrus story").ok());
  ASSERT_TRUE(server_.Chat(b_, "shared", "the walrus of tenant beta").ok());

  v1::SearchMessagesResponse a_hits;
  grpc::Status status = server_.Search(a_, "walrus", &a_hits);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_THAT(a_hits.hits(), Not(IsEmpty()));
  std::set<std::string> sessions;
  for (const v1::SearchHit& hit : a_hits.hits()) {
    EXPECT_THAT(hit.snippet(), Not(HasSubstr("beta")));
    EXPECT_THAT(hit.snippet(),
                HasSubstr(absl::StrCat(kMatchStart, "walrus", kMatchEnd)));
    EXPECT_THAT(hit.timestamp(), Not(IsEmpty()));
    sessions.insert(hit.session_id());
  }
  EXPECT_EQ(sessions, (std::set<std::string>{"shared", "a2"}));

  v1::SearchMessagesResponse b_hits;
  ASSERT_TRUE(server_.Search(b_, "walrus", &b_hits).ok());
  ASSERT_THAT(b_hits.hits(), Not(IsEmpty()));
  for (const v1::SearchHit& hit : b_hits.hits()) {
    EXPECT_EQ(hit.session_id(), "shared");
    EXPECT_THAT(hit.snippet(), Not(HasSubstr("alpha")));
  }
  v1::SearchMessagesResponse none;
  ASSERT_TRUE(server_.Search(b_, "another", &none).ok());
  EXPECT_THAT(none.hits(), IsEmpty());
}

TEST_P(EchoSearchTest, SearchPagesAndRefusesBadQueries) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        server_.Chat(a_, absl::StrCat("s", i), "a narwhal appears").ok());
  }
  std::set<std::pair<std::string, int64_t>> seen;
  std::string token;
  int pages = 0;
  do {
    v1::SearchMessagesResponse page;
    grpc::Status status = server_.Search(a_, "narwhal", &page, 2, token);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_LE(page.hits_size(), 2);
    for (const v1::SearchHit& hit : page.hits()) {
      EXPECT_TRUE(seen.insert({hit.session_id(), hit.message_index()}).second)
          << "seen twice: " << hit.session_id() << " #" << hit.message_index();
    }
    token = page.next_page_token();
  } while (!token.empty() && ++pages < 10);
  // Each turn's question and its echoed answer.
  EXPECT_THAT(seen, SizeIs(6));

  v1::SearchMessagesResponse page;
  EXPECT_EQ(server_.Search(a_, "", &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(server_.Search(a_, "   ", &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(server_.Search(a_, std::string(501, 'x'), &page).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(server_.Search(a_, "narwhal", &page, 101).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(server_.Search(a_, "narwhal", &page, 1, "bogus").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // Query syntax of either engine is searched as text, never an error.
  EXPECT_TRUE(server_.Search(a_, "\"narwhal OR (", &page).ok());
}

INSTANTIATE_TEST_SUITE_P(Stores, EchoSearchTest,
                         ::testing::Values(StoreKind::kSqlite,
                                           StoreKind::kPostgres),
                         [](const ::testing::TestParamInfo<StoreKind>& info) {
                           return info.param == StoreKind::kSqlite ? "Sqlite"
                                                                   : "Postgres";
                         });

class ModelTitleTest : public ::testing::Test {
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
    dir_ = MakeTempDir();
  }

  bool StartServer(const std::string& title_model) {
    return server_.Start(
        {"--listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
         absl::StrCat("--store=sqlite:", dir_, "/chat.db"),
         "--provider=anthropic", "--provider_retries=0",
         absl::StrCat("--title_model=", title_model)},
        {{"ANTHROPIC_API_KEY", "sk-ant-test-secret"},
         {"ANTHROPIC_BASE_URL", upstream_->base_url()}});
  }

  double Metric(const std::string& series) {
    const int port = MetricsPort(server_.process().Log());
    EXPECT_GT(port, 0);
    absl::StatusOr<std::string> body =
        ::chat::testing::HttpGetBody(port, "/metrics");
    if (!body.ok()) return -1;
    return ::chat::testing::SampleValue(*body, series).value_or(0);
  }

  static FakeUpstream* upstream_;
  std::string dir_;
  Server server_;
};

FakeUpstream* ModelTitleTest::upstream_ = nullptr;

TEST_F(ModelTitleTest, TitleComesFromOneCallToTheTitleModel) {
  ASSERT_TRUE(StartServer("ok@title-model"));
  ASSERT_TRUE(
      server_.Chat("", "s1", "Which whale is the largest?", "ok@chat").ok());
  // The fake answers "Echo of N messages: <last user message>".
  const std::string title = server_.AwaitTitle("", "s1");
  EXPECT_THAT(title, StartsWith("Echo of 1 messages: User: Which whale"));
  EXPECT_LE(title.size(), 80u);
  nlohmann::json stats = upstream_->Stats("ok@title-model");
  EXPECT_EQ(stats["attempts"], 1) << stats.dump();
  const std::string request = stats["last_request"].dump();
  EXPECT_THAT(request, HasSubstr("You name conversations"));
  EXPECT_THAT(request, HasSubstr("Which whale is the largest?"));
  // Asked for as one message, and read from Anthropic's non-streamed form.
  EXPECT_EQ(stats["last_request"]["stream"], false) << request;
  // A second turn asks for no second title.
  ASSERT_TRUE(server_.Chat("", "s1", "And the smallest?", "ok@chat").ok());
  EXPECT_EQ(upstream_->Stats("ok@title-model")["attempts"], 1);
  EXPECT_EQ(Metric("chatd_titles_total"), 1);
}

TEST_F(ModelTitleTest, FailedTitleCallLeavesNoTitleAndIsCounted) {
  ASSERT_TRUE(StartServer("status:500@title-fails"));
  grpc::Status status =
      server_.Chat("", "s1", "Which whale is the largest?", "ok@chat2");
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(Eventually([&] {
    return Metric("chatd_title_failures_total") == 1;
  })) << server_.process().Log();
  EXPECT_EQ(upstream_->Stats("status:500@title-fails")["attempts"], 1);
  EXPECT_EQ(server_.ListedTitle("", "s1"), "");
  // The session is still usable and can be named by hand.
  v1::UpdateSessionResponse updated;
  ASSERT_TRUE(server_.Update("", "s1", "Whales", &updated).ok());
  EXPECT_EQ(updated.session().title(), "Whales");
}

}  // namespace
}  // namespace chat
