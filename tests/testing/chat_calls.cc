#include "tests/testing/chat_calls.h"

#include <chrono>
#include <cstdlib>
#include <memory>

namespace chat::testing {
namespace {

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(30));
}

}  // namespace

bool PollIdleChannelsOften() {
  setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "100", 1);
  return true;
}

grpc::Status CallChat(chat::v1::ChatService::Stub& stub,
                      const chat::v1::ChatRequest& request,
                      chat::v1::ChatResponse* response) {
  grpc::ClientContext context;
  SetDeadline(&context);
  return stub.Chat(&context, request, response);
}

grpc::Status CallChatStream(chat::v1::ChatService::Stub& stub,
                            const chat::v1::ChatRequest& request,
                            std::vector<std::string>* deltas,
                            chat::v1::ChatResponse* done) {
  grpc::ClientContext context;
  SetDeadline(&context);
  std::unique_ptr<grpc::ClientReader<chat::v1::ChatStreamResponse>> reader =
      stub.ChatStream(&context, ToStreamRequest(request));
  chat::v1::ChatStreamResponse event;
  while (reader->Read(&event)) {
    if (event.has_delta()) deltas->push_back(event.delta().text());
    if (event.has_done()) *done = event.done();
  }
  return reader->Finish();
}

chat::v1::GetHistoryResponse CallGetHistory(chat::v1::ChatService::Stub& stub,
                                            const std::string& session_id,
                                            grpc::Status* status) {
  grpc::ClientContext context;
  SetDeadline(&context);
  chat::v1::GetHistoryRequest request;
  request.set_session_id(session_id);
  chat::v1::GetHistoryResponse response;
  grpc::Status s = stub.GetHistory(&context, request, &response);
  if (status != nullptr) *status = s;
  return response;
}

chat::v1::ChatStreamRequest ToStreamRequest(
    const chat::v1::ChatRequest& request) {
  chat::v1::ChatStreamRequest stream_request;
  stream_request.ParseFromString(request.SerializeAsString());
  return stream_request;
}

chat::v1::ChatRequest MakeChatRequest(const std::string& session_id,
                                      const std::string& message) {
  chat::v1::ChatRequest request;
  request.set_session_id(session_id);
  request.set_message(message);
  return request;
}

}  // namespace chat::testing
