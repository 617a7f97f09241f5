// The table of the template's routes: lookups against chat.proto's route
// table, the start-up check that every entry is declared by the proto, and
// that anything not in the table (a /v1 twin, a new binding, the same path
// on another RPC) gets no template behaviour. Proto variants are built in
// the test as FileDescriptorProtos, from chat.v1.ChatService's own
// descriptor with its annotations edited.

#include "gateway/compat/template_routes.h"

#include <cctype>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "chat/v1/chat.pb.h"
#include "gmock/gmock.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace chat::gateway {
namespace {

using ::chat::testing::IsOk;
using ::chat::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

const google::protobuf::ServiceDescriptor* ChatService() {
  return chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
      "ChatService");
}

// Lives for the whole program: matches and routes point into it.
const RouteTable& ChatRoutes() {
  static const RouteTable* const table = [] {
    absl::StatusOr<RouteTable> routes =
        RouteTable::FromServices({ChatService()});
    EXPECT_THAT(routes, IsOk());
    return new RouteTable(routes.ok() ? *std::move(routes) : RouteTable());
  }();
  return *table;
}

const Route& RouteFor(const char* method, const char* path) {
  static const Route* const none = new Route();
  RouteMatch match = ChatRoutes().Match(method, path);
  EXPECT_EQ(match.kind, RouteMatch::kFound) << method << " " << path;
  return match.route == nullptr ? *none : *match.route;
}

struct LookupCase {
  const char* method;
  const char* path;
  bool template_route;
  TemplateBehaviour behaviour;
};

class TemplateLookupTest : public ::testing::TestWithParam<LookupCase> {};

TEST_P(TemplateLookupTest, BehaviourOfTheMatchedRoute) {
  const LookupCase& c = GetParam();
  const Route& route = RouteFor(c.method, c.path);
  EXPECT_EQ(FindTemplateRoute(route) != nullptr, c.template_route);
  EXPECT_EQ(TemplateBehaviourOf(route), c.behaviour);
}

constexpr TemplateBehaviour kStandard{};
constexpr TemplateBehaviour kRawText{/*raw_text_stream=*/true,
                                     /*gather_all_pages=*/false};
constexpr TemplateBehaviour kGather{/*raw_text_stream=*/false,
                                    /*gather_all_pages=*/true};

INSTANTIATE_TEST_SUITE_P(
    ChatProto, TemplateLookupTest,
    ::testing::Values(
        // The template's routes (REST-CONTRACT.md).
        LookupCase{"GET", "/", true, kStandard},
        LookupCase{"POST", "/chat", true, kStandard},
        LookupCase{"POST", "/chat-stream", true, kRawText},
        LookupCase{"GET", "/history/s1", true, kStandard},
        LookupCase{"DELETE", "/history/s1", true, kStandard},
        LookupCase{"GET", "/sessions", true, kGather},
        LookupCase{"POST", "/reset/s1", true, kStandard},
        LookupCase{"GET", "/stats", true, kStandard},
        // Their /v1 twins: the standard mapping.
        LookupCase{"GET", "/v1/status", false, kStandard},
        LookupCase{"POST", "/v1/chat", false, kStandard},
        LookupCase{"POST", "/v1/chat:stream", false, kStandard},
        LookupCase{"GET", "/v1/sessions/s1/history", false, kStandard},
        LookupCase{"DELETE", "/v1/sessions/s1", false, kStandard},
        LookupCase{"GET", "/v1/sessions", false, kStandard},
        LookupCase{"POST", "/v1/sessions/s1:reset", false, kStandard},
        LookupCase{"GET", "/v1/stats", false, kStandard}),
    [](const ::testing::TestParamInfo<LookupCase>& info) {
      std::string name = absl::StrCat(info.param.method, "_");
      for (const char* p = info.param.path; *p != '\0'; ++p) {
        name += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
      }
      return name;
    });

TEST(TemplateRoutesTest, EveryEntryIsDeclaredByChatProto) {
  EXPECT_THAT(CheckTemplateRoutesAgainstChatProto(), IsOk());
  // And each entry finds itself among the routes the gateway serves.
  std::set<const Route*> found;
  for (const TemplateRoute& entry : TemplateRoutes()) {
    const Route* match = nullptr;
    for (const Route& route : ChatRoutes().routes()) {
      if (FindTemplateRoute(route) == &entry) match = &route;
    }
    ASSERT_NE(match, nullptr) << entry.http_method << " " << entry.path;
    EXPECT_TRUE(found.insert(match).second) << entry.path;
  }
  EXPECT_EQ(found.size(), 8u);  // The contract's eight routes.
}

TEST(TemplateRoutesTest, TheBehavioursFitTheirRpcs) {
  for (const TemplateRoute& entry : TemplateRoutes()) {
    const google::protobuf::MethodDescriptor* method =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            std::string(entry.rpc));
    ASSERT_NE(method, nullptr) << entry.rpc;
    if (entry.behaviour.raw_text_stream) {
      EXPECT_TRUE(method->server_streaming()) << entry.rpc;
    }
    if (entry.behaviour.gather_all_pages) {
      EXPECT_TRUE(IsPagedList(*method)) << entry.rpc;
    }
  }
  EXPECT_TRUE(IsPagedList(*ChatService()->FindMethodByName("ListSessions")));
  EXPECT_FALSE(IsPagedList(*ChatService()->FindMethodByName("GetHistory")));
  EXPECT_FALSE(IsPagedList(*ChatService()->FindMethodByName("ChatStream")));
}

// A route that is not in the table, though it looks like one of the
// template's: another path on the same RPC, an additional binding of the
// same path on another RPC, a different HTTP method.
TEST(TemplateRoutesTest, UnknownRouteGetsNoTemplateBehaviour) {
  const Route& chat_stream = RouteFor("POST", "/chat-stream");
  Route other_path = {"POST", *PathTemplate::Parse("/chat-stream2"), "*",
                      chat_stream.method, "x"};
  Route other_rpc = {"POST", *PathTemplate::Parse("/chat-stream"), "*",
                     ChatService()->FindMethodByName("Chat"), "x"};
  Route other_verb = {"PUT", *PathTemplate::Parse("/chat-stream"), "*",
                      chat_stream.method, "x"};
  Route no_method = {"POST", *PathTemplate::Parse("/chat-stream"), "*", nullptr,
                     "x"};
  for (const Route* route :
       {&other_path, &other_rpc, &other_verb, &no_method}) {
    EXPECT_EQ(FindTemplateRoute(*route), nullptr) << route->path.text();
    EXPECT_EQ(TemplateBehaviourOf(*route), kStandard) << route->path.text();
  }
}

// chat.v1.ChatService as a FileDescriptorProto in package chat.v1 (its
// messages still come from the generated chat.proto), for `edit` to change.
google::protobuf::FileDescriptorProto ChatServiceFile() {
  google::protobuf::FileDescriptorProto file;
  file.set_name("test/chat_service_variant.proto");
  file.set_package("chat.v1");
  file.set_syntax("proto3");
  file.add_dependency("chat/v1/chat.proto");
  file.add_dependency("google/api/annotations.proto");
  ChatService()->CopyTo(file.add_service());
  return file;
}

google::api::HttpRule* RuleOf(google::protobuf::FileDescriptorProto* file,
                              const std::string& method) {
  for (auto& m : *file->mutable_service(0)->mutable_method()) {
    if (m.name() == method) {
      return m.mutable_options()->MutableExtension(google::api::http);
    }
  }
  ADD_FAILURE() << "no method " << method;
  return nullptr;
}

TEST(TemplateRoutesTest, AProtoWithoutAnEntrysRouteFailsTheCheck) {
  google::protobuf::DescriptorPool pool(
      google::protobuf::DescriptorPool::generated_pool());
  google::protobuf::FileDescriptorProto file = ChatServiceFile();
  // /chat-stream moved: the table's entry no longer names a declared route.
  RuleOf(&file, "ChatStream")
      ->mutable_additional_bindings(0)
      ->set_post("/chat-streaming");
  const google::protobuf::FileDescriptor* built = pool.BuildFile(file);
  ASSERT_NE(built, nullptr);
  absl::Status status = CheckTemplateRoutes({built->service(0)});
  EXPECT_THAT(status, StatusIs(absl::StatusCode::kFailedPrecondition,
                               AllOf(HasSubstr("POST /chat-stream "),
                                     HasSubstr("not declared"),
                                     Not(HasSubstr("/sessions")))));
}

TEST(TemplateRoutesTest, ABehaviourTheRpcCannotHaveFailsTheCheck) {
  google::protobuf::DescriptorPool pool(
      google::protobuf::DescriptorPool::generated_pool());
  google::protobuf::FileDescriptorProto file = ChatServiceFile();
  // The routes stay, but ChatStream no longer streams and ListSessions no
  // longer pages.
  for (auto& method : *file.mutable_service(0)->mutable_method()) {
    if (method.name() == "ChatStream") method.set_server_streaming(false);
    if (method.name() == "ListSessions") {
      method.set_input_type(".chat.v1.GetStatsRequest");
    }
  }
  const google::protobuf::FileDescriptor* built = pool.BuildFile(file);
  ASSERT_NE(built, nullptr);
  EXPECT_THAT(CheckTemplateRoutes({built->service(0)}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("POST /chat-stream (chat.v1.ChatService."
                                       "ChatStream) streams raw text but is "
                                       "not server-streaming"),
                             HasSubstr("GET /sessions (chat.v1.ChatService."
                                       "ListSessions) gathers all pages but "
                                       "is not a paged list"),
                             Not(HasSubstr("not declared")))));
}

TEST(TemplateRoutesTest, AnUnchangedCopyPassesTheCheck) {
  google::protobuf::DescriptorPool pool(
      google::protobuf::DescriptorPool::generated_pool());
  const google::protobuf::FileDescriptor* built =
      pool.BuildFile(ChatServiceFile());
  ASSERT_NE(built, nullptr);
  EXPECT_THAT(CheckTemplateRoutes({built->service(0)}), IsOk());
}

}  // namespace
}  // namespace chat::gateway
