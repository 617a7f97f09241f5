#include "server/service/local_chat_stream.h"

#include <utility>

namespace chat {

std::shared_ptr<LocalChatStreamCall> LocalChatStreamCall::Create(
    const char* method, ResumableStreams* streams,
    std::shared_ptr<LocalStreamReceiver> receiver) {
  // Not make_shared: the constructor is private.
  std::shared_ptr<LocalChatStreamCall> call(
      new LocalChatStreamCall(method, streams, std::move(receiver)));
  call->self_ = call;
  return call;
}

LocalChatStreamCall::LocalChatStreamCall(
    const char* method, ResumableStreams* streams,
    std::shared_ptr<LocalStreamReceiver> receiver)
    : StreamTurn(streams), receiver_(std::move(receiver)) {
  counter_.emplace(method, /*streaming=*/true);
}

void LocalChatStreamCall::AddInitialMetadata(const std::string& key,
                                             const std::string& value) {
  initial_metadata_.emplace_back(key, value);
}

void LocalChatStreamCall::AddTrailingMetadata(const std::string& key,
                                              const std::string& value) {
  trailing_metadata_.emplace_back(key, value);
}

void LocalChatStreamCall::Send(const chat::v1::ChatStreamResponse& event) {
  // A receiver that reports the write at once runs the end inside Write,
  // which gives up receiver_ and may dispose of this call: the local
  // reference keeps the receiver for the rest of its Write, and the
  // callback's the call.
  std::shared_ptr<LocalStreamReceiver> receiver = receiver_;
  receiver->Write(
      event, initial_metadata_,
      [call = shared_from_this()](bool ok) { call->WriteDone(ok); });
}

void LocalChatStreamCall::End(const absl::Status& status) {
  // gRPC's codes are absl's, number for number. The call stops being open
  // as its status leaves, as an RPC's does.
  counter_->Count(static_cast<grpc::StatusCode>(status.code()));
  counter_.reset();
  std::shared_ptr<LocalStreamReceiver> receiver = std::move(receiver_);
  receiver->Finish(status, initial_metadata_, trailing_metadata_);
  TransportDone();  // Last: may dispose of this object.
}

void LocalChatStreamCall::Dispose() {
  // Last: may destroy this object.
  std::shared_ptr<LocalChatStreamCall> self = std::move(self_);
}

}  // namespace chat
