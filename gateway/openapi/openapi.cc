#include "gateway/openapi/openapi.h"

#include <cctype>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gateway/compat/template_routes.h"
#include "google/protobuf/descriptor.h"
#include "nlohmann/json.hpp"

namespace chat::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using Json = nlohmann::ordered_json;

std::string SchemaName(const Descriptor* type) { return type->full_name(); }

std::string Ref(const Descriptor* type) {
  return absl::StrCat("#/components/schemas/", SchemaName(type));
}

// The schema of one value of `field` (ignoring `repeated`).
Json ScalarSchema(const FieldDescriptor* field) {
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return {{"type", "integer"}, {"format", "int32"}};
    case FieldDescriptor::CPPTYPE_UINT32:
      return {{"type", "integer"}, {"format", "int64"}, {"minimum", 0}};
    case FieldDescriptor::CPPTYPE_INT64:
      return {{"type", "integer"}, {"format", "int64"}};
    case FieldDescriptor::CPPTYPE_UINT64:
      return {{"type", "integer"}, {"minimum", 0}};
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return {{"type", "number"}, {"format", "double"}};
    case FieldDescriptor::CPPTYPE_FLOAT:
      return {{"type", "number"}, {"format", "float"}};
    case FieldDescriptor::CPPTYPE_BOOL:
      return {{"type", "boolean"}};
    case FieldDescriptor::CPPTYPE_ENUM: {
      Json values = Json::array();
      for (int i = 0; i < field->enum_type()->value_count(); ++i) {
        values.push_back(field->enum_type()->value(i)->name());
      }
      return {{"type", "string"}, {"enum", values}};
    }
    case FieldDescriptor::CPPTYPE_STRING:
      if (field->type() == FieldDescriptor::TYPE_BYTES) {
        return {{"type", "string"}, {"format", "byte"}};
      }
      return {{"type", "string"}};
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return {{"$ref", Ref(field->message_type())}};
  }
  return Json::object();
}

Json FieldSchema(const FieldDescriptor* field) {
  if (field->is_map()) {
    return {{"type", "object"},
            {"additionalProperties",
             ScalarSchema(field->message_type()->map_value())}};
  }
  if (field->is_repeated())
    return {{"type", "array"}, {"items", ScalarSchema(field)}};
  Json schema = ScalarSchema(field);
  if (field->has_presence() &&
      field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
    schema["nullable"] = true;  // proto3 `optional`: null means absent.
  }
  return schema;
}

std::string Describe(const ProtoDocs* docs, const std::string& full_name) {
  return docs == nullptr ? "" : docs->Comment(full_name);
}

void AddSchema(const Descriptor* type, const ProtoDocs* docs, Json* schemas) {
  std::string name = SchemaName(type);
  if (schemas->contains(name)) return;
  Json properties = Json::object();
  (*schemas)[name] = Json::object();  // Placeholder: stops recursion.
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    Json schema = FieldSchema(field);
    // A description beside "$ref" would be ignored (OpenAPI 3.0), so only
    // inline schemas get one.
    std::string description = Describe(docs, field->full_name());
    if (!description.empty() && !schema.contains("$ref")) {
      schema["description"] = description;
    }
    properties[field->name()] = schema;
    const FieldDescriptor* nested =
        field->is_map() ? field->message_type()->map_value() : field;
    if (nested->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      AddSchema(nested->message_type(), docs, schemas);
    }
  }
  Json schema = {{"type", "object"}, {"properties", properties}};
  std::string description = Describe(docs, type->full_name());
  if (!description.empty()) schema["description"] = description;
  (*schemas)[name] = schema;
}

// OpenAPI path templates have no `{f=**}` and no verb syntax; ours are plain
// `{f}`, which OpenAPI reads the same, and ":verb" is an ordinary character.
std::string OpenApiPath(const PathTemplate& path) {
  std::string text = path.text();
  return absl::StrReplaceAll(text, {{"=*}", "}"}, {"=**}", "}"}});
}

// RPCs chat-server answers without an API key (health and the status page
// stay open to probes and to people finding their way); every other
// operation names the key schemes. chat-server decides, this only documents.
constexpr absl::string_view kOpenRpcs[] = {
    "chat.v1.ChatService.GetStatus",
    "chat.admin.v1.AdminService.GetAuthPolicy",
};

bool NeedsKey(const google::protobuf::MethodDescriptor& method) {
  for (absl::string_view open : kOpenRpcs) {
    if (method.full_name() == open) return false;
  }
  return true;
}

// What "Try it out" on /docs starts from. Without an example Swagger UI fills
// every field with a placeholder ("model": "string", "max_tokens": 0), which
// the server rejects; these are the smallest bodies that succeed, and the
// session they name is the one the session routes' path parameter suggests,
// so a chat and then its history work without typing.
constexpr char kExampleSession[] = "docs-demo";

Json RequestExample(const Descriptor& input) {
  const std::string& name = input.full_name();
  if (name == "chat.v1.ChatRequest" || name == "chat.v1.ChatStreamRequest") {
    return {{"message", "Hello"}, {"session_id", kExampleSession}};
  }
  if (name == "chat.admin.v1.CreateKeyRequest") {
    return {{"tenant", "acme"}, {"name", "docs"}};
  }
  return nullptr;
}

Json SecuritySchemes() {
  return {{"bearerAuth",
           {{"type", "http"},
            {"scheme", "bearer"},
            {"description",
             "An API key, `Authorization: Bearer chatd_<id>_<secret>`. The "
             "/v1/admin routes need the admin key."}}},
          {"apiKeyHeader",
           {{"type", "apiKey"},
            {"in", "header"},
            {"name", "x-api-key"},
            {"description", "The same API key in an x-api-key header."}}}};
}

Json IdempotencyKeyParameter() {
  return {{"name", "Idempotency-Key"},
          {"in", "header"},
          {"required", false},
          {"description",
           "Makes the turn idempotent, as the body's request_id does (both "
           "set: they must be equal). A repeat within the server's "
           "--idempotency_ttl (24h) gets the stored answer without asking the "
           "model again (a stream repeat replays it); a repeat while the "
           "first still runs waits for it. Per tenant; 1..128 bytes of "
           "[A-Za-z0-9._:@-]. Reused for another message or session: 409."},
          {"schema", {{"type", "string"}, {"maxLength", 128}}},
          {"example", "7f9c2ba4-e88f-4f2a-9d1b-0c6d3c5e8a11"}};
}

Json ErrorResponse() {
  return {{"description", "An error, with the gRPC status code and message."},
          {"content",
           {{"application/json",
             {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
}

}  // namespace

std::string GenerateOpenApi(const RouteTable& routes, const std::string& title,
                            const std::string& version, const ProtoDocs* docs) {
  Json doc;
  doc["openapi"] = "3.0.3";
  doc["info"] = {{"title", title},
                 {"version", version},
                 {"description",
                  "REST/JSON transcoding of chat.v1.ChatService and "
                  "chat.admin.v1.AdminService. Generated at start-up from the "
                  "proto's google.api.http annotations.\n\nCalls carry an API "
                  "key (`Authorization: Bearer <key>` or `x-api-key: <key>`); "
                  "without a valid one they answer 401 with `WWW-Authenticate: "
                  "Bearer`. A chat-server with no keys serves callers on its "
                  "own host without one. Answers carry OpenAI's rate-limit "
                  "headers (`x-ratelimit-*`) and, on 429, `Retry-After`."}};
  Json paths = Json::object();
  Json schemas = Json::object();
  schemas["Error"] = {
      {"type", "object"},
      {"required", Json::array({"code", "message", "details"})},
      {"properties",
       {{"code",
         {{"type", "integer"},
          {"format", "int32"},
          {"description", "The gRPC status code."}}},
        {"message", {{"type", "string"}}},
        {"details", {{"type", "array"}, {"items", {{"type", "object"}}}}}}}};

  for (const Route& route : routes.routes()) {
    const google::protobuf::MethodDescriptor* method = route.method;
    const Descriptor* input = method->input_type();
    const Descriptor* output = method->output_type();
    AddSchema(input, docs, &schemas);
    AddSchema(output, docs, &schemas);

    const bool template_route = FindTemplateRoute(route) != nullptr;
    const TemplateBehaviour behaviour = TemplateBehaviourOf(route);
    Json op;
    op["operationId"] = route.operation_id;
    op["summary"] =
        absl::StrCat(method->service()->name(), ".", method->name(),
                     template_route ? " (the Python template's route)" : "");
    op["tags"] = Json::array({method->service()->name()});
    std::string description = Describe(docs, method->full_name());
    if (behaviour.gather_all_pages) {
      absl::StrAppend(&description, description.empty() ? "" : "\n\n",
                      "On this route, a request with neither page_size nor "
                      "page_token answers every page at once, up to a limit "
                      "past which next_page_token says where to go on (the "
                      "template's lists predate paging).");
    }
    if (!description.empty()) op["description"] = description;
    Json parameters = Json::array();
    std::set<std::string> bound;
    for (const std::string& variable : route.path.VariableNames()) {
      bound.insert(variable);
      Json parameter = {{"name", variable},
                        {"in", "path"},
                        {"required", true},
                        {"schema", {{"type", "string"}}}};
      if (variable == "session_id") parameter["example"] = kExampleSession;
      parameters.push_back(parameter);
    }
    if (route.body != "*") {
      for (int i = 0; i < input->field_count(); ++i) {
        const FieldDescriptor* field = input->field(i);
        if (bound.count(field->name()) || field->name() == route.body ||
            field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          continue;
        }
        parameters.push_back({{"name", field->name()},
                              {"in", "query"},
                              {"required", false},
                              {"schema", FieldSchema(field)}});
      }
    }
    // A request with a request_id (the chat turns) is idempotent by the
    // standard header too; the gateway forwards it as `idempotency-key`
    // metadata (gateway/transcode/metadata.cc).
    const bool idempotent = input->FindFieldByName("request_id") != nullptr;
    if (idempotent) parameters.push_back(IdempotencyKeyParameter());
    if (!parameters.empty()) op["parameters"] = parameters;
    if (!route.body.empty()) {
      Json media = {{"schema", {{"$ref", Ref(input)}}}};
      Json example = RequestExample(*input);
      if (!example.is_null()) media["example"] = example;
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/json", media}}}};
    }
    Json ok;
    if (!method->server_streaming()) {
      ok = {{"description", "OK"},
            {"content",
             {{"application/json", {{"schema", {{"$ref", Ref(output)}}}}}}}};
    } else if (behaviour.raw_text_stream) {
      ok = {{"description",
             "The reply's text, streamed raw as it is produced (chunked). An "
             "error after the first byte is appended as \"\\nError: "
             "<message>\"."},
            {"content", {{"text/plain", {{"schema", {{"type", "string"}}}}}}}};
    } else {
      ok = {
          {"description",
           "Server-Sent Events: `event: delta` (data {\"text\": ...}) as "
           "the reply is produced, then `event: done` with the stored turn, "
           "or `event: error` with an Error. With `Accept: "
           "application/x-ndjson`, one {\"result\": event} line per event "
           "and a final {\"error\": Error} line on failure."},
          {"content",
           {{"text/event-stream", {{"schema", {{"type", "string"}}}}},
            {"application/x-ndjson",
             {{"schema",
               {{"type", "object"},
                {"properties",
                 {{"result", {{"$ref", Ref(output)}}},
                  {"error", {{"$ref", "#/components/schemas/Error"}}}}}}}}}}}};
    }
    op["responses"] = {{"200", ok}};
    if (NeedsKey(*method)) {
      op["security"] = Json::array(
          {{{"bearerAuth", Json::array()}}, {{"apiKeyHeader", Json::array()}}});
      op["responses"]["401"] = {
          {"description",
           "No API key, or one that is unknown, revoked or expired. Carries "
           "`WWW-Authenticate: Bearer`."},
          {"content",
           {{"application/json",
             {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
    }
    if (idempotent) {
      op["responses"]["409"] = {
          {"description",
           "The Idempotency-Key (or request_id) was already used for another "
           "message or session: FAILED_PRECONDITION, with a "
           "google.rpc.ErrorInfo detail, reason IDEMPOTENCY_KEY_REUSED."},
          {"content",
           {{"application/json",
             {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
    }
    op["responses"]["default"] = ErrorResponse();

    std::string verb = route.http_method;
    for (char& c : verb) c = static_cast<char>(std::tolower(c));
    paths[OpenApiPath(route.path)][verb] = op;
  }
  doc["paths"] = paths;
  doc["components"] = {{"schemas", schemas},
                       {"securitySchemes", SecuritySchemes()}};
  return doc.dump(2);
}

}  // namespace chat::gateway
