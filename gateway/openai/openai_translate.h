#ifndef CHAT_GATEWAY_OPENAI_OPENAI_TRANSLATE_H_
#define CHAT_GATEWAY_OPENAI_OPENAI_TRANSLATE_H_

// OpenAI's wire format, translated to and from chat.v1's messages: pure
// functions, no I/O, so each mapping is tested by a table
// (tests/gateway/openai/openai_translate_test.cc). The shapes follow
// OpenAI's API reference (platform.openai.com/docs/api-reference/chat).

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "chat/v1/chat.pb.h"
#include "gateway/transcode/status_mapping.h"

namespace chat::gateway {

// A parsed POST /v1/chat/completions body.
struct ChatCompletionCall {
  // The conversation as chat.v1 takes it: OpenAI's "system" and "developer"
  // messages joined (blank line between) into system_prompt, the others in
  // order. Streamed calls copy it into a CompleteStreamRequest.
  chat::v1::CompleteRequest request;
  // The `model` the caller named (echoed in the answer's chunks).
  std::string model;
  bool stream = false;
  // stream_options.include_usage: a last chunk with the usage.
  bool include_usage = false;
};

// Parses a Chat Completions request body. INVALID_ARGUMENT, naming the
// field, for what chatd cannot honour: a missing model or messages, a role
// other than system/developer/user/assistant, non-text content parts,
// tools, n other than 1, values of the wrong type.
absl::StatusOr<ChatCompletionCall> ParseChatCompletion(absl::string_view body);

// chat.v1's stop_reason ("end_turn", "max_tokens", "stop_sequence", ...) as
// OpenAI's finish_reason ("stop", "length", "tool_calls").
std::string FinishReasonOf(absl::string_view stop_reason);

// The non-streamed answer: a "chat.completion" object.
std::string ChatCompletionJson(const chat::v1::CompleteResponse& response,
                               absl::string_view id, int64_t created);

// One "chat.completion.chunk" of a streamed answer, as an SSE `data:` event
// (terminated by a blank line). `usage` true: the extra last chunk, with no
// choices and the usage (stream_options.include_usage); otherwise
// `with_usage_null` adds "usage": null as OpenAI does when usage was asked.
std::string FirstChunk(absl::string_view id, int64_t created,
                       absl::string_view model, bool with_usage_null);
std::string DeltaChunk(absl::string_view id, int64_t created,
                       absl::string_view model, absl::string_view text,
                       bool with_usage_null);
std::string FinishChunk(absl::string_view id, int64_t created,
                        absl::string_view model, absl::string_view stop_reason,
                        bool with_usage_null);
std::string UsageChunk(absl::string_view id, int64_t created,
                       absl::string_view model, const chat::v1::Usage& usage);
// The stream's end: "data: [DONE]".
std::string DoneEvent();

// GET /v1/models: a "list" of "model" objects.
std::string ModelListJson(const chat::v1::ListModelsResponse& models);
// GET /v1/models/{id}: one "model" object.
std::string ModelJson(absl::string_view id);

// An error in OpenAI's shape, for these routes only:
// {"error": {"message", "type", "param", "code"}}.
struct OpenAiError {
  int http_status = 500;
  std::string type;   // "invalid_request_error", "server_error", ...
  std::string code;   // Empty: null.
  std::string param;  // Empty: null.
  std::string message;
};

// The gateway's error (its HTTP status from the gRPC code, ToHttpError) in
// OpenAI's terms: the same HTTP status, OpenAI's type and code for it
// (401 invalid_api_key, 429 rate_limit_exceeded or insufficient_quota for
// a spent budget, 404 not_found, 5xx server_error).
OpenAiError ToOpenAiError(const HttpError& error);
std::string OpenAiErrorBody(const OpenAiError& error);

// A random id with OpenAI's prefix ("chatcmpl-"), 24 hex digits after it.
std::string NewOpenAiId(absl::string_view prefix);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_OPENAI_OPENAI_TRANSLATE_H_
