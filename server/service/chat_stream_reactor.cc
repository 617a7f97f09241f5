#include "server/service/chat_stream_reactor.h"

#include <chrono>

#include "server/service/grpc_status.h"

namespace chat {

void ChatStreamReactor::OnCancel() {
  Cancel(/*expired=*/context_->deadline() <= std::chrono::system_clock::now());
}

void ChatStreamReactor::End(const absl::Status& status) {
  Finish(ToGrpcStatus(status));
}

}  // namespace chat
