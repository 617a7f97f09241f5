#include "server/llm/anthropic_provider.h"

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

// A string member, or "" when absent or of another type.
std::string StringAt(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// An integer member, or `fallback`.
int64_t IntAt(const json& object, const char* key, int64_t fallback = 0) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>()
                                                       : fallback;
}

// Input tokens as billed: the uncached part plus cache reads and writes.
int64_t InputTokens(const json& usage) {
  return IntAt(usage, "input_tokens") +
         IntAt(usage, "cache_read_input_tokens") +
         IntAt(usage, "cache_creation_input_tokens");
}

absl::Status ErrorFrom(const json& payload) {
  std::string type = "api_error", message;
  if (auto e = payload.find("error"); e != payload.end() && e->is_object()) {
    if (std::string t = StringAt(*e, "type"); !t.empty()) type = t;
    message = StringAt(*e, "message");
  }
  return MapProviderHttpError("anthropic", HttpStatusForErrorType(type), type,
                              message);
}

int64_t InputTokens(const AnthropicUsage& usage) {
  return usage.input_tokens.value_or(0) +
         usage.cache_read_input_tokens.value_or(0) +
         usage.cache_creation_input_tokens.value_or(0);
}

class AnthropicDecoder final : public StreamDecoder {
 public:
  explicit AnthropicDecoder(bool fast_path) : fast_path_(fast_path) {}

  absl::Status OnEvent(const SseEvent& event,
                       std::vector<std::string>* deltas) override {
    // The events of an ordinary reply are read without a JSON document;
    // errors, unknown events and anything unusual take the full parse.
    if (AnthropicEventFields fields;
        fast_path_ && ScanAnthropicEvent(event.data, &fields)) {
      Apply(fields, deltas);
      return absl::OkStatus();
    }
    json payload = json::parse(event.data, nullptr, false);
    if (payload.is_discarded() || !payload.is_object()) {
      return absl::InternalError(absl::StrCat(
          "anthropic sent an event that is not a JSON object (event '",
          event.event, "')"));
    }
    // The payload's own type is authoritative; the SSE event name repeats it.
    std::string type = StringAt(payload, "type");
    if (type.empty()) type = event.event;
    if (type == "message_start") {
      auto message = payload.find("message");
      if (message != payload.end() && message->is_object()) {
        result_.model = StringAt(*message, "model");
        if (auto u = message->find("usage");
            u != message->end() && u->is_object()) {
          result_.input_tokens = InputTokens(*u);
          result_.output_tokens = IntAt(*u, "output_tokens");
        }
      }
    } else if (type == "content_block_start") {
      auto block = payload.find("content_block");
      if (block != payload.end() && block->is_object() &&
          StringAt(*block, "type") == "text") {
        deltas->push_back(StringAt(*block, "text"));
      }
    } else if (type == "content_block_delta") {
      auto delta = payload.find("delta");
      if (delta != payload.end() && delta->is_object() &&
          StringAt(*delta, "type") == "text_delta") {
        deltas->push_back(StringAt(*delta, "text"));
      }
      // Other deltas (thinking, tool input) are not part of the reply text.
    } else if (type == "message_delta") {
      if (auto d = payload.find("delta");
          d != payload.end() && d->is_object()) {
        if (std::string stop = StringAt(*d, "stop_reason"); !stop.empty()) {
          result_.stop_reason = stop;
        }
      }
      if (auto u = payload.find("usage");
          u != payload.end() && u->is_object()) {
        // Cumulative counts: the latest wins.
        result_.output_tokens =
            IntAt(*u, "output_tokens", result_.output_tokens);
        if (u->contains("input_tokens")) result_.input_tokens = InputTokens(*u);
      }
    } else if (type == "message_stop") {
      stopped_ = true;
    } else if (type == "error") {
      return ErrorFrom(payload);
    }
    // "ping", "content_block_stop" and event types added later are ignored,
    // as Anthropic's versioning policy asks of clients.
    return absl::OkStatus();
  }

  absl::Status OnWholeBody(absl::string_view body,
                           std::vector<std::string>* deltas) override {
    json message = json::parse(body, nullptr, false);
    if (message.is_discarded() || !message.is_object()) {
      return absl::InternalError("anthropic sent a response that is not JSON");
    }
    if (StringAt(message, "type") == "error") return ErrorFrom(message);
    if (auto content = message.find("content");
        content != message.end() && content->is_array()) {
      for (const json& block : *content) {
        if (block.is_object() && StringAt(block, "type") == "text") {
          deltas->push_back(StringAt(block, "text"));
        }
      }
    }
    result_.model = StringAt(message, "model");
    result_.stop_reason = StringAt(message, "stop_reason");
    if (auto u = message.find("usage"); u != message.end() && u->is_object()) {
      result_.input_tokens = InputTokens(*u);
      result_.output_tokens = IntAt(*u, "output_tokens");
    }
    stopped_ = true;
    return absl::OkStatus();
  }

  bool done() const override { return stopped_; }

  absl::StatusOr<CompletionResult> Finish() override {
    if (!stopped_) {
      return absl::UnavailableError(
          "anthropic's stream ended before message_stop; retry");
    }
    return result_;
  }

 private:
  // What OnEvent's full parse does, from the fields the scanner read.
  void Apply(AnthropicEventFields& f, std::vector<std::string>* deltas) {
    if (f.type == "message_start") {
      if (f.has_message) {
        result_.model = std::move(f.model);
        if (const std::optional<AnthropicUsage>& u = f.message_usage) {
          result_.input_tokens = InputTokens(*u);
          result_.output_tokens = u->output_tokens.value_or(0);
        }
      }
    } else if (f.type == "content_block_start") {
      if (f.has_block && f.block_type == "text") {
        deltas->push_back(f.block_text.has_value() ? std::move(*f.block_text)
                                                   : std::string());
      }
    } else if (f.type == "content_block_delta") {
      if (f.has_delta && f.delta_type == "text_delta") {
        deltas->push_back(f.delta_text.has_value() ? std::move(*f.delta_text)
                                                   : std::string());
      }
    } else if (f.type == "message_delta") {
      if (f.has_delta && !f.stop_reason.empty()) {
        result_.stop_reason = std::move(f.stop_reason);
      }
      if (const std::optional<AnthropicUsage>& u = f.usage) {
        result_.output_tokens =
            u->output_tokens.value_or(result_.output_tokens);
        if (u->input_tokens.has_value()) result_.input_tokens = InputTokens(*u);
      }
    } else if (f.type == "message_stop") {
      stopped_ = true;
    }
  }

  const bool fast_path_;
  CompletionResult result_;
  bool stopped_ = false;
};

}  // namespace

HttpRequest AnthropicProtocol::BuildRequest(
    const CompletionRequest& request) const {
  // Written in one pass, with the bytes nlohmann's dump of the same document
  // gave: members in its (sorted) key order, strings escaped its way.
  std::string body;
  size_t size = 128 + request.system_prompt.size() + request.model.size() +
                config_.default_model.size();
  for (const PromptMessage& m : request.messages) {
    size += 32 + m.role.size() + m.content.size();
  }
  body.reserve(size);
  absl::StrAppend(&body, "{\"max_tokens\":",
                  request.max_tokens.value_or(config_.default_max_tokens),
                  ",\"messages\":[");
  for (size_t i = 0; i < request.messages.size(); ++i) {
    const PromptMessage& m = request.messages[i];
    body.append(i == 0 ? "{\"content\":" : ",{\"content\":");
    AppendJsonString(m.content, &body);
    body.append(",\"role\":");
    AppendJsonString(m.role, &body);
    body.push_back('}');
  }
  body.push_back(']');
  if (!request.user.empty()) {
    body.append(",\"metadata\":{\"user_id\":");
    AppendJsonString(request.user, &body);
    body.push_back('}');
  }
  body.append(",\"model\":");
  AppendJsonString(
      request.model.empty() ? config_.default_model : request.model, &body);
  if (!request.stop.empty()) {
    body.append(",\"stop_sequences\":[");
    for (size_t i = 0; i < request.stop.size(); ++i) {
      if (i > 0) body.push_back(',');
      AppendJsonString(request.stop[i], &body);
    }
    body.push_back(']');
  }
  body.append(request.stream ? ",\"stream\":true" : ",\"stream\":false");
  if (!request.system_prompt.empty()) {
    body.append(",\"system\":");
    AppendJsonString(request.system_prompt, &body);
  }
  if (request.temperature.has_value()) {
    body.append(",\"temperature\":");
    AppendJsonDouble(*request.temperature, &body);
  }
  body.push_back('}');

  HttpRequest http;
  http.url =
      absl::StrCat(absl::StripSuffix(config_.base_url, "/"), "/v1/messages");
  http.headers = {absl::StrCat("x-api-key: ", config_.api_key),
                  "anthropic-version: 2023-06-01",
                  "content-type: application/json",
                  request.stream ? "accept: text/event-stream"
                                 : "accept: application/json"};
  http.body = std::move(body);
  return http;
}

std::unique_ptr<StreamDecoder> NewAnthropicDecoder(bool fast_path) {
  return std::make_unique<AnthropicDecoder>(fast_path);
}

std::unique_ptr<StreamDecoder> AnthropicProtocol::NewDecoder() const {
  return NewAnthropicDecoder(/*fast_path=*/true);
}

}  // namespace chat::llm
