#ifndef CHAT_SERVER_SERVICE_LOCAL_CHAT_STREAM_H_
#define CHAT_SERVER_SERVICE_LOCAL_CHAT_STREAM_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "chat/v1/chat.pb.h"
#include "server/engine/resumable_streams.h"
#include "server/service/grpc_metrics_interceptor.h"
#include "server/service/rate_limit_metadata.h"
#include "server/service/stream_turn.h"

namespace chat {

// Where a ChatStream or ResumeStream answered without a gRPC call
// (ChatServiceImpl::ChatStreamLocal, ResumeStreamLocal) goes: what
// chat-server's own HTTP port makes of the events, as the RPC's client
// would.
// Write and Finish are called one at a time, never concurrently.
class LocalStreamReceiver {
 public:
  LocalStreamReceiver() = default;
  LocalStreamReceiver(const LocalStreamReceiver&) = delete;
  LocalStreamReceiver& operator=(const LocalStreamReceiver&) = delete;
  virtual ~LocalStreamReceiver() = default;
  // One event. `written(true)` once the client has it, `written(false)` if
  // the client is gone; the next event comes only after either, on any
  // thread. `initial_metadata`: what the RPC would send as its initial
  // metadata (the turn's rate-limit entries), the same on every call.
  virtual void Write(const chat::v1::ChatStreamResponse& event,
                     const MetadataPairs& initial_metadata,
                     std::function<void(bool)> written) = 0;
  // The call's end, after the last write: its status and the RPC's
  // response metadata. Once, last.
  virtual void Finish(const absl::Status& status,
                      const MetadataPairs& initial_metadata,
                      const MetadataPairs& trailing_metadata) = 0;
};

// One ChatStreamLocal or ResumeStreamLocal call: a StreamTurn whose events
// go to a LocalStreamReceiver instead of a gRPC call, counted in GrpcMetrics
// as the RPC is. Owned by shared_ptrs: its own until both sides are done, the
// authentication's callback until it runs, and a pending write's `written`
// callback; the cancel ChatStreamLocal or ResumeStreamLocal returns holds it
// weakly.
class LocalChatStreamCall final
    : public StreamTurn,
      public std::enable_shared_from_this<LocalChatStreamCall> {
 public:
  // The paths of the RPCs a local call stands for, as GrpcMetrics counts
  // them.
  static constexpr char kChatStream[] = "/chat.v1.ChatService/ChatStream";
  static constexpr char kResumeStream[] = "/chat.v1.ChatService/ResumeStream";

  // `method`: kChatStream or kResumeStream.
  static std::shared_ptr<LocalChatStreamCall> Create(
      const char* method, ResumableStreams* streams,
      std::shared_ptr<LocalStreamReceiver> receiver);

  // The client left, or the gateway cancelled the call (`expired`: at its
  // deadline). Any thread, more than once, also after the end.
  void CancelCall(bool expired) { Cancel(expired); }

 private:
  LocalChatStreamCall(const char* method, ResumableStreams* streams,
                      std::shared_ptr<LocalStreamReceiver> receiver);

  // StreamTurn. The metadata is written under StreamTurn's lock before the
  // Send or End that reads it.
  void AddInitialMetadata(const std::string& key,
                          const std::string& value) override;
  void AddTrailingMetadata(const std::string& key,
                           const std::string& value) override;
  void Send(const chat::v1::ChatStreamResponse& event) override;
  void End(const absl::Status& status) override;
  void Dispose() override;

  std::shared_ptr<LocalStreamReceiver> receiver_;
  MetadataPairs initial_metadata_;
  MetadataPairs trailing_metadata_;
  // Open until End.
  std::optional<GrpcCallCounter> counter_;
  std::shared_ptr<LocalChatStreamCall> self_;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_LOCAL_CHAT_STREAM_H_
