#ifndef CHAT_GATEWAY_OPENAI_OPENAI_RESPONSES_H_
#define CHAT_GATEWAY_OPENAI_OPENAI_RESPONSES_H_

// OpenAI's Responses and Conversations API over chatd sessions: the pure
// part (ids, request parsing, JSON shapes), tested by
// tests/gateway/openai/openai_responses_test.cc. The calls are made in
// openai_api.cc.
//
// A conversation IS a chatd session: its id is the session id, so the same
// history is seen through gRPC, the REST routes, the CLI and the web app.
// POST /v1/conversations stores an empty session (CreateSession) under a
// new conv_ id, so every key of the tenant sees it at once; another tenant
// gets 404, as chat-server's tenant isolation answers NOT_FOUND.
//
// A stored response is one turn of a session, and its id says which:
// "resp_<turn id>_<session id>", with the turn's Message.turn_id, which
// stays the same whatever branch is shown. previous_response_id of an
// earlier response continues from that turn on a new branch (ChatRequest.
// after_turn_id), as OpenAI forks a chain. A response made with `store:
// false` has a random id ("resp_x...") that no lookup finds.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "chat/v1/chat.pb.h"

namespace chat::gateway {

// ----- ids -----

// A new conversation id: "conv_" + 40 random hex digits.
std::string NewConversationId();

// "resp_<turn id>_<session id>".
std::string StoredResponseId(absl::string_view session_id, int turn);
struct StoredResponseRef {
  std::string session_id;
  int turn = 0;
};
// The session and turn a StoredResponseId names; nullopt otherwise
// (including a `store: false` response's id).
std::optional<StoredResponseRef> ParseStoredResponseId(absl::string_view id);

// A stored turn in a session's export (ExportSession: every branch).
struct ExportedTurn {
  const chat::v1::ExportedMessage* user = nullptr;
  const chat::v1::ExportedMessage* answer = nullptr;
  // Its place on its branch, counted from 1.
  int depth = 0;
};
// Turn `turn_id` of `session`; nullopt if it has no such complete turn.
std::optional<ExportedTurn> FindExportedTurn(
    const chat::v1::SessionExport& session, int turn_id);
// The messages of the branch from the first turn to `turn_id` (which
// FindExportedTurn found), oldest first.
std::vector<chat::v1::CompletionMessage> BranchMessages(
    const chat::v1::SessionExport& session, int turn_id);
// The highest turn id of `session`, 0 without turns: the next turn stored
// gets the one after it.
int LastTurnId(const chat::v1::SessionExport& session);

// The id of the `index`th message (from 0) of a session, as a conversation
// item: "msg_<index>_<session id>"; and back (nullopt if not one of
// `session_id`'s).
std::string ItemId(absl::string_view session_id, int index);
std::optional<int> ItemIndex(absl::string_view item_id,
                             absl::string_view session_id);

// ----- POST /v1/responses -----

struct ResponsesCall {
  std::optional<std::string> model;
  // `instructions`, with the input's system and developer messages after it
  // (blank line between); nullopt when none of them was given.
  std::optional<std::string> system_prompt;
  // The input's user and assistant messages, in order ("input": "text" is
  // one user message).
  std::vector<chat::v1::CompletionMessage> messages;
  std::optional<std::string> previous_response_id;
  std::optional<std::string> conversation;
  bool store = true;
  bool stream = false;
  std::optional<int32_t> max_output_tokens;
  std::optional<double> temperature;
  std::string user;
};

// Parses a Responses request body. INVALID_ARGUMENT naming the field for
// what chatd cannot honour: no input, tools, non-text content, both
// `conversation` and `previous_response_id`, values of the wrong type.
absl::StatusOr<ResponsesCall> ParseResponsesCall(absl::string_view body);

// What a response says besides its text, for the JSON below.
struct ResponseView {
  std::string id;
  int64_t created_at = 0;
  // "in_progress", "completed" or "incomplete".
  std::string status = "completed";
  std::string model;
  // The output message's id and text.
  std::string item_id;
  std::string text;
  std::string stop_reason;
  // Absent: no usage known (a response read back, or still running).
  std::optional<chat::v1::Usage> usage;
  std::optional<std::string> previous_response_id;
  std::optional<std::string> conversation;
  std::optional<std::string> instructions;
  bool store = true;
  std::optional<int32_t> max_output_tokens;
  std::optional<double> temperature;
};

// A "response" object. An in_progress one has no output.
std::string ResponseJson(const ResponseView& response);

// Streamed events, as SSE ("event: TYPE\ndata: {...}\n\n"), numbered by
// `sequence`: response.created, response.in_progress,
// response.output_item.added, response.content_part.added (the start),
// response.output_text.delta, then response.output_text.done,
// response.content_part.done, response.output_item.done and
// response.completed (the end).
std::string ResponseStartEvents(const ResponseView& in_progress, int* sequence);
std::string OutputTextDeltaEvent(absl::string_view item_id,
                                 absl::string_view delta, int* sequence);
std::string ResponseEndEvents(const ResponseView& done, int* sequence);
// A failure after the stream started: an "error" event.
std::string ResponseErrorEvent(absl::string_view code,
                               absl::string_view message, int* sequence);

// ----- Conversations -----

// POST /v1/conversations: INVALID_ARGUMENT for initial `items` (chatd
// stores whole turns only); the metadata is returned, not kept.
absl::StatusOr<std::string> ParseConversationMetadata(absl::string_view body);

// A "conversation" object.
std::string ConversationJson(absl::string_view id, int64_t created_at,
                             absl::string_view metadata_json = "{}");
// A "conversation.deleted" object.
std::string ConversationDeletedJson(absl::string_view id);

// Query of GET /v1/conversations/{id}/items.
struct ItemsQuery {
  int limit = 20;     // 1..100
  bool asc = false;   // OpenAI's default order is newest first.
  std::string after;  // An item id; empty: from the start.
};
absl::StatusOr<ItemsQuery> ParseItemsQuery(absl::string_view query);

// The "list" of message items of `history`, as `query` asks.
std::string ItemsListJson(absl::string_view session_id,
                          const chat::v1::GetHistoryResponse& history,
                          const ItemsQuery& query);

// RFC 3339 (chat.v1's timestamps) as Unix seconds; 0 if it does not parse.
int64_t UnixSecondsOf(absl::string_view rfc3339);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_OPENAI_OPENAI_RESPONSES_H_
