#ifndef CHAT_SERVER_SERVICE_CHAT_STREAM_REACTOR_H_
#define CHAT_SERVER_SERVICE_CHAT_STREAM_REACTOR_H_

#include <string>

#include "chat/v1/chat.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "server/engine/resumable_streams.h"
#include "server/service/stream_turn.h"

namespace chat {

// Serves one ChatStream or ResumeStream call over gRPC (see StreamTurn). The
// object deletes itself once gRPC has called OnDone and the answer has
// called OnEnd, whichever comes last.
class ChatStreamReactor final
    : public grpc::ServerWriteReactor<chat::v1::ChatStreamResponse>,
      public StreamTurn {
 public:
  // `context` is the call's; it outlives the reactor. Waits for Start() or
  // Resume(): the call is authenticated first (possibly on another thread).
  // A cancel before then is honoured by them.
  ChatStreamReactor(grpc::CallbackServerContext* context,
                    ResumableStreams* streams)
      : StreamTurn(streams), context_(context) {}

  // grpc::ServerWriteReactor
  void OnWriteDone(bool ok) override { WriteDone(ok); }
  void OnCancel() override;
  void OnDone() override { TransportDone(); }

 private:
  // StreamTurn
  void AddInitialMetadata(const std::string& key,
                          const std::string& value) override {
    context_->AddInitialMetadata(key, value);
  }
  void AddTrailingMetadata(const std::string& key,
                           const std::string& value) override {
    context_->AddTrailingMetadata(key, value);
  }
  void Send(const chat::v1::ChatStreamResponse& event) override {
    StartWrite(&event);
  }
  void End(const absl::Status& status) override;

  grpc::CallbackServerContext* const context_;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_CHAT_STREAM_REACTOR_H_
