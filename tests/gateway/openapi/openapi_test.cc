// The OpenAPI document generated from chat.proto: its structure (the
// standard validator runs on it in openapi.test.mjs), and which routes are
// documented as the template's (gateway/compat's table, not "is an
// additional binding": a variant of the service made in the test adds one).

#include "gateway/openapi/openapi.h"

#include <string>
#include <utility>
#include <vector>

#include "chat/admin/v1/admin.pb.h"
#include "chat/v1/chat.pb.h"
#include "gmock/gmock.h"
#include "google/api/annotations.pb.h"
#include "google/api/http.pb.h"
#include "google/protobuf/descriptor.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/new_bindings_service.h"

namespace chat::gateway {
namespace {

const google::protobuf::ServiceDescriptor* ChatService() {
  return chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
      "ChatService");
}

nlohmann::json Document(
    const google::protobuf::ServiceDescriptor* service = ChatService()) {
  absl::StatusOr<RouteTable> routes = RouteTable::FromServices({service});
  EXPECT_TRUE(routes.ok());
  if (!routes.ok()) return nlohmann::json();
  return nlohmann::json::parse(
      GenerateOpenApi(*routes, "t", "1", &ChatProtoDocs()), nullptr, false);
}

// Both services, as chat-gateway serves them.
nlohmann::json ServedDocument() {
  absl::StatusOr<RouteTable> routes = RouteTable::FromServices(
      {ChatService(), chat::admin::v1::CreateKeyRequest::descriptor()
                          ->file()
                          ->FindServiceByName("AdminService")});
  EXPECT_TRUE(routes.ok());
  if (!routes.ok()) return nlohmann::json();
  return nlohmann::json::parse(
      GenerateOpenApi(*routes, "t", "1", &ChatProtoDocs()), nullptr, false);
}

TEST(OpenApiTest, AdminRoutesAreDocumentedWithTheirComments) {
  nlohmann::json doc = ServedDocument();
  ASSERT_TRUE(doc.is_object());
  EXPECT_TRUE(doc["paths"]["/v1/admin/keys"].contains("post"));
  EXPECT_TRUE(doc["paths"]["/v1/admin/keys"].contains("get"));
  EXPECT_TRUE(doc["paths"]["/v1/admin/keys/{key_id}:revoke"].contains("post"));
  EXPECT_TRUE(doc["paths"]["/v1/admin/usage"].contains("get"));
  EXPECT_THAT(
      doc["paths"]["/v1/admin/keys"]["post"]["description"].get<std::string>(),
      ::testing::StartsWith("Creates an API key"));
  EXPECT_TRUE(
      doc["components"]["schemas"].contains("chat.admin.v1.CreateKeyResponse"));
}

// Every operation but the status page names the key schemes and its 401;
// the status page stays open, as GET / does on chat-server.
TEST(OpenApiTest, OperationsThatNeedAKeySaySo) {
  nlohmann::json doc = ServedDocument();
  const nlohmann::json& schemes = doc["components"]["securitySchemes"];
  EXPECT_EQ(schemes["bearerAuth"]["type"], "http");
  EXPECT_EQ(schemes["bearerAuth"]["scheme"], "bearer");
  EXPECT_EQ(schemes["apiKeyHeader"]["type"], "apiKey");
  EXPECT_EQ(schemes["apiKeyHeader"]["in"], "header");
  EXPECT_EQ(schemes["apiKeyHeader"]["name"], "x-api-key");
  const nlohmann::json expected_security =
      nlohmann::json::parse(R"([{"bearerAuth":[]},{"apiKeyHeader":[]}])");
  int secured = 0;
  for (const auto& [path, item] : doc["paths"].items()) {
    for (const auto& [verb, op] : item.items()) {
      const bool open = op["operationId"].get<std::string>().find(
                            "GetStatus") != std::string::npos;
      if (open) {
        EXPECT_FALSE(op.contains("security")) << verb << " " << path;
        EXPECT_FALSE(op["responses"].contains("401")) << verb << " " << path;
      } else {
        EXPECT_EQ(op["security"], expected_security) << verb << " " << path;
        EXPECT_TRUE(op["responses"].contains("401")) << verb << " " << path;
        ++secured;
      }
    }
  }
  EXPECT_GT(secured, 10);
  EXPECT_FALSE(doc["paths"]["/"]["get"].contains("security"));
}

TEST(OpenApiTest, ProtoCommentsBecomeDescriptions) {
  nlohmann::json doc = Document();
  const nlohmann::json& request =
      doc["components"]["schemas"]["chat.v1.ChatRequest"];
  EXPECT_EQ(request["description"], "One user message for a session.");
  EXPECT_THAT(
      request["properties"]["message"]["description"].get<std::string>(),
      ::testing::StartsWith("The user's message. Required,"));
  EXPECT_THAT(
      doc["paths"]["/v1/chat"]["post"]["description"].get<std::string>(),
      ::testing::StartsWith("Sends one user message"));
}

TEST(ProtoDocsTest, UnreadableSetGivesNoComments) {
  EXPECT_EQ(
      ProtoDocs::FromDescriptorSet("\xff\xff").Comment("chat.v1.ChatRequest"),
      "");
  EXPECT_EQ(ChatProtoDocs().Comment("chat.v1.NoSuchThing"), "");
  EXPECT_EQ(ChatProtoDocs().Comment("chat.v1.ChatService.GetStats"),
            "Counts sessions, messages and tokens.");
}

TEST(OpenApiTest, HasEveryPathAndMethod) {
  nlohmann::json doc = Document();
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["openapi"], "3.0.3");
  EXPECT_TRUE(doc["paths"]["/"].contains("get"));
  EXPECT_TRUE(doc["paths"]["/chat"].contains("post"));
  EXPECT_TRUE(doc["paths"]["/history/{session_id}"].contains("get"));
  EXPECT_TRUE(doc["paths"]["/history/{session_id}"].contains("delete"));
  EXPECT_TRUE(doc["paths"]["/v1/sessions/{session_id}:reset"].contains("post"));
  EXPECT_TRUE(
      doc["paths"]["/v1/sessions/{session_id}/turns/{turn_id}:edit"].contains(
          "post"));
  EXPECT_TRUE(doc["paths"]["/v1/sessions/{session_id}"].contains("patch"));
  EXPECT_TRUE(doc["paths"]["/v1/sessions/{session_id}"].contains("delete"));
  EXPECT_TRUE(doc["paths"]["/v1/search"].contains("get"));
  EXPECT_TRUE(doc["paths"]["/v1/sessions/{session_id}/export"].contains("get"));
  EXPECT_TRUE(doc["paths"]["/v1/sessions:import"].contains("post"));
  EXPECT_TRUE(doc["paths"]["/v1/sessions/{session_id}/stream"].contains("get"));
  EXPECT_TRUE(
      doc["paths"]["/v1/sessions/{session_id}:cancel"].contains("post"));
  // 29 routes; two share /history/{session_id}, two
  // /v1/sessions/{session_id}.
  EXPECT_EQ(doc["paths"].size(), 27u);
}

TEST(OpenApiTest, ParametersAndBodies) {
  nlohmann::json doc = Document();
  const nlohmann::json& history = doc["paths"]["/history/{session_id}"]["get"];
  ASSERT_EQ(history["parameters"].size(), 1u);
  EXPECT_EQ(history["parameters"][0]["in"], "path");
  EXPECT_EQ(history["parameters"][0]["required"], true);
  EXPECT_FALSE(history.contains("requestBody"));
  const nlohmann::json& chat = doc["paths"]["/v1/chat"]["post"];
  EXPECT_EQ(
      chat["requestBody"]["content"]["application/json"]["schema"]["$ref"],
      "#/components/schemas/chat.v1.ChatRequest");
  EXPECT_EQ(chat["responses"]["default"]["content"]["application/json"]
                ["schema"]["$ref"],
            "#/components/schemas/Error");
  EXPECT_TRUE(
      doc["paths"]["/chat-stream"]["post"]["responses"]["200"]["content"]
          .contains("text/plain"));
}

// The chat turns take the standard Idempotency-Key header and say what a
// reused key gets; routes without a request_id take neither.
TEST(OpenApiTest, ChatRoutesTakeAnIdempotencyKeyHeader) {
  nlohmann::json doc = Document();
  for (const auto& [path, verb] :
       std::vector<std::pair<std::string, std::string>>{
           {"/v1/chat", "post"},
           {"/v1/chat:stream", "post"},
           {"/chat", "post"},
           {"/chat-stream", "post"}}) {
    const nlohmann::json& op = doc["paths"][path][verb];
    ASSERT_TRUE(op.contains("parameters")) << path;
    const nlohmann::json* header = nullptr;
    for (const nlohmann::json& p : op["parameters"]) {
      if (p["in"] == "header" && p["name"] == "Idempotency-Key") header = &p;
    }
    ASSERT_NE(header, nullptr) << path;
    EXPECT_EQ((*header)["required"], false);
    EXPECT_EQ((*header)["schema"]["type"], "string");
    EXPECT_EQ(
        op["responses"]["409"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error")
        << path;
  }
  const nlohmann::json& history = doc["paths"]["/history/{session_id}"]["get"];
  for (const nlohmann::json& p : history["parameters"]) {
    EXPECT_NE(p["name"], "Idempotency-Key");
  }
  EXPECT_FALSE(history["responses"].contains("409"));
}

// "Try it out" on /docs starts from these: bodies the server accepts as they
// stand (Swagger UI's own placeholders, "model": "string", it would reject),
// naming the session the session routes suggest.
TEST(OpenApiTest, ChatBodiesAndSessionsHaveExamplesThatWork) {
  nlohmann::json doc = ServedDocument();
  const nlohmann::json expected =
      nlohmann::json::parse(R"({"message":"Hello","session_id":"docs-demo"})");
  for (const char* path :
       {"/v1/chat", "/chat", "/v1/chat:stream", "/chat-stream"}) {
    EXPECT_EQ(doc["paths"][path]["post"]["requestBody"]["content"]
                 ["application/json"]["example"],
              expected)
        << path;
  }
  EXPECT_EQ(doc["paths"]["/v1/admin/keys"]["post"]["requestBody"]["content"]
               ["application/json"]["example"],
            nlohmann::json::parse(R"({"tenant":"acme","name":"docs"})"));
  const nlohmann::json& history =
      doc["paths"]["/v1/sessions/{session_id}/history"]["get"];
  EXPECT_EQ(history["parameters"][0]["example"], "docs-demo");
  // Only what has a working example gets one.
  EXPECT_FALSE(
      doc["paths"]["/v1/admin/keys/{key_id}:revoke"]["post"]["parameters"][0]
          .contains("example"));
}

TEST(OpenApiTest, SchemasFollowTheJsonMapping) {
  nlohmann::json schemas = Document()["components"]["schemas"];
  const nlohmann::json& stats =
      schemas["chat.v1.GetStatsResponse"]["properties"];
  EXPECT_EQ(stats["total_sessions"]["type"], "integer");
  EXPECT_EQ(stats["avg_messages_per_session"]["type"], "number");
  const nlohmann::json& history =
      schemas["chat.v1.GetHistoryResponse"]["properties"];
  EXPECT_EQ(history["messages"]["type"], "array");
  EXPECT_EQ(history["messages"]["items"]["$ref"],
            "#/components/schemas/chat.v1.Message");
  EXPECT_EQ(
      schemas["chat.v1.ChatRequest"]["properties"]["system_prompt"]["nullable"],
      true);
  EXPECT_TRUE(schemas.contains("chat.v1.Usage"));
}

TEST(OpenApiTest, TemplateRoutesAreMarkedAndDescribed) {
  nlohmann::json doc = Document();
  EXPECT_THAT(doc["paths"]["/sessions"]["get"]["summary"].get<std::string>(),
              ::testing::EndsWith("(the Python template's route)"));
  EXPECT_THAT(
      doc["paths"]["/sessions"]["get"]["description"].get<std::string>(),
      ::testing::HasSubstr("answers every page at once"));
  EXPECT_EQ(doc["paths"]["/v1/sessions"]["get"]["summary"],
            "ChatService.ListSessions");
  EXPECT_THAT(
      doc["paths"]["/v1/sessions"]["get"]["description"].get<std::string>(),
      ::testing::Not(::testing::HasSubstr("every page")));
  EXPECT_THAT(doc["paths"]["/stats"]["get"]["summary"].get<std::string>(),
              ::testing::EndsWith("(the Python template's route)"));
  EXPECT_TRUE(
      doc["paths"]["/v1/chat:stream"]["post"]["responses"]["200"]["content"]
          .contains("text/event-stream"));
}

TEST(OpenApiTest, NewAdditionalBindingIsDocumentedAsStandard) {
  ASSERT_NE(::chat::testing::ChatServiceWithNewBindings(), nullptr);
  nlohmann::json doc = Document(::chat::testing::ChatServiceWithNewBindings());
  const nlohmann::json& op = doc["paths"]["/v2/chat-stream"]["post"];
  EXPECT_EQ(op["summary"], "ChatService.ChatStream");
  EXPECT_TRUE(op["responses"]["200"]["content"].contains("text/event-stream"));
  EXPECT_FALSE(op["responses"]["200"]["content"].contains("text/plain"));
  // The template's own binding in the same document keeps its raw text.
  EXPECT_TRUE(
      doc["paths"]["/chat-stream"]["post"]["responses"]["200"]["content"]
          .contains("text/plain"));
}

}  // namespace
}  // namespace chat::gateway
