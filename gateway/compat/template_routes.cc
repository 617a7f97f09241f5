#include "gateway/compat/template_routes.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "chat/v1/chat.pb.h"

namespace chat::gateway {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;

constexpr TemplateBehaviour kStandard{};
constexpr TemplateBehaviour kRawTextStream{/*raw_text_stream=*/true,
                                           /*gather_all_pages=*/false};
constexpr TemplateBehaviour kGatherAllPages{/*raw_text_stream=*/false,
                                            /*gather_all_pages=*/true};

// The template's routes (REST-CONTRACT.md, "Routes of the template"). Most
// need nothing beyond the standard mapping, since the proto's messages are
// the template's bodies; they are listed so that the OpenAPI document and
// whoever reads this know them as the template's.
constexpr TemplateRoute kTemplateRoutes[] = {
    {"chat.v1.ChatService.GetStatus", "GET", "/", kStandard},
    {"chat.v1.ChatService.Chat", "POST", "/chat", kStandard},
    // The template's browser client concatenates raw chunks.
    {"chat.v1.ChatService.ChatStream", "POST", "/chat-stream", kRawTextStream},
    {"chat.v1.ChatService.GetHistory", "GET", "/history/{session_id}",
     kStandard},
    {"chat.v1.ChatService.DeleteSession", "DELETE", "/history/{session_id}",
     kStandard},
    // The template listed every session in one answer.
    {"chat.v1.ChatService.ListSessions", "GET", "/sessions", kGatherAllPages},
    {"chat.v1.ChatService.ResetSession", "POST", "/reset/{session_id}",
     kStandard},
    {"chat.v1.ChatService.GetStats", "GET", "/stats", kStandard},
};

bool Is(const TemplateRoute& entry, const Route& route) {
  return route.method != nullptr && route.method->full_name() == entry.rpc &&
         route.http_method == entry.http_method &&
         route.path.text() == entry.path;
}

std::string Describe(const TemplateRoute& entry) {
  return absl::StrCat(entry.http_method, " ", entry.path, " (", entry.rpc, ")");
}

}  // namespace

absl::Span<const TemplateRoute> TemplateRoutes() { return kTemplateRoutes; }

const TemplateRoute* FindTemplateRoute(const Route& route) {
  for (const TemplateRoute& entry : kTemplateRoutes) {
    if (Is(entry, route)) return &entry;
  }
  return nullptr;
}

TemplateBehaviour TemplateBehaviourOf(const Route& route) {
  const TemplateRoute* entry = FindTemplateRoute(route);
  return entry == nullptr ? kStandard : entry->behaviour;
}

bool IsPagedList(const MethodDescriptor& method) {
  const FieldDescriptor* size =
      method.input_type()->FindFieldByName("page_size");
  const FieldDescriptor* token =
      method.input_type()->FindFieldByName("page_token");
  const FieldDescriptor* next =
      method.output_type()->FindFieldByName("next_page_token");
  return !method.client_streaming() && !method.server_streaming() &&
         size != nullptr && !size->is_repeated() &&
         size->cpp_type() == FieldDescriptor::CPPTYPE_INT32 &&
         token != nullptr && !token->is_repeated() &&
         token->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
         next != nullptr && !next->is_repeated() &&
         next->cpp_type() == FieldDescriptor::CPPTYPE_STRING;
}

absl::Status CheckTemplateRoutes(
    const std::vector<const google::protobuf::ServiceDescriptor*>& services) {
  absl::StatusOr<RouteTable> routes = RouteTable::FromServices(services);
  if (!routes.ok()) return routes.status();
  std::vector<std::string> problems;
  for (const TemplateRoute& entry : kTemplateRoutes) {
    const Route* declared = nullptr;
    for (const Route& route : routes->routes()) {
      if (Is(entry, route)) declared = &route;
    }
    if (declared == nullptr) {
      problems.push_back(
          absl::StrCat(Describe(entry), " is not declared by the proto"));
      continue;
    }
    // A behaviour the route's RPC cannot have is a table error too.
    if (entry.behaviour.raw_text_stream &&
        !declared->method->server_streaming()) {
      problems.push_back(absl::StrCat(
          Describe(entry), " streams raw text but is not server-streaming"));
    }
    if (entry.behaviour.gather_all_pages && !IsPagedList(*declared->method)) {
      problems.push_back(absl::StrCat(
          Describe(entry), " gathers all pages but is not a paged list"));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "gateway/compat/template_routes.cc: ", absl::StrJoin(problems, "; ")));
}

absl::Status CheckTemplateRoutesAgainstChatProto() {
  return CheckTemplateRoutes(
      {chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
          "ChatService")});
}

}  // namespace chat::gateway
