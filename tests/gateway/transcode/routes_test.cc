// The route table read from chat.proto's annotations: every route of the
// REST contract, and the 404 / 405 outcomes.

#include "gateway/transcode/routes.h"

#include <set>

#include "chat/v1/chat.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

RouteTable ChatRoutes() {
  absl::StatusOr<RouteTable> table =
      RouteTable::FromServices({chat::v1::ChatRequest::descriptor()->file()->FindServiceByName("ChatService")});
  EXPECT_TRUE(table.ok()) << table.status();
  return *table;
}

struct Case {
  const char* method;
  const char* path;
  const char* rpc;
  bool additional;
};

TEST(RoutesTest, EveryContractRouteAndItsV1Twin) {
  RouteTable table = ChatRoutes();
  const Case cases[] = {
      {"GET", "/", "GetStatus", true},
      {"GET", "/v1/status", "GetStatus", false},
      {"POST", "/chat", "Chat", true},
      {"POST", "/v1/chat", "Chat", false},
      {"POST", "/chat-stream", "ChatStream", true},
      {"POST", "/v1/chat:stream", "ChatStream", false},
      {"GET", "/history/s1", "GetHistory", true},
      {"GET", "/v1/sessions/s1/history", "GetHistory", false},
      {"DELETE", "/history/s1", "DeleteSession", true},
      {"DELETE", "/v1/sessions/s1", "DeleteSession", false},
      {"POST", "/reset/s1", "ResetSession", true},
      {"POST", "/v1/sessions/s1:reset", "ResetSession", false},
      {"GET", "/sessions", "ListSessions", true},
      {"GET", "/v1/sessions", "ListSessions", false},
      {"GET", "/stats", "GetStats", true},
      {"GET", "/v1/stats", "GetStats", false},
  };
  for (const Case& c : cases) {
    RouteMatch m = table.Match(c.method, c.path);
    ASSERT_EQ(m.kind, RouteMatch::kFound) << c.method << " " << c.path;
    EXPECT_EQ(m.route->method->name(), c.rpc) << c.path;
    EXPECT_EQ(m.route->additional_binding, c.additional) << c.path;
  }
  EXPECT_EQ(table.routes().size(), 16u);
}

TEST(RoutesTest, BindsPathVariables) {
  RouteMatch m = ChatRoutes().Match("POST", "/v1/sessions/a:b:reset");
  ASSERT_EQ(m.kind, RouteMatch::kFound);
  EXPECT_THAT(m.bindings, ElementsAre(Pair("session_id", "a:b")));
}

TEST(RoutesTest, BodyStarOnChat) {
  RouteMatch m = ChatRoutes().Match("POST", "/chat");
  ASSERT_EQ(m.kind, RouteMatch::kFound);
  EXPECT_EQ(m.route->body, "*");
}

TEST(RoutesTest, WrongMethodListsAllowed) {
  RouteMatch m = ChatRoutes().Match("PUT", "/history/s1");
  EXPECT_EQ(m.kind, RouteMatch::kMethodNotAllowed);
  EXPECT_THAT(m.allowed, UnorderedElementsAre("GET", "DELETE"));
  EXPECT_EQ(ChatRoutes().Match("GET", "/chat").kind, RouteMatch::kMethodNotAllowed);
}

TEST(RoutesTest, UnknownPath) {
  EXPECT_EQ(ChatRoutes().Match("GET", "/nope").kind, RouteMatch::kNotFound);
}

TEST(RoutesTest, OperationIdsAreUnique) {
  std::set<std::string> ids;
  for (const Route& r : ChatRoutes().routes()) {
    EXPECT_TRUE(ids.insert(r.operation_id).second) << r.operation_id;
  }
}

}  // namespace
}  // namespace chat::gateway
