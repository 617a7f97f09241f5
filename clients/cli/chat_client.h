#ifndef CHAT_CLIENTS_CLI_CHAT_CLIENT_H_
#define CHAT_CLIENTS_CLI_CHAT_CLIENT_H_

// chat-cli's side of the wire: the channel (plain or TLS, from the flags),
// the API key as `authorization: Bearer` metadata and the deadline on every
// call, the unary RPCs, and ChatStream read as the callback API's Reader in
// grpc's route_guide_callback_client.cc does, so that another thread (the
// Ctrl-C loop) can cancel it while it runs.

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "chat/v1/chat.grpc.pb.h"
#include "clients/cli/cli_options.h"
#include "grpcpp/grpcpp.h"

namespace chat::cli {

// The channel the flags describe. INVALID_ARGUMENT naming the flag when a
// TLS file cannot be read or does not hold what it should (LoadTlsFiles). No
// connection is made yet: an unreachable server shows as UNAVAILABLE on the
// first call.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const CliOptions& options);

// One ChatStream call in flight. Deltas reach `on_delta` on a gRPC thread, in
// order, one at a time; done_fd() turns readable once the call has ended.
// Thread-safe: Cancel() may come from any thread, at any time.
class StreamCall final
    : public grpc::ClientReadReactor<chat::v1::ChatStreamResponse> {
 public:
  using DeltaFn = std::function<void(const std::string& text)>;
  using StopFn = std::function<void()>;

  // Starts the call at once. Destroy it only after it ended (Await returned
  // or done_fd() was readable): gRPC calls into it until then. `stop_answer`
  // (may be empty) stops the answer on the server for Cancel.
  StreamCall(chat::v1::ChatService::Stub* stub,
             std::unique_ptr<grpc::ClientContext> context,
             const chat::v1::ChatStreamRequest& request, DeltaFn on_delta,
             StopFn stop_answer = nullptr);
  // The same for ResumeStream: a session's running (or last) answer.
  StreamCall(chat::v1::ChatService::Stub* stub,
             std::unique_ptr<grpc::ClientContext> context,
             const chat::v1::ResumeStreamRequest& request, DeltaFn on_delta,
             StopFn stop_answer = nullptr);
  ~StreamCall() override;
  StreamCall(const StreamCall&) = delete;
  StreamCall& operator=(const StreamCall&) = delete;

  // Asks gRPC to cancel the call, then stops the answer on the server (a
  // dropped call only detaches from it: the server keeps it for a resume);
  // the call then ends with CANCELLED unless it had already finished.
  void Cancel();
  // A descriptor that becomes readable (and stays so) when the call ended.
  int done_fd() const { return done_pipe_[0]; }
  // Blocks until the call ended; its status, and the `done` event in `done`.
  grpc::Status Await(chat::v1::ChatResponse* done);

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  StreamCall(std::unique_ptr<grpc::ClientContext> context, DeltaFn on_delta,
             StopFn stop_answer);

  std::unique_ptr<grpc::ClientContext> context_;
  // gRPC keeps a pointer to the request until it has sent it; one of them
  // is used.
  chat::v1::ChatStreamRequest chat_request_;
  chat::v1::ResumeStreamRequest resume_request_;
  DeltaFn on_delta_;
  StopFn stop_answer_;
  // Written by OnReadDone only, between StartRead and its completion.
  chat::v1::ChatStreamResponse event_;
  int done_pipe_[2] = {-1, -1};

  absl::Mutex mu_;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  chat::v1::ChatResponse done_ ABSL_GUARDED_BY(mu_);
};

// The ChatService RPCs with chat-cli's metadata and deadline.
class ChatClient {
 public:
  ChatClient(std::shared_ptr<grpc::Channel> channel, std::string api_key,
             absl::Duration timeout);

  grpc::Status GetStatus(chat::v1::GetStatusResponse* response);
  grpc::Status GetHistory(const std::string& session,
                          chat::v1::GetHistoryResponse* response);
  // Every page, concatenated (at most 100 pages of 1000).
  grpc::Status ListSessions(chat::v1::ListSessionsResponse* response);
  grpc::Status ResetSession(const std::string& session,
                            chat::v1::ResetSessionResponse* response);
  grpc::Status DeleteSession(const std::string& session,
                             chat::v1::DeleteSessionResponse* response);
  grpc::Status GetStats(chat::v1::GetStatsResponse* response);
  grpc::Status CancelStream(const std::string& session,
                            chat::v1::CancelStreamResponse* response);
  // Creates an empty session (CreateSession).
  grpc::Status CreateSession(const chat::v1::CreateSessionRequest& request,
                             chat::v1::CreateSessionResponse* response);
  // Sets the session's title ("" clears it).
  grpc::Status UpdateSession(const std::string& session,
                             const std::string& title,
                             chat::v1::UpdateSessionResponse* response);
  // The first page (up to 20 hits) of a search.
  grpc::Status SearchMessages(const std::string& query,
                              chat::v1::SearchMessagesResponse* response);
  grpc::Status RegenerateTurn(const chat::v1::RegenerateTurnRequest& request,
                              chat::v1::RegenerateTurnResponse* response);
  grpc::Status EditMessage(const chat::v1::EditMessageRequest& request,
                           chat::v1::EditMessageResponse* response);
  grpc::Status SwitchBranch(const std::string& session, int turn_id,
                            chat::v1::SwitchBranchResponse* response);

  // Export and import (export_commands.cc).
  grpc::Status ExportSession(const std::string& session, bool markdown,
                             chat::v1::ExportSessionResponse* response);
  // Calls `on_session` for each session of the stream, in order; stops the
  // call early (CANCELLED) when it returns false.
  grpc::Status ExportSessions(
      const std::function<bool(const chat::v1::SessionExport&)>& on_session);
  grpc::Status ImportSession(const chat::v1::ImportSessionRequest& request,
                             chat::v1::ImportSessionResponse* response);

  // Starts streaming a reply.
  std::unique_ptr<StreamCall> StartChatStream(
      const chat::v1::ChatStreamRequest& request, StreamCall::DeltaFn on_delta);
  // Follows a session's answer from after `last_event_id` (empty: from its
  // first event), though the call that asked for it is gone.
  std::unique_ptr<StreamCall> StartResumeStream(
      const std::string& session, const std::string& last_event_id,
      StreamCall::DeltaFn on_delta);

  // The key, so error text can be scrubbed of it.
  const std::string& api_key() const { return api_key_; }

 private:
  std::unique_ptr<grpc::ClientContext> NewContext() const;
  // What Ctrl-C does to a stream of `session` besides dropping it.
  StreamCall::StopFn StopAnswerOf(const std::string& session);

  std::unique_ptr<chat::v1::ChatService::Stub> stub_;
  const std::string api_key_;
  const absl::Duration timeout_;
};

}  // namespace chat::cli

#endif  // CHAT_CLIENTS_CLI_CHAT_CLIENT_H_
