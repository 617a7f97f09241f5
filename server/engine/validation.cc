#include "server/engine/validation.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace chat {
namespace {

bool IsSessionIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == ':' || c == '@' || c == '-';
}

absl::Status ValidateStateless(const ChatTurnRequest& request,
                               const RequestLimits& limits) {
  if (request.messages.empty()) {
    return absl::InvalidArgumentError("messages must not be empty");
  }
  if (request.messages.size() > kMaxCompletionMessages) {
    return absl::InvalidArgumentError(
        absl::StrCat("messages has ", request.messages.size(),
                     " entries; the limit is ", kMaxCompletionMessages));
  }
  for (size_t i = 0; i < request.messages.size(); ++i) {
    const llm::PromptMessage& m = request.messages[i];
    if (m.role != "user" && m.role != "assistant") {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "].role must be user or assistant"));
    }
    if (m.content.size() > limits.max_message_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("messages[", i, "].content is ", m.content.size(),
                       " bytes; the limit is ", limits.max_message_bytes));
    }
  }
  if (request.stop.size() > kMaxStopSequences) {
    return absl::InvalidArgumentError(
        absl::StrCat("stop has ", request.stop.size(),
                     " sequences; the limit is ", kMaxStopSequences));
  }
  for (const std::string& stop : request.stop) {
    if (stop.empty() || stop.size() > kMaxStopSequenceBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "each stop sequence must be 1..", kMaxStopSequenceBytes, " bytes"));
    }
  }
  if (request.user.size() > 256) {
    return absl::InvalidArgumentError("user is longer than 256 bytes");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSessionId(absl::string_view session_id) {
  if (session_id.empty()) {
    return absl::InvalidArgumentError("session_id is required");
  }
  if (session_id.size() > kMaxSessionIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("session_id is ", session_id.size(),
                     " bytes; the limit is ", kMaxSessionIdBytes));
  }
  for (char c : session_id) {
    if (!IsSessionIdChar(c)) {
      return absl::InvalidArgumentError(
          "session_id may contain only letters, digits and . _ : @ -");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSystemPrompt(absl::string_view system_prompt,
                                  const RequestLimits& limits) {
  if (system_prompt.size() > limits.max_system_prompt_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("system_prompt is ", system_prompt.size(),
                     " bytes; the limit is ", limits.max_system_prompt_bytes));
  }
  if (system_prompt.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "system_prompt must not contain NUL bytes");
  }
  return absl::OkStatus();
}

absl::Status ValidateChatTurnRequest(const ChatTurnRequest& request,
                                     const RequestLimits& limits) {
  if (request.stateless) {
    if (absl::Status s = ValidateStateless(request, limits); !s.ok()) return s;
    // A stateless turn has no stored turns to edit or answer again.
    if (request.edit_turn_id.has_value() ||
        request.regenerate_turn_id.has_value() ||
        request.after_turn_id.has_value()) {
      return absl::InvalidArgumentError(
          "a completion without a session has no turns to branch from");
    }
  } else {
    if (absl::Status s = ValidateSessionId(request.session_id); !s.ok()) {
      return s;
    }
    if (request.edit_turn_id.has_value() +
            request.regenerate_turn_id.has_value() +
            request.after_turn_id.has_value() >
        1) {
      return absl::InvalidArgumentError(
          "set at most one of edit_turn_id, regenerate_turn_id and "
          "after_turn_id");
    }
    if (request.edit_turn_id.has_value() && *request.edit_turn_id < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("edit_turn_id must be a turn id (>= 1); got ",
                       *request.edit_turn_id));
    }
    if (request.after_turn_id.has_value() && *request.after_turn_id < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("after_turn_id must be a turn id (>= 1); got ",
                       *request.after_turn_id));
    }
    if (request.regenerate_turn_id.has_value()) {
      if (*request.regenerate_turn_id < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "regenerate_turn_id must be a turn id, or 0 for the last turn; "
            "got ",
            *request.regenerate_turn_id));
      }
      if (!request.message.empty()) {
        return absl::InvalidArgumentError(
            "message must be empty when regenerating: the turn's own message "
            "is asked again");
      }
    }
    if ((request.edit_turn_id.has_value() ||
         request.regenerate_turn_id.has_value() ||
         request.after_turn_id.has_value()) &&
        (!request.request_id.empty() || !request.idempotency_key.empty())) {
      return absl::InvalidArgumentError(
          "edits, regenerations and turns after an earlier turn do not take "
          "a request id (request_id / Idempotency-Key)");
    }
    if (request.message.empty() && !request.regenerate_turn_id.has_value()) {
      return absl::InvalidArgumentError(
          "message is required and must not be empty");
    }
    if (request.message.size() > limits.max_message_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("message is ", request.message.size(),
                       " bytes; the limit is ", limits.max_message_bytes));
    }
  }
  if (request.system_prompt.has_value()) {
    if (absl::Status s = ValidateSystemPrompt(*request.system_prompt, limits);
        !s.ok()) {
      return s;
    }
  }
  if (request.max_tokens.has_value() &&
      (*request.max_tokens < 1 ||
       *request.max_tokens > limits.max_tokens_ceiling)) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens must be between 1 and ",
                     limits.max_tokens_ceiling, "; got ", *request.max_tokens));
  }
  // The negated form also rejects NaN.
  if (request.temperature.has_value() &&
      !(*request.temperature >= 0.0 && *request.temperature <= 2.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "temperature must be between 0 and 2; got ", *request.temperature));
  }
  if (request.model.has_value() && request.model->size() > 256) {
    return absl::InvalidArgumentError("model name is longer than 256 bytes");
  }
  // PostgreSQL's TEXT cannot hold a NUL byte (messages are stored as bytes
  // and may), so refuse it rather than store a cut value.
  if (request.model.has_value() &&
      request.model->find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("model must not contain NUL bytes");
  }
  if (request.model.has_value() && !limits.allowed_models.empty() &&
      std::find(limits.allowed_models.begin(), limits.allowed_models.end(),
                *request.model) == limits.allowed_models.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", *request.model, "' is not allowed on this server; allowed: ",
        absl::StrJoin(limits.allowed_models, ", ")));
  }
  return absl::OkStatus();
}

}  // namespace chat
