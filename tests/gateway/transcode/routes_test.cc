// The route table read from chat.proto's annotations: every route of the
// REST contract, and the 404 / 405 outcomes. Matches are taken from a table
// that outlives them (one table for the whole file); that a match cannot be
// taken from a temporary table is checked at compile time.

#include "gateway/transcode/routes.h"

#include <set>
#include <type_traits>
#include <utility>

#include "chat/v1/chat.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace chat::gateway {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// Lives for the whole test program, so every match taken from it stays
// valid.
const RouteTable& ChatRoutes() {
  static const RouteTable* const table = [] {
    absl::StatusOr<RouteTable> routes = RouteTable::FromServices(
        {chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
            "ChatService")});
    EXPECT_TRUE(routes.ok()) << routes.status();
    return new RouteTable(routes.ok() ? *std::move(routes) : RouteTable());
  }();
  return *table;
}

// Whether `Table` (a value category, as std::declval gives it) has a
// callable Match / routes().
template <typename Table, typename = void>
struct CanMatch : std::false_type {};
template <typename Table>
struct CanMatch<Table, std::void_t<decltype(std::declval<Table>().Match(
                           absl::string_view(), absl::string_view()))>>
    : std::true_type {};
template <typename Table, typename = void>
struct CanListRoutes : std::false_type {};
template <typename Table>
struct CanListRoutes<Table,
                     std::void_t<decltype(std::declval<Table>().routes())>>
    : std::true_type {};

// A match points into its table: taking one from a temporary table (the
// match would dangle at the end of the statement) does not compile.
static_assert(CanMatch<const RouteTable&>::value);
static_assert(CanMatch<RouteTable&>::value);
static_assert(!CanMatch<RouteTable>::value);
static_assert(!CanMatch<RouteTable&&>::value);
static_assert(CanListRoutes<const RouteTable&>::value);
static_assert(!CanListRoutes<RouteTable>::value);

struct Case {
  const char* method;
  const char* path;
  const char* rpc;
  const char* path_template;  // The binding that matched, as in the proto.
};

TEST(RoutesTest, EveryContractRouteAndItsV1Twin) {
  const RouteTable& table = ChatRoutes();
  const Case cases[] = {
      {"GET", "/", "GetStatus", "/"},
      {"GET", "/v1/status", "GetStatus", "/v1/status"},
      {"POST", "/chat", "Chat", "/chat"},
      {"POST", "/v1/chat", "Chat", "/v1/chat"},
      {"POST", "/chat-stream", "ChatStream", "/chat-stream"},
      {"POST", "/v1/chat:stream", "ChatStream", "/v1/chat:stream"},
      {"GET", "/history/s1", "GetHistory", "/history/{session_id}"},
      {"GET", "/v1/sessions/s1/history", "GetHistory",
       "/v1/sessions/{session_id}/history"},
      {"DELETE", "/history/s1", "DeleteSession", "/history/{session_id}"},
      {"DELETE", "/v1/sessions/s1", "DeleteSession",
       "/v1/sessions/{session_id}"},
      {"POST", "/reset/s1", "ResetSession", "/reset/{session_id}"},
      {"POST", "/v1/sessions/s1:reset", "ResetSession",
       "/v1/sessions/{session_id}:reset"},
      {"GET", "/sessions", "ListSessions", "/sessions"},
      {"GET", "/v1/sessions", "ListSessions", "/v1/sessions"},
      {"GET", "/stats", "GetStats", "/stats"},
      {"GET", "/v1/stats", "GetStats", "/v1/stats"},
      {"POST", "/v1/chat:complete", "Complete", "/v1/chat:complete"},
      {"POST", "/v1/chat:completeStream", "CompleteStream",
       "/v1/chat:completeStream"},
      {"GET", "/v1/chat:models", "ListModels", "/v1/chat:models"},
      {"PATCH", "/v1/sessions/s1", "UpdateSession",
       "/v1/sessions/{session_id}"},
      {"GET", "/v1/search", "SearchMessages", "/v1/search"},
      {"POST", "/v1/sessions/s1:regenerate", "RegenerateTurn",
       "/v1/sessions/{session_id}:regenerate"},
      {"POST", "/v1/sessions/s1/turns/2:edit", "EditMessage",
       "/v1/sessions/{session_id}/turns/{turn_id}:edit"},
      {"POST", "/v1/sessions/s1:switchBranch", "SwitchBranch",
       "/v1/sessions/{session_id}:switchBranch"},
      {"GET", "/v1/sessions/s1/export", "ExportSession",
       "/v1/sessions/{session_id}/export"},
      {"GET", "/v1/sessions:export", "ExportSessions", "/v1/sessions:export"},
      {"POST", "/v1/sessions:import", "ImportSession", "/v1/sessions:import"},
      {"POST", "/v1/sessions", "CreateSession", "/v1/sessions"},
      {"GET", "/v1/sessions/s1/stream", "ResumeStream",
       "/v1/sessions/{session_id}/stream"},
      {"POST", "/v1/sessions/s1:cancel", "CancelStream",
       "/v1/sessions/{session_id}:cancel"},
  };
  for (const Case& c : cases) {
    RouteMatch m = table.Match(c.method, c.path);
    ASSERT_EQ(m.kind, RouteMatch::kFound) << c.method << " " << c.path;
    EXPECT_EQ(m.route->method->name(), c.rpc) << c.path;
    EXPECT_EQ(m.route->path.text(), c.path_template) << c.path;
  }
  EXPECT_EQ(table.routes().size(), 30u);
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
  EXPECT_EQ(ChatRoutes().Match("GET", "/chat").kind,
            RouteMatch::kMethodNotAllowed);
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
