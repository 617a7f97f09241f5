#include "server/service/proto_convert.h"

#include "common/time_format.h"

namespace chat {
namespace {

// ChatRequest and ChatStreamRequest carry the same fields.
template <typename Request>
ChatTurnRequest TurnRequestFrom(const Request& request,
                                const std::string& tenant) {
  ChatTurnRequest turn;
  turn.tenant = tenant;
  turn.session_id = request.session_id();
  turn.message = request.message();
  if (request.has_system_prompt()) turn.system_prompt = request.system_prompt();
  if (request.has_model()) turn.model = request.model();
  if (request.has_max_tokens()) turn.max_tokens = request.max_tokens();
  if (request.has_temperature()) turn.temperature = request.temperature();
  turn.request_id = request.request_id();
  if (request.has_after_turn_id()) turn.after_turn_id = request.after_turn_id();
  return turn;
}

}  // namespace

ChatTurnRequest ToTurnRequest(const chat::v1::ChatRequest& request,
                              const std::string& tenant) {
  return TurnRequestFrom(request, tenant);
}

ChatTurnRequest ToTurnRequest(const chat::v1::ChatStreamRequest& request,
                              const std::string& tenant) {
  ChatTurnRequest turn = TurnRequestFrom(request, tenant);
  if (request.has_edit_turn_id()) turn.edit_turn_id = request.edit_turn_id();
  if (request.has_regenerate_turn_id()) {
    turn.regenerate_turn_id = request.regenerate_turn_id();
  }
  return turn;
}

ChatTurnRequest ToTurnRequest(const chat::v1::RegenerateTurnRequest& request,
                              const std::string& tenant) {
  ChatTurnRequest turn;
  turn.tenant = tenant;
  turn.session_id = request.session_id();
  turn.regenerate_turn_id = request.turn_id();
  if (request.has_model()) turn.model = request.model();
  if (request.has_max_tokens()) turn.max_tokens = request.max_tokens();
  if (request.has_temperature()) turn.temperature = request.temperature();
  return turn;
}

ChatTurnRequest ToTurnRequest(const chat::v1::EditMessageRequest& request,
                              const std::string& tenant) {
  ChatTurnRequest turn;
  turn.tenant = tenant;
  turn.session_id = request.session_id();
  turn.message = request.message();
  // 0 (unset) is refused by validation as no turn id.
  turn.edit_turn_id = request.turn_id();
  if (request.has_model()) turn.model = request.model();
  if (request.has_max_tokens()) turn.max_tokens = request.max_tokens();
  if (request.has_temperature()) turn.temperature = request.temperature();
  return turn;
}

// ChatResponse, RegenerateTurnResponse and EditMessageResponse carry the
// same fields.
template <typename Response>
static void FillResponse(const ChatTurnResult& result, Response* response) {
  response->set_response(result.response);
  response->set_session_id(result.session_id);
  response->set_timestamp(FormatTimestamp(result.timestamp));
  response->set_turn_count(result.turn_count);
  response->set_model(result.model);
  response->set_stop_reason(result.stop_reason);
  response->mutable_usage()->set_input_tokens(
      static_cast<int32_t>(result.input_tokens));
  response->mutable_usage()->set_output_tokens(
      static_cast<int32_t>(result.output_tokens));
  response->set_truncated_turns(result.truncated_turns);
  if (result.turn_id > 0) response->set_turn_id(result.turn_id);
  // Left unset for a model without a price: absent, not 0.
  if (result.cost_usd.has_value()) response->set_cost_usd(*result.cost_usd);
}

void FillChatResponse(const ChatTurnResult& result,
                      chat::v1::ChatResponse* response) {
  FillResponse(result, response);
}

void FillChatResponse(const ChatTurnResult& result,
                      chat::v1::RegenerateTurnResponse* response) {
  FillResponse(result, response);
}

void FillChatResponse(const ChatTurnResult& result,
                      chat::v1::EditMessageResponse* response) {
  FillResponse(result, response);
}

}  // namespace chat
