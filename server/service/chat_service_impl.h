#ifndef CHAT_SERVER_SERVICE_CHAT_SERVICE_IMPL_H_
#define CHAT_SERVER_SERVICE_CHAT_SERVICE_IMPL_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "common/thread_pool.h"
#include "server/engine/chat_engine.h"
#include "server/engine/resumable_streams.h"
#include "server/service/authenticator.h"
#include "server/service/local_chat_stream.h"
#include "server/service/rate_limit_metadata.h"
#include "server/store/conversation_store.h"

namespace chat {

// The models ListModels offers: what a request naming no model gets, and
// every model the server serves (the default first). See ModelsOf in
// server/app.
struct ModelCatalog {
  std::string default_model;
  std::vector<std::string> models;
};

// What ChatLocal answers, as the Chat RPC would: the status, the response
// when it is OK, and the response metadata.
struct LocalTurnAnswer {
  absl::Status status;
  chat::v1::ChatResponse response;
  // The turn's rate-limit entries (x-ratelimit-*).
  MetadataPairs initial_metadata;
  // A refusal's (retry-after and the rate-limit entries).
  MetadataPairs trailing_metadata;
};

// The gRPC edge of chat.v1.ChatService, on the callback API: a call holds no
// thread while it waits for the provider or the store. Converts between
// protobuf messages and the engine's types, and statuses with ToGrpcStatus.
//
// Every RPC but GetStatus (the liveness route, `GET /`) first asks the
// Authenticator who the caller is: the caller's tenant scopes every session it
// names, and its key's id and limits go with its turns. A refused call
// answers UNAUTHENTICATED before its request is looked at, so the answer
// says nothing about the sessions it names.
class ChatServiceImpl final : public chat::v1::ChatService::CallbackService {
 public:
  // All four must outlive the service. Store calls of the history RPCs run
  // on `pool`. Streamed answers are resumable (`stream_options`), through
  // `store`'s streams() (or this process's memory if it keeps none).
  ChatServiceImpl(ChatEngine* engine, store::ConversationStore* store,
                  ThreadPool* pool, Authenticator* authenticator,
                  ModelCatalog models = {},
                  ResumableStreamOptions stream_options = {});

  // Cancels the streamed answers still running (detached ones included) and
  // waits for them; after the gRPC server stopped and before the engine
  // goes.
  void StopStreams() { streams_.reset(); }

  // Chat without a gRPC call, for chat-server's own HTTP port
  // (server/app/embedded_http.*): the in-process channel's client and server
  // legs cost about a quarter of a /chat's CPU. The same authentication,
  // limits, log line and metrics as the RPC; `metadata` and `deadline` are
  // what the gateway would send with it (x-forwarded-for names the HTTP
  // client). `done` runs once, on any thread, possibly before ChatLocal
  // returns. The function returned cancels the call as a client's leaving
  // cancels the RPC; it may be called from any thread, more than once, and
  // after `done`.
  std::function<void()> ChatLocal(chat::v1::ChatRequest request,
                                  const MetadataPairs& metadata,
                                  absl::Time deadline,
                                  std::function<void(LocalTurnAnswer)> done);
  // ChatStream without a gRPC call, as ChatLocal is Chat's: the events and
  // the end go to `receiver`, one write at a time. The function returned
  // cancels the call as a client's leaving cancels the RPC (the answer runs
  // on, for a resume), or with `expired` as the deadline passing does (the
  // answer ends too); any thread, more than once, also after the end.
  std::function<void(bool expired)> ChatStreamLocal(
      chat::v1::ChatStreamRequest request, const MetadataPairs& metadata,
      absl::Time deadline, std::shared_ptr<LocalStreamReceiver> receiver);
  // ResumeStream without a gRPC call, as ChatStreamLocal is ChatStream's
  // (the page's reconnects after a dropped stream). The deadline is the
  // caller's to enforce, through the cancel's `expired`, which detaches this
  // client only: the answer belongs to the call that started it.
  std::function<void(bool expired)> ResumeStreamLocal(
      chat::v1::ResumeStreamRequest request, const MetadataPairs& metadata,
      std::shared_ptr<LocalStreamReceiver> receiver);

  grpc::ServerUnaryReactor* GetStatus(
      grpc::CallbackServerContext* context,
      const chat::v1::GetStatusRequest* request,
      chat::v1::GetStatusResponse* response) override;
  grpc::ServerUnaryReactor* Chat(grpc::CallbackServerContext* context,
                                 const chat::v1::ChatRequest* request,
                                 chat::v1::ChatResponse* response) override;
  grpc::ServerWriteReactor<chat::v1::ChatStreamResponse>* ChatStream(
      grpc::CallbackServerContext* context,
      const chat::v1::ChatStreamRequest* request) override;
  grpc::ServerUnaryReactor* GetHistory(
      grpc::CallbackServerContext* context,
      const chat::v1::GetHistoryRequest* request,
      chat::v1::GetHistoryResponse* response) override;
  grpc::ServerUnaryReactor* DeleteSession(
      grpc::CallbackServerContext* context,
      const chat::v1::DeleteSessionRequest* request,
      chat::v1::DeleteSessionResponse* response) override;
  grpc::ServerUnaryReactor* ResetSession(
      grpc::CallbackServerContext* context,
      const chat::v1::ResetSessionRequest* request,
      chat::v1::ResetSessionResponse* response) override;
  grpc::ServerUnaryReactor* ListSessions(
      grpc::CallbackServerContext* context,
      const chat::v1::ListSessionsRequest* request,
      chat::v1::ListSessionsResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(
      grpc::CallbackServerContext* context,
      const chat::v1::GetStatsRequest* request,
      chat::v1::GetStatsResponse* response) override;
  grpc::ServerWriteReactor<chat::v1::ChatStreamResponse>* ResumeStream(
      grpc::CallbackServerContext* context,
      const chat::v1::ResumeStreamRequest* request) override;
  grpc::ServerUnaryReactor* CancelStream(
      grpc::CallbackServerContext* context,
      const chat::v1::CancelStreamRequest* request,
      chat::v1::CancelStreamResponse* response) override;
  grpc::ServerUnaryReactor* Complete(
      grpc::CallbackServerContext* context,
      const chat::v1::CompleteRequest* request,
      chat::v1::CompleteResponse* response) override;
  grpc::ServerWriteReactor<chat::v1::CompleteStreamResponse>* CompleteStream(
      grpc::CallbackServerContext* context,
      const chat::v1::CompleteStreamRequest* request) override;
  grpc::ServerUnaryReactor* ListModels(
      grpc::CallbackServerContext* context,
      const chat::v1::ListModelsRequest* request,
      chat::v1::ListModelsResponse* response) override;
  grpc::ServerUnaryReactor* UpdateSession(
      grpc::CallbackServerContext* context,
      const chat::v1::UpdateSessionRequest* request,
      chat::v1::UpdateSessionResponse* response) override;
  grpc::ServerUnaryReactor* SearchMessages(
      grpc::CallbackServerContext* context,
      const chat::v1::SearchMessagesRequest* request,
      chat::v1::SearchMessagesResponse* response) override;
  grpc::ServerUnaryReactor* RegenerateTurn(
      grpc::CallbackServerContext* context,
      const chat::v1::RegenerateTurnRequest* request,
      chat::v1::RegenerateTurnResponse* response) override;
  grpc::ServerUnaryReactor* EditMessage(
      grpc::CallbackServerContext* context,
      const chat::v1::EditMessageRequest* request,
      chat::v1::EditMessageResponse* response) override;
  grpc::ServerUnaryReactor* SwitchBranch(
      grpc::CallbackServerContext* context,
      const chat::v1::SwitchBranchRequest* request,
      chat::v1::SwitchBranchResponse* response) override;
  // Export and import (issue 13.5): session_export_rpcs.cc.
  grpc::ServerUnaryReactor* ExportSession(
      grpc::CallbackServerContext* context,
      const chat::v1::ExportSessionRequest* request,
      chat::v1::ExportSessionResponse* response) override;
  grpc::ServerWriteReactor<chat::v1::ExportSessionsResponse>* ExportSessions(
      grpc::CallbackServerContext* context,
      const chat::v1::ExportSessionsRequest* request) override;
  grpc::ServerUnaryReactor* ImportSession(
      grpc::CallbackServerContext* context,
      const chat::v1::ImportSessionRequest* request,
      chat::v1::ImportSessionResponse* response) override;
  // CreateSession (issue 14): create_session.cc.
  grpc::ServerUnaryReactor* CreateSession(
      grpc::CallbackServerContext* context,
      const chat::v1::CreateSessionRequest* request,
      chat::v1::CreateSessionResponse* response) override;

 private:
  // What CreateSession, a renaming UpdateSession, ImportSession and
  // SwitchBranch pay before they write: ChatEngine::ChargeSessionWrite for
  // the caller's key. Once charged, the call's answer carries where the
  // key's requests stand (the x-ratelimit-*-requests trio) as initial
  // metadata, as a turn's does; a refusal's go out as trailing metadata
  // from FinishOnPool. Call only from FinishOnPool's work, which runs before
  // Finish sends the initial metadata.
  absl::Status ChargeSessionWrite(const Caller& caller,
                                  grpc::CallbackServerContext& context);

  ChatEngine* const engine_;
  store::ConversationStore* const store_;
  ThreadPool* const pool_;
  Authenticator* const authenticator_;
  // For stores that keep no streams.
  store::MemoryStreamStore local_streams_;
  std::unique_ptr<ResumableStreams> streams_;
  const ModelCatalog models_;
};

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_CHAT_SERVICE_IMPL_H_
