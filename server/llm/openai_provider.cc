#include "server/llm/openai_provider.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/llm/json_scan.h"
#include "server/llm/provider_error.h"
#include "server/llm/request_json.h"

namespace chat::llm {
namespace {

using nlohmann::json;

std::string StringAt(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t IntAt(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

std::string NormalizeFinishReason(const std::string& reason) {
  if (reason == "stop") return "end_turn";
  if (reason == "length") return "max_tokens";
  return reason;
}

// {"error": {...}} inside a 200 stream. Its `code` may be an HTTP status
// (OpenRouter), a string (OpenAI) or absent.
absl::Status ErrorFrom(const json& payload) {
  const json& error = payload["error"];
  std::string type, message;
  int status = 0;
  if (error.is_object()) {
    type = StringAt(error, "code");
    if (type.empty()) type = StringAt(error, "type");
    message = StringAt(error, "message");
    if (auto c = error.find("code");
        c != error.end() && c->is_number_integer()) {
      status = c->get<int>();
    }
  } else if (error.is_string()) {
    message = error.get<std::string>();
  }
  if (status < 400 || status > 599) status = HttpStatusForErrorType(type);
  return MapProviderHttpError("openai", status, type, message);
}

class OpenAiDecoder final : public StreamDecoder {
 public:
  explicit OpenAiDecoder(bool fast_path) : fast_path_(fast_path) {}

  absl::Status OnEvent(const SseEvent& event,
                       std::vector<std::string>* deltas) override {
    if (event.data == "[DONE]") {
      done_ = true;
      return absl::OkStatus();
    }
    // Nearly every chunk is a content delta: read those without a JSON
    // document.
    if (OpenAiChunkFields fields;
        fast_path_ && ScanOpenAiChunk(event.data, &fields)) {
      if (!fields.model.empty()) result_.model = std::move(fields.model);
      if (fields.has_delta) deltas->push_back(std::move(fields.content));
      if (!fields.finish_reason.empty()) {
        result_.stop_reason = NormalizeFinishReason(fields.finish_reason);
      }
      return absl::OkStatus();
    }
    json chunk = json::parse(event.data, nullptr, false);
    if (chunk.is_discarded() || !chunk.is_object()) {
      return absl::InternalError(
          "openai sent an event that is not a JSON object");
    }
    if (chunk.contains("error") && !chunk["error"].is_null())
      return ErrorFrom(chunk);
    if (std::string model = StringAt(chunk, "model"); !model.empty()) {
      result_.model = model;
    }
    if (auto choices = chunk.find("choices");
        choices != chunk.end() && choices->is_array() && !choices->empty()) {
      const json& choice = (*choices)[0];
      if (choice.is_object()) {
        if (auto delta = choice.find("delta");
            delta != choice.end() && delta->is_object()) {
          deltas->push_back(StringAt(*delta, "content"));
        }
        if (std::string reason = StringAt(choice, "finish_reason");
            !reason.empty()) {
          result_.stop_reason = NormalizeFinishReason(reason);
        }
      }
    }
    if (auto usage = chunk.find("usage");
        usage != chunk.end() && usage->is_object()) {
      result_.input_tokens = IntAt(*usage, "prompt_tokens");
      result_.output_tokens = IntAt(*usage, "completion_tokens");
    }
    return absl::OkStatus();
  }

  absl::Status OnWholeBody(absl::string_view body,
                           std::vector<std::string>* deltas) override {
    json completion = json::parse(body, nullptr, false);
    if (completion.is_discarded() || !completion.is_object()) {
      return absl::InternalError("openai sent a response that is not JSON");
    }
    if (completion.contains("error") && !completion["error"].is_null()) {
      return ErrorFrom(completion);
    }
    result_.model = StringAt(completion, "model");
    if (auto choices = completion.find("choices");
        choices != completion.end() && choices->is_array() &&
        !choices->empty() && (*choices)[0].is_object()) {
      const json& choice = (*choices)[0];
      if (auto m = choice.find("message");
          m != choice.end() && m->is_object()) {
        deltas->push_back(StringAt(*m, "content"));
      }
      result_.stop_reason =
          NormalizeFinishReason(StringAt(choice, "finish_reason"));
    }
    if (auto usage = completion.find("usage");
        usage != completion.end() && usage->is_object()) {
      result_.input_tokens = IntAt(*usage, "prompt_tokens");
      result_.output_tokens = IntAt(*usage, "completion_tokens");
    }
    done_ = true;
    return absl::OkStatus();
  }

  bool done() const override { return done_; }

  absl::StatusOr<CompletionResult> Finish() override {
    // Some servers close the stream after the finish_reason chunk without
    // [DONE]; the reply is whole all the same.
    if (!done_ && result_.stop_reason.empty()) {
      return absl::UnavailableError(
          "openai's stream ended before [DONE]; retry");
    }
    return result_;
  }

 private:
  const bool fast_path_;
  CompletionResult result_;
  bool done_ = false;
};

}  // namespace

HttpRequest OpenAiProtocol::BuildRequest(
    const CompletionRequest& request) const {
  // OpenAI's own API has deprecated max_tokens (its reasoning models refuse
  // it); compatible servers (Groq, Ollama, vLLM, llama.cpp) all read it.
  const char* limit_field =
      absl::StrContains(config_.base_url, "api.openai.com")
          ? "{\"max_completion_tokens\":"
          : "{\"max_tokens\":";
  // Written in one pass, with the bytes nlohmann's dump of the same document
  // gave: members in its (sorted) key order, strings escaped its way.
  std::string body;
  size_t size = 160 + request.system_prompt.size() + request.model.size() +
                config_.default_model.size();
  for (const PromptMessage& m : request.messages) {
    size += 32 + m.role.size() + m.content.size();
  }
  body.reserve(size);
  absl::StrAppend(&body, limit_field,
                  request.max_tokens.value_or(config_.default_max_tokens),
                  ",\"messages\":[");
  bool first = true;
  auto append_message = [&](absl::string_view role, absl::string_view content) {
    body.append(first ? "{\"content\":" : ",{\"content\":");
    first = false;
    AppendJsonString(content, &body);
    body.append(",\"role\":");
    AppendJsonString(role, &body);
    body.push_back('}');
  };
  if (!request.system_prompt.empty()) {
    append_message("system", request.system_prompt);
  }
  for (const PromptMessage& m : request.messages) {
    append_message(m.role, m.content);
  }
  body.append("],\"model\":");
  AppendJsonString(
      request.model.empty() ? config_.default_model : request.model, &body);
  if (!request.stop.empty()) {
    body.append(",\"stop\":[");
    for (size_t i = 0; i < request.stop.size(); ++i) {
      if (i > 0) body.push_back(',');
      AppendJsonString(request.stop[i], &body);
    }
    body.push_back(']');
  }
  // A whole (non-streamed) answer always carries its usage.
  body.append(
      request.stream
          ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"
          : ",\"stream\":false");
  if (request.temperature.has_value()) {
    body.append(",\"temperature\":");
    AppendJsonDouble(*request.temperature, &body);
  }
  if (!request.user.empty()) {
    body.append(",\"user\":");
    AppendJsonString(request.user, &body);
  }
  body.push_back('}');

  HttpRequest http;
  http.url = absl::StrCat(absl::StripSuffix(config_.base_url, "/"),
                          "/chat/completions");
  http.headers = {"content-type: application/json",
                  request.stream ? "accept: text/event-stream"
                                 : "accept: application/json"};
  if (!config_.api_key.empty()) {
    http.headers.push_back(
        absl::StrCat("authorization: Bearer ", config_.api_key));
  }
  http.body = std::move(body);
  return http;
}

std::unique_ptr<StreamDecoder> NewOpenAiDecoder(bool fast_path) {
  return std::make_unique<OpenAiDecoder>(fast_path);
}

std::unique_ptr<StreamDecoder> OpenAiProtocol::NewDecoder() const {
  return NewOpenAiDecoder(/*fast_path=*/true);
}

}  // namespace chat::llm
