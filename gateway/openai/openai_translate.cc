#include "gateway/openai/openai_translate.h"

#include <nlohmann/json.hpp>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace chat::gateway {
namespace {

using nlohmann::json;

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

// A message's content: a string, or an array of parts of which only "text"
// ones are taken (joined); null for an assistant message is "".
absl::StatusOr<std::string> ContentOf(const json& message, size_t index) {
  auto it = message.find("content");
  if (it == message.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (!it->is_array()) {
    return Invalid(absl::StrCat("messages[", index,
                                "].content must be a string or an array"));
  }
  std::string text;
  for (const json& part : *it) {
    if (!part.is_object() || part.value("type", "") != "text" ||
        !part.contains("text") || !part["text"].is_string()) {
      return Invalid(absl::StrCat("messages[", index,
                                  "].content: only text parts are supported"));
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

json ChunkBase(absl::string_view id, int64_t created, absl::string_view model) {
  return json{{"id", std::string(id)},
              {"object", "chat.completion.chunk"},
              {"created", created},
              {"model", std::string(model)},
              {"system_fingerprint", nullptr}};
}

std::string Data(const json& chunk) {
  return absl::StrCat(
      "data: ", chunk.dump(-1, ' ', false, json::error_handler_t::replace),
      "\n\n");
}

json UsageJson(const chat::v1::Usage& usage) {
  return json{{"prompt_tokens", usage.input_tokens()},
              {"completion_tokens", usage.output_tokens()},
              {"total_tokens", usage.input_tokens() + usage.output_tokens()}};
}

json Choice(json delta, const json& finish_reason) {
  return json{{"index", 0},
              {"delta", std::move(delta)},
              {"logprobs", nullptr},
              {"finish_reason", finish_reason}};
}

}  // namespace

absl::StatusOr<ChatCompletionCall> ParseChatCompletion(absl::string_view body) {
  json doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Invalid("the body must be a JSON object");
  }
  ChatCompletionCall call;
  chat::v1::CompleteRequest& request = call.request;

  auto model = doc.find("model");
  if (model == doc.end() || !model->is_string() ||
      model->get<std::string>().empty()) {
    return Invalid("model is required");
  }
  call.model = model->get<std::string>();
  request.set_model(call.model);

  auto messages = doc.find("messages");
  if (messages == doc.end() || !messages->is_array() || messages->empty()) {
    return Invalid("messages is required and must be a non-empty array");
  }
  std::string system;
  bool has_system = false;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return Invalid(absl::StrCat("messages[", i, "].role is required"));
    }
    const std::string role = m["role"].get<std::string>();
    absl::StatusOr<std::string> content = ContentOf(m, i);
    if (!content.ok()) return content.status();
    if (role == "system" || role == "developer") {
      if (has_system) system += "\n\n";
      system += *content;
      has_system = true;
    } else if (role == "user" || role == "assistant") {
      if (m.contains("tool_calls") && !m["tool_calls"].is_null()) {
        return Invalid(
            absl::StrCat("messages[", i, "]: tool calls are not supported"));
      }
      chat::v1::CompletionMessage* out = request.add_messages();
      out->set_role(role);
      out->set_content(*std::move(content));
    } else {
      return Invalid(absl::StrCat("messages[", i, "].role '", role,
                                  "' is not supported (system, developer, "
                                  "user, assistant)"));
    }
  }
  if (request.messages_size() == 0) {
    return Invalid("messages must hold a user or assistant message");
  }
  if (has_system) request.set_system_prompt(system);

  // max_completion_tokens replaced max_tokens; either is honoured, the newer
  // first.
  for (const char* name : {"max_completion_tokens", "max_tokens"}) {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null()) continue;
    if (!it->is_number_integer()) {
      return Invalid(absl::StrCat(name, " must be an integer"));
    }
    const int64_t value = it->get<int64_t>();
    if (value < 1 || value > 1000000) {
      return Invalid(absl::StrCat(name, " must be at least 1"));
    }
    request.set_max_tokens(static_cast<int32_t>(value));
    break;
  }
  if (auto it = doc.find("temperature"); it != doc.end() && !it->is_null()) {
    if (!it->is_number()) return Invalid("temperature must be a number");
    request.set_temperature(it->get<double>());
  }
  if (auto it = doc.find("stop"); it != doc.end() && !it->is_null()) {
    if (it->is_string()) {
      request.add_stop(it->get<std::string>());
    } else if (it->is_array()) {
      for (const json& s : *it) {
        if (!s.is_string()) return Invalid("stop must hold strings");
        request.add_stop(s.get<std::string>());
      }
    } else {
      return Invalid("stop must be a string or an array of strings");
    }
  }
  if (auto it = doc.find("user"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) return Invalid("user must be a string");
    request.set_user(it->get<std::string>());
  }
  if (auto it = doc.find("n"); it != doc.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() != 1) {
      return Invalid("n must be 1: one choice per request");
    }
  }
  for (const char* name : {"tools", "functions"}) {
    if (auto it = doc.find(name);
        it != doc.end() && !it->is_null() && !(it->is_array() && it->empty())) {
      return Invalid(absl::StrCat(name, " are not supported"));
    }
  }
  if (auto it = doc.find("stream"); it != doc.end() && !it->is_null()) {
    if (!it->is_boolean()) return Invalid("stream must be a boolean");
    call.stream = it->get<bool>();
  }
  if (auto it = doc.find("stream_options");
      it != doc.end() && it->is_object()) {
    call.include_usage = it->value("include_usage", false);
  }
  return call;
}

std::string FinishReasonOf(absl::string_view stop_reason) {
  if (stop_reason == "max_tokens" || stop_reason == "length") return "length";
  if (stop_reason == "tool_use" || stop_reason == "tool_calls") {
    return "tool_calls";
  }
  if (stop_reason == "content_filter" || stop_reason == "refusal") {
    return "content_filter";
  }
  return "stop";
}

std::string ChatCompletionJson(const chat::v1::CompleteResponse& response,
                               absl::string_view id, int64_t created) {
  json message{{"role", "assistant"},
               {"content", response.response()},
               {"refusal", nullptr}};
  json answer{
      {"id", std::string(id)},
      {"object", "chat.completion"},
      {"created", created},
      {"model", response.model()},
      {"choices", json::array({json{
                      {"index", 0},
                      {"message", std::move(message)},
                      {"logprobs", nullptr},
                      {"finish_reason", FinishReasonOf(response.stop_reason())},
                  }})},
      {"usage", UsageJson(response.usage())},
      {"system_fingerprint", nullptr},
  };
  return answer.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string FirstChunk(absl::string_view id, int64_t created,
                       absl::string_view model, bool with_usage_null) {
  json chunk = ChunkBase(id, created, model);
  chunk["choices"] = json::array(
      {Choice(json{{"role", "assistant"}, {"content", ""}}, nullptr)});
  if (with_usage_null) chunk["usage"] = nullptr;
  return Data(chunk);
}

std::string DeltaChunk(absl::string_view id, int64_t created,
                       absl::string_view model, absl::string_view text,
                       bool with_usage_null) {
  json chunk = ChunkBase(id, created, model);
  chunk["choices"] =
      json::array({Choice(json{{"content", std::string(text)}}, nullptr)});
  if (with_usage_null) chunk["usage"] = nullptr;
  return Data(chunk);
}

std::string FinishChunk(absl::string_view id, int64_t created,
                        absl::string_view model, absl::string_view stop_reason,
                        bool with_usage_null) {
  json chunk = ChunkBase(id, created, model);
  chunk["choices"] =
      json::array({Choice(json::object(), FinishReasonOf(stop_reason))});
  if (with_usage_null) chunk["usage"] = nullptr;
  return Data(chunk);
}

std::string UsageChunk(absl::string_view id, int64_t created,
                       absl::string_view model, const chat::v1::Usage& usage) {
  json chunk = ChunkBase(id, created, model);
  chunk["choices"] = json::array();
  chunk["usage"] = UsageJson(usage);
  return Data(chunk);
}

std::string DoneEvent() { return "data: [DONE]\n\n"; }

std::string ModelJson(absl::string_view id) {
  return json{{"id", std::string(id)},
              {"object", "model"},
              {"created", 0},
              {"owned_by", "chatd"}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ModelListJson(const chat::v1::ListModelsResponse& models) {
  json data = json::array();
  for (const std::string& id : models.models()) {
    data.push_back(json{{"id", id},
                        {"object", "model"},
                        {"created", 0},
                        {"owned_by", "chatd"}});
  }
  return json{{"object", "list"}, {"data", std::move(data)}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

OpenAiError ToOpenAiError(const HttpError& error) {
  OpenAiError out;
  out.http_status = error.http_status;
  out.message = error.message;
  switch (error.http_status) {
    case 400:
      out.type = "invalid_request_error";
      break;
    case 401:
      out.type = "invalid_request_error";
      out.code = "invalid_api_key";
      break;
    case 403:
      out.type = "invalid_request_error";
      out.code = "permission_denied";
      break;
    case 404:
      out.type = "invalid_request_error";
      out.code = "not_found";
      break;
    case 409:
      out.type = "invalid_request_error";
      out.code = "conflict";
      break;
    case 429:
      // A spent budget will not come back by waiting a minute: OpenAI's
      // insufficient_quota, which its SDKs do not retry.
      if (absl::StrContains(error.message, "budget")) {
        out.type = "insufficient_quota";
        out.code = "insufficient_quota";
      } else {
        out.type = "requests";
        out.code = "rate_limit_exceeded";
      }
      break;
    default:
      out.type =
          error.http_status >= 500 ? "server_error" : "invalid_request_error";
      break;
  }
  return out;
}

std::string OpenAiErrorBody(const OpenAiError& error) {
  auto or_null = [](const std::string& s) -> json {
    return s.empty() ? json(nullptr) : json(s);
  };
  return json{{"error",
               {{"message", error.message},
                {"type", error.type},
                {"param", or_null(error.param)},
                {"code", or_null(error.code)}}}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string NewOpenAiId(absl::string_view prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  for (int i = 0; i < 24; ++i) id.push_back(kHex[rng() & 0xF]);
  return id;
}

}  // namespace chat::gateway
