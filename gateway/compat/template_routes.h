#ifndef CHAT_GATEWAY_COMPAT_TEMPLATE_ROUTES_H_
#define CHAT_GATEWAY_COMPAT_TEMPLATE_ROUTES_H_

// The Python "Chat API template"'s routes (docs REST-CONTRACT.md) and the
// behaviours that exist only for them. This table is the only place that
// says which routes are the template's: how a route is declared in the proto
// (main binding or `additional_bindings`) means nothing by itself, and a
// route not named here gets the gateway's standard behaviour.

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "gateway/transcode/routes.h"
#include "google/protobuf/descriptor.h"

namespace chat::gateway {

// What a template route does differently from the standard REST mapping.
// All false: the standard behaviour.
struct TemplateBehaviour {
  // A server-streaming answer is the deltas' text, raw, as text/plain
  // (chunked), with an error after the first byte appended as
  // "\nError: <message>"; standard is SSE, or ndjson on Accept.
  bool raw_text_stream = false;
  // A paged list asked with neither page_size nor page_token answers every
  // page, gathered by the gateway (the template's lists predate paging);
  // standard is one page, as the proto says.
  bool gather_all_pages = false;

  friend bool operator==(const TemplateBehaviour& a,
                         const TemplateBehaviour& b) {
    return a.raw_text_stream == b.raw_text_stream &&
           a.gather_all_pages == b.gather_all_pages;
  }
  friend bool operator!=(const TemplateBehaviour& a,
                         const TemplateBehaviour& b) {
    return !(a == b);
  }
};

// One route of the template, as chat.proto binds it.
struct TemplateRoute {
  absl::string_view rpc;  // Full name, "chat.v1.ChatService.ChatStream".
  absl::string_view http_method;  // "GET", "POST", "DELETE", ...
  absl::string_view path;         // The path template as written in the proto.
  TemplateBehaviour behaviour;
};

// Every template route, in the contract's order.
absl::Span<const TemplateRoute> TemplateRoutes();

// The table's entry for `route` (same RPC, HTTP method and path template),
// or nullptr if `route` is not one of the template's.
const TemplateRoute* FindTemplateRoute(const Route& route);

// What `route` does beyond the standard mapping: nothing unless it is one of
// the template's routes.
TemplateBehaviour TemplateBehaviourOf(const Route& route);

// True if `method` is a unary paged list: the request has `int32 page_size`
// and `string page_token`, the answer `string next_page_token` (AIP-158).
bool IsPagedList(const google::protobuf::MethodDescriptor& method);

// OK if every table entry is declared by a google.api.http rule (main or
// additional binding) of a method of `services`; otherwise FAILED_PRECONDITION
// naming each entry that is not, so the table cannot drift from the proto.
// Also FAILED_PRECONDITION for a behaviour the entry's RPC cannot have
// (raw-text streaming on a unary RPC, gathering pages of a non-list).
absl::Status CheckTemplateRoutes(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services);

// CheckTemplateRoutes against chat.v1.ChatService, the service the table
// describes (its generated descriptor, whatever routes a gateway serves).
absl::Status CheckTemplateRoutesAgainstChatProto();

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_COMPAT_TEMPLATE_ROUTES_H_
