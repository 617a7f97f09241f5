#ifndef CHAT_SERVER_SERVICE_PROTO_CONVERT_H_
#define CHAT_SERVER_SERVICE_PROTO_CONVERT_H_

#include <string>

#include "chat/v1/chat.pb.h"
#include "server/engine/chat_types.h"

namespace chat {

// The engine's view of a Chat or ChatStream request made by a caller of
// `tenant` (the two messages have the same fields).
ChatTurnRequest ToTurnRequest(const chat::v1::ChatRequest& request,
                              const std::string& tenant);
ChatTurnRequest ToTurnRequest(const chat::v1::ChatStreamRequest& request,
                              const std::string& tenant);
// RegenerateTurn and EditMessage as turns (a new version of a stored turn).
ChatTurnRequest ToTurnRequest(const chat::v1::RegenerateTurnRequest& request,
                              const std::string& tenant);
ChatTurnRequest ToTurnRequest(const chat::v1::EditMessageRequest& request,
                              const std::string& tenant);

// Fills `response` with a stored turn's outcome.
void FillChatResponse(const ChatTurnResult& result,
                      chat::v1::ChatResponse* response);
// The same for RegenerateTurn and EditMessage, whose answers have
// ChatResponse's fields.
void FillChatResponse(const ChatTurnResult& result,
                      chat::v1::RegenerateTurnResponse* response);
void FillChatResponse(const ChatTurnResult& result,
                      chat::v1::EditMessageResponse* response);

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_PROTO_CONVERT_H_
