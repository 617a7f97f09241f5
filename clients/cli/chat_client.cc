#include "clients/cli/chat_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "clients/cli/tls_files.h"

namespace chat::cli {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const CliOptions& options) {
  grpc::ChannelArguments args;
  if (!options.tls) {
    return grpc::CreateCustomChannel(options.server,
                                     grpc::InsecureChannelCredentials(), args);
  }
  absl::StatusOr<TlsFiles> files = LoadTlsFiles(options);
  if (!files.ok()) return files.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = std::move(files->root_certs);
  ssl.pem_cert_chain = std::move(files->cert_chain);
  ssl.pem_private_key = std::move(files->private_key);
  if (!options.server_name.empty()) {
    args.SetSslTargetNameOverride(options.server_name);
  }
  return grpc::CreateCustomChannel(options.server, grpc::SslCredentials(ssl),
                                   args);
}

StreamCall::StreamCall(std::unique_ptr<grpc::ClientContext> context,
                       DeltaFn on_delta, StopFn stop_answer)
    : context_(std::move(context)),
      on_delta_(std::move(on_delta)),
      stop_answer_(std::move(stop_answer)) {
  if (pipe2(done_pipe_, O_CLOEXEC) != 0) {
    // Without the pipe nobody could wait for the call: a broken process.
    std::abort();
  }
}

StreamCall::StreamCall(chat::v1::ChatService::Stub* stub,
                       std::unique_ptr<grpc::ClientContext> context,
                       const chat::v1::ChatStreamRequest& request,
                       DeltaFn on_delta, StopFn stop_answer)
    : StreamCall(std::move(context), std::move(on_delta),
                 std::move(stop_answer)) {
  chat_request_ = request;
  stub->async()->ChatStream(context_.get(), &chat_request_, this);
  StartRead(&event_);
  StartCall();
}

StreamCall::StreamCall(chat::v1::ChatService::Stub* stub,
                       std::unique_ptr<grpc::ClientContext> context,
                       const chat::v1::ResumeStreamRequest& request,
                       DeltaFn on_delta, StopFn stop_answer)
    : StreamCall(std::move(context), std::move(on_delta),
                 std::move(stop_answer)) {
  resume_request_ = request;
  stub->async()->ResumeStream(context_.get(), &resume_request_, this);
  StartRead(&event_);
  StartCall();
}

StreamCall::~StreamCall() {
  close(done_pipe_[0]);
  close(done_pipe_[1]);
}

void StreamCall::Cancel() {
  context_->TryCancel();
  if (stop_answer_) stop_answer_();
}

void StreamCall::OnReadDone(bool ok) {
  if (!ok) return;  // The stream ended; OnDone follows.
  if (event_.has_delta()) {
    on_delta_(event_.delta().text());
  } else if (event_.has_done()) {
    absl::MutexLock lock(&mu_);
    done_ = event_.done();
  }
  StartRead(&event_);
}

void StreamCall::OnDone(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    status_ = status;
  }
  const char byte = 1;
  // Last: once the byte is there the owner may destroy this object
  // (Await). An empty pipe always takes one byte.
  (void)!write(done_pipe_[1], &byte, 1);
}

grpc::Status StreamCall::Await(chat::v1::ChatResponse* done) {
  // The pipe says the call ended: its byte is the last thing
  // OnDone does, so once it is readable nothing touches this object any more
  // and the owner may destroy it.
  pollfd fd = {done_pipe_[0], POLLIN, 0};
  while (poll(&fd, 1, -1) < 0 && errno == EINTR) {
  }
  absl::MutexLock lock(&mu_);
  if (done != nullptr) *done = done_;
  return status_;
}

ChatClient::ChatClient(std::shared_ptr<grpc::Channel> channel,
                       std::string api_key, absl::Duration timeout)
    : stub_(chat::v1::ChatService::NewStub(std::move(channel))),
      api_key_(std::move(api_key)),
      timeout_(timeout) {}

std::unique_ptr<grpc::ClientContext> ChatClient::NewContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout_ > absl::ZeroDuration()) {
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
  }
  if (!api_key_.empty()) {
    context->AddMetadata("authorization", absl::StrCat("Bearer ", api_key_));
  }
  return context;
}

grpc::Status ChatClient::GetStatus(chat::v1::GetStatusResponse* response) {
  auto context = NewContext();
  return stub_->GetStatus(context.get(), chat::v1::GetStatusRequest(),
                          response);
}

grpc::Status ChatClient::GetHistory(const std::string& session,
                                    chat::v1::GetHistoryResponse* response) {
  auto context = NewContext();
  chat::v1::GetHistoryRequest request;
  request.set_session_id(session);
  return stub_->GetHistory(context.get(), request, response);
}

grpc::Status ChatClient::RegenerateTurn(
    const chat::v1::RegenerateTurnRequest& request,
    chat::v1::RegenerateTurnResponse* response) {
  auto context = NewContext();
  return stub_->RegenerateTurn(context.get(), request, response);
}

grpc::Status ChatClient::EditMessage(
    const chat::v1::EditMessageRequest& request,
    chat::v1::EditMessageResponse* response) {
  auto context = NewContext();
  return stub_->EditMessage(context.get(), request, response);
}

grpc::Status ChatClient::SwitchBranch(
    const std::string& session, int turn_id,
    chat::v1::SwitchBranchResponse* response) {
  auto context = NewContext();
  chat::v1::SwitchBranchRequest request;
  request.set_session_id(session);
  request.set_turn_id(turn_id);
  return stub_->SwitchBranch(context.get(), request, response);
}

grpc::Status ChatClient::ListSessions(
    chat::v1::ListSessionsResponse* response) {
  response->Clear();
  chat::v1::ListSessionsRequest request;
  request.set_page_size(1000);
  // Bounded: a server that kept handing out tokens cannot loop us forever.
  for (int page = 0; page < 100; ++page) {
    auto context = NewContext();
    chat::v1::ListSessionsResponse one;
    grpc::Status status = stub_->ListSessions(context.get(), request, &one);
    if (!status.ok()) return status;
    for (chat::v1::SessionSummary& s : *one.mutable_sessions()) {
      *response->add_sessions() = std::move(s);
    }
    if (one.next_page_token().empty()) return grpc::Status::OK;
    request.set_page_token(one.next_page_token());
  }
  response->set_next_page_token(request.page_token());
  return grpc::Status::OK;
}

grpc::Status ChatClient::ResetSession(
    const std::string& session, chat::v1::ResetSessionResponse* response) {
  auto context = NewContext();
  chat::v1::ResetSessionRequest request;
  request.set_session_id(session);
  return stub_->ResetSession(context.get(), request, response);
}

grpc::Status ChatClient::DeleteSession(
    const std::string& session, chat::v1::DeleteSessionResponse* response) {
  auto context = NewContext();
  chat::v1::DeleteSessionRequest request;
  request.set_session_id(session);
  return stub_->DeleteSession(context.get(), request, response);
}

grpc::Status ChatClient::CancelStream(
    const std::string& session, chat::v1::CancelStreamResponse* response) {
  auto context = NewContext();
  chat::v1::CancelStreamRequest request;
  request.set_session_id(session);
  return stub_->CancelStream(context.get(), request, response);
}

grpc::Status ChatClient::CreateSession(
    const chat::v1::CreateSessionRequest& request,
    chat::v1::CreateSessionResponse* response) {
  auto context = NewContext();
  return stub_->CreateSession(context.get(), request, response);
}

grpc::Status ChatClient::UpdateSession(
    const std::string& session, const std::string& title,
    chat::v1::UpdateSessionResponse* response) {
  auto context = NewContext();
  chat::v1::UpdateSessionRequest request;
  request.set_session_id(session);
  request.set_title(title);
  return stub_->UpdateSession(context.get(), request, response);
}

grpc::Status ChatClient::SearchMessages(
    const std::string& query, chat::v1::SearchMessagesResponse* response) {
  auto context = NewContext();
  chat::v1::SearchMessagesRequest request;
  request.set_query(query);
  return stub_->SearchMessages(context.get(), request, response);
}

grpc::Status ChatClient::GetStats(chat::v1::GetStatsResponse* response) {
  auto context = NewContext();
  return stub_->GetStats(context.get(), chat::v1::GetStatsRequest(), response);
}

StreamCall::StopFn ChatClient::StopAnswerOf(const std::string& session) {
  // Ctrl-C means stop the answer: CancelStream (NOT_FOUND: it already
  // ended). The client outlives its calls.
  if (session.empty()) return nullptr;
  return [this, session] {
    chat::v1::CancelStreamResponse cancelled;
    (void)CancelStream(session, &cancelled);
  };
}

std::unique_ptr<StreamCall> ChatClient::StartChatStream(
    const chat::v1::ChatStreamRequest& request, StreamCall::DeltaFn on_delta) {
  return std::make_unique<StreamCall>(stub_.get(), NewContext(), request,
                                      std::move(on_delta),
                                      StopAnswerOf(request.session_id()));
}

std::unique_ptr<StreamCall> ChatClient::StartResumeStream(
    const std::string& session, const std::string& last_event_id,
    StreamCall::DeltaFn on_delta) {
  chat::v1::ResumeStreamRequest request;
  request.set_session_id(session);
  request.set_last_event_id(last_event_id);
  return std::make_unique<StreamCall>(stub_.get(), NewContext(), request,
                                      std::move(on_delta),
                                      StopAnswerOf(session));
}

}  // namespace chat::cli
