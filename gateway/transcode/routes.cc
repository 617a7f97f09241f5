#include "gateway/transcode/routes.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"

namespace chat::gateway {
namespace {

// The HTTP method and path of one rule; false if the rule has no pattern.
bool RulePattern(const google::api::HttpRule& rule, std::string* method,
                 std::string* path) {
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      *method = "GET";
      *path = rule.get();
      return true;
    case google::api::HttpRule::kPut:
      *method = "PUT";
      *path = rule.put();
      return true;
    case google::api::HttpRule::kPost:
      *method = "POST";
      *path = rule.post();
      return true;
    case google::api::HttpRule::kDelete:
      *method = "DELETE";
      *path = rule.delete_();
      return true;
    case google::api::HttpRule::kPatch:
      *method = "PATCH";
      *path = rule.patch();
      return true;
    case google::api::HttpRule::kCustom:
      *method = rule.custom().kind();
      *path = rule.custom().path();
      return true;
    default:
      return false;
  }
}

absl::Status AddRule(const google::api::HttpRule& rule,
                     const google::protobuf::MethodDescriptor* method,
                     std::vector<Route>* routes) {
  std::string http_method, path;
  if (!RulePattern(rule, &http_method, &path)) return absl::OkStatus();
  absl::StatusOr<PathTemplate> parsed = PathTemplate::Parse(path);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(method->full_name(), ": ", parsed.status().message()));
  }
  Route route{http_method, *std::move(parsed), rule.body(), method, ""};
  int index = 0;
  for (const Route& r : *routes) index += r.method == method ? 1 : 0;
  route.operation_id =
      absl::StrCat(method->service()->name(), "_", method->name(),
                   index == 0 ? "" : absl::StrCat("_", index));
  routes->push_back(std::move(route));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RouteTable> RouteTable::FromServices(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services) {
  RouteTable table;
  for (const google::protobuf::ServiceDescriptor* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = service->method(i);
      if (!method->options().HasExtension(google::api::http)) continue;
      const google::api::HttpRule& rule =
          method->options().GetExtension(google::api::http);
      if (absl::Status s = AddRule(rule, method, &table.routes_); !s.ok()) {
        return s;
      }
      for (const google::api::HttpRule& extra : rule.additional_bindings()) {
        if (absl::Status s = AddRule(extra, method, &table.routes_); !s.ok()) {
          return s;
        }
      }
    }
  }
  return table;
}

RouteMatch RouteTable::Match(absl::string_view http_method,
                             absl::string_view path) const& {
  RouteMatch match;
  for (const Route& route : routes_) {
    std::vector<Binding> bindings;
    if (!route.path.Match(path, &bindings)) continue;
    if (route.http_method == http_method) {
      match.kind = RouteMatch::kFound;
      match.route = &route;
      match.bindings = std::move(bindings);
      match.allowed.clear();
      return match;
    }
    if (std::find(match.allowed.begin(), match.allowed.end(),
                  route.http_method) == match.allowed.end()) {
      match.allowed.push_back(route.http_method);
    }
  }
  match.kind = match.allowed.empty() ? RouteMatch::kNotFound
                                     : RouteMatch::kMethodNotAllowed;
  return match;
}

}  // namespace chat::gateway
