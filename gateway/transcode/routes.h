#ifndef CHAT_GATEWAY_TRANSCODE_ROUTES_H_
#define CHAT_GATEWAY_TRANSCODE_ROUTES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/transcode/path_template.h"
#include "google/protobuf/descriptor.h"

namespace chat::gateway {

// One REST binding of an RPC, from its google.api.http annotation (its main
// rule or one of its `additional_bindings`: both are served alike; which
// routes behave like the Python template's is gateway/compat's business).
struct Route {
  std::string http_method;  // "GET", "POST", "PUT", "PATCH", "DELETE".
  PathTemplate path;
  // The annotation's `body`: "" (no body), "*" (the whole request message) or
  // a field name (that field is the body).
  std::string body;
  const google::protobuf::MethodDescriptor* method = nullptr;
  // A stable id for OpenAPI's operationId, e.g. "ChatService_Chat_1".
  std::string operation_id;
};

// What a lookup found. `route` points into the RouteTable that made it, so a
// match is valid only while that table lives (RouteTable::Match cannot be
// called on a temporary table).
struct RouteMatch {
  enum Kind {
    kFound,             // `route` and `bindings` are set.
    kMethodNotAllowed,  // The path exists with other methods: `allowed`.
    kNotFound,
  } kind = kNotFound;
  const Route* route = nullptr;
  std::vector<Binding> bindings;
  std::vector<std::string> allowed;  // Methods of the path, for `Allow`.
};

// Every REST route of some services, read from their descriptors'
// google.api.http options at start-up. Immutable after construction, so
// lookups from any thread are safe.
class RouteTable {
 public:
  // Reads the annotations of every method of `services`. INVALID_ARGUMENT if
  // an annotation's path does not parse.
  static absl::StatusOr<RouteTable> FromServices(
      const std::vector<const google::protobuf::ServiceDescriptor*>& services);

  // Finds the route for `http_method` and `path` (no query string). Routes are
  // tried in declaration order; the first whose method and path match wins.
  // The match points into this table: there is no overload for a temporary
  // table, whose match would dangle at the end of the statement.
  RouteMatch Match(absl::string_view http_method,
                   absl::string_view path) const&;
  RouteMatch Match(absl::string_view http_method,
                   absl::string_view path) && = delete;

  // In declaration order: for each method, its main rule, then its
  // additional bindings. Likewise not on a temporary table.
  const std::vector<Route>& routes() const& { return routes_; }
  const std::vector<Route>& routes() && = delete;

 private:
  std::vector<Route> routes_;
};

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_ROUTES_H_
