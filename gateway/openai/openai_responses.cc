#include "gateway/openai/openai_responses.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gateway/openai/openai_translate.h"

namespace chat::gateway {
namespace {

using nlohmann::json;

constexpr absl::string_view kConvPrefix = "conv_";

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// "<prefix><digits>_<session id>" -> the number and the session id.
std::optional<std::pair<int, std::string>> SplitNumbered(
    absl::string_view id, absl::string_view prefix) {
  if (!absl::ConsumePrefix(&id, prefix)) return std::nullopt;
  const size_t underscore = id.find('_');
  if (underscore == absl::string_view::npos || underscore == 0 ||
      underscore + 1 >= id.size()) {
    return std::nullopt;
  }
  absl::string_view digits = id.substr(0, underscore);
  if (!std::all_of(digits.begin(), digits.end(), absl::ascii_isdigit)) {
    return std::nullopt;
  }
  int n = 0;
  if (!absl::SimpleAtoi(digits, &n)) return std::nullopt;
  return std::make_pair(n, std::string(id.substr(underscore + 1)));
}

// A message's text: a string, or the text of its parts (input_text,
// output_text, text).
absl::StatusOr<std::string> TextOf(const json& content, size_t index) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    return Invalid(absl::StrCat("input[", index,
                                "].content must be a string or an array"));
  }
  std::string text;
  for (const json& part : content) {
    const std::string type =
        part.is_object() ? part.value("type", "") : std::string();
    if ((type != "input_text" && type != "output_text" && type != "text") ||
        !part.contains("text") || !part["text"].is_string()) {
      return Invalid(absl::StrCat("input[", index,
                                  "].content: only text parts are supported"));
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

json UsageJson(const chat::v1::Usage& usage) {
  return json{{"input_tokens", usage.input_tokens()},
              {"input_tokens_details", {{"cached_tokens", 0}}},
              {"output_tokens", usage.output_tokens()},
              {"output_tokens_details", {{"reasoning_tokens", 0}}},
              {"total_tokens", usage.input_tokens() + usage.output_tokens()}};
}

json OrNull(const std::optional<std::string>& s) {
  return s.has_value() ? json(*s) : json(nullptr);
}

json OutputTextPart(absl::string_view text) {
  return json{{"type", "output_text"},
              {"text", std::string(text)},
              {"annotations", json::array()},
              {"logprobs", json::array()}};
}

json MessageItem(absl::string_view id, absl::string_view status, json content) {
  return json{{"id", std::string(id)},
              {"type", "message"},
              {"status", std::string(status)},
              {"role", "assistant"},
              {"content", std::move(content)}};
}

json ResponseObject(const ResponseView& r) {
  json output = json::array();
  const bool running = r.status == "in_progress";
  if (!running) {
    output.push_back(MessageItem(r.item_id, "completed",
                                 json::array({OutputTextPart(r.text)})));
  }
  json incomplete = nullptr;
  if (r.status == "incomplete") {
    incomplete = json{{"reason", "max_output_tokens"}};
  }
  return json{
      {"id", r.id},
      {"object", "response"},
      {"created_at", r.created_at},
      {"status", r.status},
      {"background", false},
      {"error", nullptr},
      {"incomplete_details", std::move(incomplete)},
      {"instructions", OrNull(r.instructions)},
      {"max_output_tokens", r.max_output_tokens.has_value()
                                ? json(*r.max_output_tokens)
                                : json(nullptr)},
      {"model", r.model},
      {"output", std::move(output)},
      {"parallel_tool_calls", false},
      {"previous_response_id", OrNull(r.previous_response_id)},
      {"conversation", r.conversation.has_value()
                           ? json{{"id", *r.conversation}}
                           : json(nullptr)},
      {"store", r.store},
      {"temperature",
       r.temperature.has_value() ? json(*r.temperature) : json(nullptr)},
      {"text", {{"format", {{"type", "text"}}}}},
      {"tool_choice", "auto"},
      {"tools", json::array()},
      {"top_p", nullptr},
      {"truncation", "disabled"},
      {"usage", r.usage.has_value() ? UsageJson(*r.usage) : json(nullptr)},
      {"metadata", json::object()},
  };
}

std::string Event(absl::string_view type, json payload, int* sequence) {
  payload["type"] = std::string(type);
  payload["sequence_number"] = (*sequence)++;
  return absl::StrCat("event: ", type, "\ndata: ", Dump(payload), "\n\n");
}

}  // namespace

std::string NewConversationId() {
  // 40 hex digits, as the conversation ids chatd made before (which carried
  // a fingerprint of the key that made them): a conversation is a session,
  // visible to every key of the tenant, so the id names no key.
  return absl::StrCat(kConvPrefix, NewOpenAiId(""),
                      NewOpenAiId("").substr(0, 16));
}

std::string StoredResponseId(absl::string_view session_id, int turn) {
  return absl::StrCat("resp_", turn, "_", session_id);
}

std::optional<StoredResponseRef> ParseStoredResponseId(absl::string_view id) {
  auto split = SplitNumbered(id, "resp_");
  if (!split.has_value() || split->first < 1) return std::nullopt;
  return StoredResponseRef{std::move(split->second), split->first};
}

std::optional<ExportedTurn> FindExportedTurn(
    const chat::v1::SessionExport& session, int turn_id) {
  // Messages are in turn order, user before assistant: the parents of a
  // turn come before it.
  absl::flat_hash_map<int, int> depth_of;
  ExportedTurn found;
  for (const chat::v1::ExportedMessage& m : session.messages()) {
    if (m.role() == "user") {
      auto parent = depth_of.find(m.parent_turn_id());
      depth_of[m.turn_id()] =
          (parent == depth_of.end() ? 0 : parent->second) + 1;
    }
    if (m.turn_id() != turn_id) continue;
    (m.role() == "user" ? found.user : found.answer) = &m;
  }
  if (found.user == nullptr || found.answer == nullptr) return std::nullopt;
  found.depth = depth_of[turn_id];
  return found;
}

std::vector<chat::v1::CompletionMessage> BranchMessages(
    const chat::v1::SessionExport& session, int turn_id) {
  absl::flat_hash_map<int, std::pair<const chat::v1::ExportedMessage*,
                                     const chat::v1::ExportedMessage*>>
      turns;
  for (const chat::v1::ExportedMessage& m : session.messages()) {
    auto& turn = turns[m.turn_id()];
    (m.role() == "user" ? turn.first : turn.second) = &m;
  }
  std::vector<const chat::v1::ExportedMessage*> newest_first;
  // Parents have lower ids, so the walk ends; the bound guards a malformed
  // export all the same.
  for (int id = turn_id; id > 0 && newest_first.size() < 2 * turns.size();) {
    auto it = turns.find(id);
    if (it == turns.end() || it->second.first == nullptr) break;
    if (it->second.second != nullptr) newest_first.push_back(it->second.second);
    newest_first.push_back(it->second.first);
    id = it->second.first->parent_turn_id();
  }
  std::vector<chat::v1::CompletionMessage> messages;
  messages.reserve(newest_first.size());
  for (auto m = newest_first.rbegin(); m != newest_first.rend(); ++m) {
    chat::v1::CompletionMessage& out = messages.emplace_back();
    out.set_role((*m)->role());
    out.set_content((*m)->content());
  }
  return messages;
}

int LastTurnId(const chat::v1::SessionExport& session) {
  int last = 0;
  for (const chat::v1::ExportedMessage& m : session.messages()) {
    last = std::max(last, m.turn_id());
  }
  return last;
}

std::string ItemId(absl::string_view session_id, int index) {
  return absl::StrCat("msg_", index, "_", session_id);
}

std::optional<int> ItemIndex(absl::string_view item_id,
                             absl::string_view session_id) {
  auto split = SplitNumbered(item_id, "msg_");
  if (!split.has_value() || split->second != session_id) return std::nullopt;
  return split->first;
}

absl::StatusOr<ResponsesCall> ParseResponsesCall(absl::string_view body) {
  json doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Invalid("the body must be a JSON object");
  }
  ResponsesCall call;
  auto string_field = [&](const char* name,
                          std::optional<std::string>* out) -> absl::Status {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_string())
      return Invalid(absl::StrCat(name, " must be a string"));
    *out = it->get<std::string>();
    return absl::OkStatus();
  };
  if (absl::Status s = string_field("model", &call.model); !s.ok()) return s;
  std::optional<std::string> instructions;
  if (absl::Status s = string_field("instructions", &instructions); !s.ok()) {
    return s;
  }
  if (absl::Status s =
          string_field("previous_response_id", &call.previous_response_id);
      !s.ok()) {
    return s;
  }
  if (auto it = doc.find("conversation"); it != doc.end() && !it->is_null()) {
    if (it->is_string()) {
      call.conversation = it->get<std::string>();
    } else if (it->is_object() && it->contains("id") &&
               (*it)["id"].is_string()) {
      call.conversation = (*it)["id"].get<std::string>();
    } else {
      return Invalid("conversation must be an id or an object with an id");
    }
  }
  if (call.conversation.has_value() && call.previous_response_id.has_value()) {
    return Invalid(
        "conversation and previous_response_id cannot be used together");
  }

  std::string system = instructions.value_or("");
  bool has_system = instructions.has_value();
  auto input = doc.find("input");
  if (input == doc.end() || input->is_null()) {
    return Invalid("input is required");
  }
  if (input->is_string()) {
    chat::v1::CompletionMessage* m = &call.messages.emplace_back();
    m->set_role("user");
    m->set_content(input->get<std::string>());
  } else if (input->is_array()) {
    for (size_t i = 0; i < input->size(); ++i) {
      const json& item = (*input)[i];
      if (!item.is_object()) {
        return Invalid(absl::StrCat("input[", i, "] must be an object"));
      }
      const std::string type = item.value("type", "message");
      if (type != "message") {
        return Invalid(absl::StrCat("input[", i, "].type '", type,
                                    "' is not supported (message)"));
      }
      if (!item.contains("role") || !item["role"].is_string()) {
        return Invalid(absl::StrCat("input[", i, "].role is required"));
      }
      const std::string role = item["role"].get<std::string>();
      absl::StatusOr<std::string> text =
          TextOf(item.contains("content") ? item["content"] : json(""), i);
      if (!text.ok()) return text.status();
      if (role == "system" || role == "developer") {
        if (has_system) system += "\n\n";
        system += *text;
        has_system = true;
      } else if (role == "user" || role == "assistant") {
        chat::v1::CompletionMessage* m = &call.messages.emplace_back();
        m->set_role(role);
        m->set_content(*std::move(text));
      } else {
        return Invalid(absl::StrCat("input[", i, "].role '", role,
                                    "' is not supported (system, developer, "
                                    "user, assistant)"));
      }
    }
  } else {
    return Invalid("input must be a string or an array of messages");
  }
  if (call.messages.empty()) {
    return Invalid("input must hold a user or assistant message");
  }
  if (has_system) call.system_prompt = std::move(system);

  if (auto it = doc.find("store"); it != doc.end() && !it->is_null()) {
    if (!it->is_boolean()) return Invalid("store must be a boolean");
    call.store = it->get<bool>();
  }
  if (auto it = doc.find("stream"); it != doc.end() && !it->is_null()) {
    if (!it->is_boolean()) return Invalid("stream must be a boolean");
    call.stream = it->get<bool>();
  }
  if (auto it = doc.find("max_output_tokens");
      it != doc.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 ||
        it->get<int64_t>() > 1000000) {
      return Invalid("max_output_tokens must be a positive integer");
    }
    call.max_output_tokens = static_cast<int32_t>(it->get<int64_t>());
  }
  if (auto it = doc.find("temperature"); it != doc.end() && !it->is_null()) {
    if (!it->is_number()) return Invalid("temperature must be a number");
    call.temperature = it->get<double>();
  }
  // `user` is deprecated in favour of safety_identifier; either names the
  // end user for the provider's abuse monitoring.
  for (const char* name : {"safety_identifier", "user"}) {
    auto it = doc.find(name);
    if (it == doc.end() || it->is_null()) continue;
    if (!it->is_string())
      return Invalid(absl::StrCat(name, " must be a string"));
    call.user = it->get<std::string>();
    break;
  }
  if (auto it = doc.find("tools");
      it != doc.end() && !it->is_null() && !(it->is_array() && it->empty())) {
    return Invalid("tools are not supported");
  }
  if (auto it = doc.find("background");
      it != doc.end() && it->is_boolean() && it->get<bool>()) {
    return Invalid("background responses are not supported");
  }
  return call;
}

std::string ResponseJson(const ResponseView& response) {
  return Dump(ResponseObject(response));
}

std::string ResponseStartEvents(const ResponseView& in_progress,
                                int* sequence) {
  json response = ResponseObject(in_progress);
  std::string out =
      Event("response.created", json{{"response", response}}, sequence);
  out += Event("response.in_progress", json{{"response", response}}, sequence);
  out += Event("response.output_item.added",
               json{{"output_index", 0},
                    {"item", MessageItem(in_progress.item_id, "in_progress",
                                         json::array())}},
               sequence);
  out += Event("response.content_part.added",
               json{{"item_id", in_progress.item_id},
                    {"output_index", 0},
                    {"content_index", 0},
                    {"part", OutputTextPart("")}},
               sequence);
  return out;
}

std::string OutputTextDeltaEvent(absl::string_view item_id,
                                 absl::string_view delta, int* sequence) {
  return Event("response.output_text.delta",
               json{{"item_id", std::string(item_id)},
                    {"output_index", 0},
                    {"content_index", 0},
                    {"delta", std::string(delta)},
                    {"logprobs", json::array()}},
               sequence);
}

std::string ResponseEndEvents(const ResponseView& done, int* sequence) {
  std::string out = Event("response.output_text.done",
                          json{{"item_id", done.item_id},
                               {"output_index", 0},
                               {"content_index", 0},
                               {"text", done.text},
                               {"logprobs", json::array()}},
                          sequence);
  out += Event("response.content_part.done",
               json{{"item_id", done.item_id},
                    {"output_index", 0},
                    {"content_index", 0},
                    {"part", OutputTextPart(done.text)}},
               sequence);
  out += Event(
      "response.output_item.done",
      json{{"output_index", 0},
           {"item", MessageItem(done.item_id, "completed",
                                json::array({OutputTextPart(done.text)}))}},
      sequence);
  out += Event(done.status == "incomplete" ? "response.incomplete"
                                           : "response.completed",
               json{{"response", ResponseObject(done)}}, sequence);
  return out;
}

std::string ResponseErrorEvent(absl::string_view code,
                               absl::string_view message, int* sequence) {
  return Event("error",
               json{{"code", std::string(code)},
                    {"message", std::string(message)},
                    {"param", nullptr}},
               sequence);
}

absl::StatusOr<std::string> ParseConversationMetadata(absl::string_view body) {
  if (absl::StripAsciiWhitespace(body).empty()) return std::string("{}");
  json doc = json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Invalid("the body must be a JSON object");
  }
  if (auto it = doc.find("items");
      it != doc.end() && !it->is_null() && !(it->is_array() && it->empty())) {
    return Invalid(
        "items are not supported: a chatd conversation stores whole turns; "
        "add them with POST /v1/responses and this conversation");
  }
  auto metadata = doc.find("metadata");
  if (metadata == doc.end() || metadata->is_null()) return std::string("{}");
  if (!metadata->is_object()) return Invalid("metadata must be an object");
  return Dump(*metadata);
}

std::string ConversationJson(absl::string_view id, int64_t created_at,
                             absl::string_view metadata_json) {
  json metadata =
      json::parse(metadata_json.begin(), metadata_json.end(), nullptr, false);
  if (metadata.is_discarded()) metadata = json::object();
  return Dump(json{{"id", std::string(id)},
                   {"object", "conversation"},
                   {"created_at", created_at},
                   {"metadata", std::move(metadata)}});
}

std::string ConversationDeletedJson(absl::string_view id) {
  return Dump(json{{"id", std::string(id)},
                   {"object", "conversation.deleted"},
                   {"deleted", true}});
}

absl::StatusOr<ItemsQuery> ParseItemsQuery(absl::string_view query) {
  ItemsQuery out;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first == "limit") {
      if (!absl::SimpleAtoi(kv.second, &out.limit) || out.limit < 1 ||
          out.limit > 100) {
        return Invalid("limit must be 1..100");
      }
    } else if (kv.first == "order") {
      if (kv.second != "asc" && kv.second != "desc") {
        return Invalid("order must be asc or desc");
      }
      out.asc = kv.second == "asc";
    } else if (kv.first == "after") {
      out.after = std::string(kv.second);
    }
    // Others (include) change nothing for text messages.
  }
  return out;
}

std::string ItemsListJson(absl::string_view session_id,
                          const chat::v1::GetHistoryResponse& history,
                          const ItemsQuery& query) {
  const int n = history.messages_size();
  std::vector<int> order;
  for (int i = 0; i < n; ++i) order.push_back(query.asc ? i : n - 1 - i);
  size_t start = 0;
  if (!query.after.empty()) {
    std::optional<int> after = ItemIndex(query.after, session_id);
    start = order.size();
    if (after.has_value()) {
      auto it = std::find(order.begin(), order.end(), *after);
      if (it != order.end()) start = (it - order.begin()) + 1;
    }
  }
  json data = json::array();
  size_t i = start;
  for (; i < order.size() && data.size() < static_cast<size_t>(query.limit);
       ++i) {
    const chat::v1::Message& m = history.messages(order[i]);
    const bool user = m.role() == "user";
    json part = user ? json{{"type", "input_text"}, {"text", m.content()}}
                     : OutputTextPart(m.content());
    data.push_back(json{{"id", ItemId(session_id, order[i])},
                        {"type", "message"},
                        {"status", "completed"},
                        {"role", m.role()},
                        {"content", json::array({std::move(part)})}});
  }
  json first_id = data.empty() ? json(nullptr) : data.front()["id"];
  json last_id = data.empty() ? json(nullptr) : data.back()["id"];
  return Dump(json{{"object", "list"},
                   {"data", std::move(data)},
                   {"first_id", std::move(first_id)},
                   {"last_id", std::move(last_id)},
                   {"has_more", i < order.size()}});
}

int64_t UnixSecondsOf(absl::string_view rfc3339) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &error)) return 0;
  return absl::ToUnixSeconds(t);
}

}  // namespace chat::gateway
