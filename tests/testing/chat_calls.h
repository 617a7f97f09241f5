#ifndef CHAT_TESTS_TESTING_CHAT_CALLS_H_
#define CHAT_TESTS_TESTING_CHAT_CALLS_H_

// Blocking chat.v1 calls for integration tests, each bounded by a 30 s
// deadline so a hung server fails the test instead of hanging it.

#include <string>
#include <vector>

#include "chat/v1/chat.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace chat::testing {

// An idle gRPC client reads its socket only when its backup poller runs
// (every 5 s by default), so it sees a stopping server's GOAWAY late and
// holds the server's shutdown open until the grace period ends. Call before
// the first channel is made (a static initializer in the test file).
bool PollIdleChannelsOften();

grpc::Status CallChat(chat::v1::ChatService::Stub& stub,
                      const chat::v1::ChatRequest& request,
                      chat::v1::ChatResponse* response);

// Reads a whole ChatStream: the deltas' texts, and the `done` event.
grpc::Status CallChatStream(chat::v1::ChatService::Stub& stub,
                            const chat::v1::ChatRequest& request,
                            std::vector<std::string>* deltas,
                            chat::v1::ChatResponse* done);

// GetHistory; `status` (optional) receives the call's status.
chat::v1::GetHistoryResponse CallGetHistory(chat::v1::ChatService::Stub& stub,
                                            const std::string& session_id,
                                            grpc::Status* status = nullptr);

// ChatStream's request with the fields of `request`: the two messages have
// the same fields and numbers, so one's bytes parse as the other.
chat::v1::ChatStreamRequest ToStreamRequest(
    const chat::v1::ChatRequest& request);

chat::v1::ChatRequest MakeChatRequest(const std::string& session_id,
                                      const std::string& message);

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_CHAT_CALLS_H_
