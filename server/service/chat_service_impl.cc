#include "server/service/chat_service_impl.h"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/time_format.h"
#include "server/engine/session_titler.h"
#include "server/engine/validation.h"
#include "server/service/call_log.h"
#include "server/service/chat_stream_reactor.h"
#include "server/service/complete_reactors.h"
#include "server/service/finish_on_pool.h"
#include "server/service/grpc_metrics_interceptor.h"
#include "server/service/grpc_status.h"
#include "server/service/proto_convert.h"
#include "server/service/rate_limit_metadata.h"

namespace chat {
namespace {

using chat::v1::ChatRequest;
using chat::v1::ChatResponse;

// The call's deadline for the engine; gRPC's "none" is a far-off time point.
absl::Time DeadlineOf(const grpc::CallbackServerContext& context) {
  std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline >=
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 10)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

// The engine's request for a Chat or ChatStream call by `caller`, with the
// call's deadline and REST's Idempotency-Key header (forwarded by the
// gateway; the engine refuses it if it differs from request_id).
template <typename Request>
ChatTurnRequest TurnRequestOf(const Request& request, const Caller& caller,
                              absl::Time deadline,
                              absl::string_view idempotency_key) {
  ChatTurnRequest turn = ToTurnRequest(request, caller.tenant);
  turn.key_id = caller.key_id;
  turn.key_limits = caller.limits;
  turn.deadline = deadline;
  turn.idempotency_key = std::string(idempotency_key);
  return turn;
}

template <typename Request>
ChatTurnRequest TurnRequestOf(const grpc::CallbackServerContext& context,
                              const Request& request, const Caller& caller) {
  absl::string_view idempotency_key;
  auto key = context.client_metadata().find("idempotency-key");
  if (key != context.client_metadata().end()) {
    idempotency_key = absl::string_view(key->second.data(), key->second.size());
  }
  return TurnRequestOf(request, caller, DeadlineOf(context), idempotency_key);
}

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;
constexpr int kDefaultSearchPageSize = 20;
constexpr int kMaxSearchPageSize = 100;
constexpr size_t kMaxSearchQueryBytes = 500;

// `info` as ListSessions shows it.
void FillSessionSummary(const store::SessionInfo& info,
                        chat::v1::SessionSummary* summary) {
  summary->set_session_id(info.session_id);
  summary->set_turns(info.turn_count);
  summary->set_created_at(FormatTimestamp(info.created_at));
  summary->set_updated_at(FormatTimestamp(info.updated_at));
  summary->set_title(info.title);
}

// A unary turn RPC (Chat, RegenerateTurn, EditMessage: `Response` has
// ChatResponse's fields) apart from how it arrived. Start() begins the turn
// once the caller is known, CancelTurn() ends it when the caller leaves, and
// Answer() sends the outcome once, after its metadata. Subclasses carry the
// call (a gRPC reactor, or ChatLocal's) and are Released once the transport
// (TransportDone) and the engine (OnComplete, or Start's refusal) are both
// done with them.
template <typename Response>
class UnaryTurn : public TurnObserver {
 public:
  UnaryTurn(ChatEngine* engine, Response* response, CallLog log)
      : engine_(engine), response_(response), call_log_(std::move(log)) {}

  // Starts the turn, or answers with `request`'s error. Called once, from
  // any thread.
  void Start(absl::StatusOr<ChatTurnRequest> request) {
    absl::Status refused;
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) refused = absl::CancelledError("the call was cancelled");
    }
    if (refused.ok() && !request.ok()) refused = request.status();
    if (refused.ok()) {
      request->traceparent = ProviderTraceparent(call_log_);
      call_log_.SetTurn(*request);
      absl::StatusOr<std::shared_ptr<TurnHandle>> turn =
          engine_->StartTurn(*std::move(request), this);
      if (turn.ok()) {
        // The turn may already have ended and the transport be done: this
        // object lives on because start_done_ is still false.
        bool cancel;
        bool all_done;
        {
          absl::MutexLock lock(&mu_);
          turn_ = *turn;
          cancel = cancelled_;  // CancelTurn ran while the turn was starting.
          start_done_ = true;
          all_done = transport_done_ && engine_done_;
        }
        if (cancel) (*turn)->Cancel();
        if (all_done) Dispose();
        return;
      }
      refused = turn.status();
    }
    LogTurnCall(call_log_, refused);
    {
      absl::MutexLock lock(&mu_);
      start_done_ = true;
    }
    FinishWithError(refused);
    Release(/*transport_side=*/false);
  }

  void OnAdmitted(const RateLimitStatus& status) override {
    // Runs before OnComplete, so before Answer.
    for (const auto& [key, value] : RateLimitMetadata(status)) {
      AddInitialMetadata(key, value);
    }
  }

  void OnDelta(absl::string_view /*text*/) override {}

  void OnComplete(absl::StatusOr<ChatTurnResult> result) override {
    LogTurnCall(call_log_, result);
    if (result.ok()) {
      FillChatResponse(*result, response_);
      Answer(absl::OkStatus());
    } else {
      FinishWithError(result.status());
    }
    Release(/*transport_side=*/false);
  }

  // The caller left: ends the turn, or the one Start is about to begin.
  // Safe from any thread, more than once, also after Answer.
  void CancelTurn() {
    std::shared_ptr<TurnHandle> turn;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      turn = turn_;
    }
    if (turn != nullptr) turn->Cancel();
  }

 protected:
  // The transport will not touch this object again.
  void TransportDone() { Release(/*transport_side=*/true); }

  virtual void AddInitialMetadata(const std::string& key,
                                  const std::string& value) = 0;
  virtual void AddTrailingMetadata(const std::string& key,
                                   const std::string& value) = 0;
  // Sends the outcome: the filled response if `status` is OK.
  virtual void Answer(const absl::Status& status) = 0;
  // Both sides are done: by default the object deletes itself.
  virtual void Dispose() { delete this; }

 private:
  void FinishWithError(const absl::Status& status) {
    for (const auto& [key, value] : RefusalMetadata(status)) {
      AddTrailingMetadata(key, value);
    }
    Answer(status);
  }

  void Release(bool transport_side) {
    bool both;
    {
      absl::MutexLock lock(&mu_);
      (transport_side ? transport_done_ : engine_done_) = true;
      both = transport_done_ && engine_done_ && start_done_;
    }
    if (both) Dispose();
  }

  ChatEngine* const engine_;
  Response* const response_;
  // Completed by Start, logged when the turn ends; the engine's callbacks
  // order the accesses.
  CallLog call_log_;
  absl::Mutex mu_;
  // Set once the engine accepted the turn.
  std::shared_ptr<TurnHandle> turn_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool transport_done_ ABSL_GUARDED_BY(mu_) = false;
  bool engine_done_ ABSL_GUARDED_BY(mu_) = false;
  // Start has returned from the engine: until then the turn may end (and
  // the transport finish the call) on other threads while Start still needs
  // `this`.
  bool start_done_ ABSL_GUARDED_BY(mu_) = false;
};

// Serves one unary turn RPC over gRPC. Deletes itself once gRPC has called
// OnDone and the engine has called OnComplete (or Start refused the call),
// whichever comes last.
template <typename Response = ChatResponse>
class ChatUnaryReactor final : public grpc::ServerUnaryReactor,
                               public UnaryTurn<Response> {
 public:
  ChatUnaryReactor(grpc::CallbackServerContext* context, ChatEngine* engine,
                   Response* response, absl::string_view rpc = "Chat")
      : UnaryTurn<Response>(engine, response, StartCallLog(*context, rpc)),
        context_(context) {}

  void OnCancel() override { this->CancelTurn(); }
  void OnDone() override { this->TransportDone(); }

 private:
  void AddInitialMetadata(const std::string& key,
                          const std::string& value) override {
    context_->AddInitialMetadata(key, value);
  }
  void AddTrailingMetadata(const std::string& key,
                           const std::string& value) override {
    context_->AddTrailingMetadata(key, value);
  }
  void Answer(const absl::Status& status) override {
    Finish(ToGrpcStatus(status));
  }

  grpc::CallbackServerContext* const context_;
};

// One ChatLocal call: the outcome goes to `done` instead of a gRPC call,
// counted in GrpcMetrics as the RPC is. Owned by shared_ptrs: its own until
// both sides are done, and the cancel ChatLocal returns, which may outlive
// the answer.
//
// The answer is held in a base of its own, built before the UnaryTurn that
// is given its response.
struct LocalAnswerHolder {
  LocalTurnAnswer answer_;
};
class LocalChatCall final : private LocalAnswerHolder,
                            public UnaryTurn<ChatResponse> {
 public:
  static std::shared_ptr<LocalChatCall> Create(
      ChatEngine* engine, const MetadataPairs& metadata,
      std::function<void(LocalTurnAnswer)> done) {
    std::shared_ptr<LocalChatCall> call(
        new LocalChatCall(engine, metadata, std::move(done)));
    call->self_ = call;
    return call;
  }

 private:
  LocalChatCall(ChatEngine* engine, const MetadataPairs& metadata,
                std::function<void(LocalTurnAnswer)> done)
      : UnaryTurn<ChatResponse>(engine, &answer_.response,
                                StartCallLog(metadata, "Chat")),
        done_(std::move(done)) {
    counter_.emplace(kChatMethod, /*streaming=*/false);
  }

  void AddInitialMetadata(const std::string& key,
                          const std::string& value) override {
    answer_.initial_metadata.emplace_back(key, value);
  }
  void AddTrailingMetadata(const std::string& key,
                           const std::string& value) override {
    answer_.trailing_metadata.emplace_back(key, value);
  }
  void Answer(const absl::Status& status) override {
    // gRPC's codes are absl's, number for number. The call stops being open
    // as its answer leaves, as an RPC's does at its status.
    counter_->Count(static_cast<grpc::StatusCode>(status.code()));
    counter_.reset();
    answer_.status = status;
    std::function<void(LocalTurnAnswer)> done = std::move(done_);
    done(std::move(answer_));
    TransportDone();
  }
  void Dispose() override {
    // Last: may destroy this object.
    std::shared_ptr<LocalChatCall> self = std::move(self_);
  }

  static constexpr char kChatMethod[] = "/chat.v1.ChatService/Chat";

  // answer_, done_ and counter_ are used by the engine's callbacks (or
  // Start's refusal), which never overlap and end with Answer.
  std::function<void(LocalTurnAnswer)> done_;
  std::optional<GrpcCallCounter> counter_;
  std::shared_ptr<LocalChatCall> self_;
};

// Fills `response` (GetHistoryResponse, or SwitchBranchResponse with the
// same fields) with the session's active branch.
template <typename Response>
absl::Status FillHistory(store::ConversationStore& store,
                         const store::SessionKey& key, Response* response) {
  absl::StatusOr<store::SessionInfo> session = store.GetSession(key);
  if (absl::IsNotFound(session.status())) {
    return absl::NotFoundError(
        absl::StrCat("session ", key.session_id, " not found"));
  }
  if (!session.ok()) return session.status();
  absl::StatusOr<std::vector<store::StoredMessage>> history =
      store.LoadHistory(key);
  if (!history.ok()) return history.status();
  response->set_session_id(key.session_id);
  response->set_turn_count(session->turn_count);
  response->set_system_prompt(session->system_prompt);
  response->set_created_at(FormatTimestamp(session->created_at));
  response->set_title(session->title);
  response->mutable_messages()->Reserve(static_cast<int>(history->size()));
  for (store::StoredMessage& m : *history) {
    chat::v1::Message* message = response->add_messages();
    message->set_role(std::move(m.role));
    message->set_content(std::move(m.content));
    message->set_timestamp(FormatTimestamp(m.created_at));
    message->set_turn_id(m.turn_id);
    for (size_t i = 0; i < m.sibling_turn_ids.size(); ++i) {
      message->add_sibling_turn_ids(m.sibling_turn_ids[i]);
      if (m.sibling_turn_ids[i] == m.turn_id) {
        message->set_sibling_index(static_cast<int32_t>(i));
      }
    }
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A unary RPC that runs one turn (Chat, RegenerateTurn, EditMessage): the
// turn starts once the caller is authenticated. `retry_on_conflict`: the
// turn may be retried unseen when another turn of the session got in first.
template <typename Request, typename Response>
grpc::ServerUnaryReactor* StartUnaryTurn(grpc::CallbackServerContext* context,
                                         const Request* request,
                                         Response* response, ChatEngine* engine,
                                         Authenticator* authenticator,
                                         absl::string_view rpc,
                                         bool retry_on_conflict = false) {
  auto* reactor =
      new ChatUnaryReactor<Response>(context, engine, response, rpc);
  authenticator->Authenticate(
      CredentialsOf(*context), [reactor, context, request, retry_on_conflict](
                                   absl::StatusOr<Caller> caller) {
        if (!caller.ok()) return reactor->Start(caller.status());
        ChatTurnRequest turn = TurnRequestOf(*context, *request, *caller);
        turn.retry_on_conflict = retry_on_conflict;
        reactor->Start(std::move(turn));
      });
  return reactor;
}

// Authenticates a turn call made in this process (ChatLocal,
// ChatStreamLocal) as its RPC would be, and gives `start` the turn of
// `request` with `deadline` and the Idempotency-Key in `metadata`, or the
// refusal. `start` runs once, on any thread, possibly before this returns.
template <typename Request>
void AuthenticateLocalTurn(
    Authenticator* authenticator, const MetadataPairs& metadata,
    Request request, absl::Time deadline,
    std::function<void(absl::StatusOr<ChatTurnRequest>)> start) {
  authenticator->Authenticate(
      LocalCallCredentials(metadata),
      [request = std::move(request), deadline,
       idempotency_key = MetadataValue(metadata, "idempotency-key"),
       start = std::move(start)](absl::StatusOr<Caller> caller) {
        if (!caller.ok()) return start(caller.status());
        start(TurnRequestOf(request, *caller, deadline, idempotency_key));
      });
}

// Attaches `call` to the answer a ResumeStream `request` names, for
// `caller`, or ends it with the refusal. `last_event_id_header` is REST's
// Last-Event-ID (what a browser's EventSource sends on reconnecting),
// forwarded by the gateway; the request's field wins.
void ResumeFor(StreamTurn* call, const absl::StatusOr<Caller>& caller,
               const chat::v1::ResumeStreamRequest& request,
               absl::string_view last_event_id_header) {
  if (!caller.ok()) return call->Resume(caller.status(), "");
  if (absl::Status s = ValidateSessionId(request.session_id()); !s.ok()) {
    return call->Resume(s, "");
  }
  std::string last_event_id = request.last_event_id().empty()
                                  ? std::string(last_event_id_header)
                                  : request.last_event_id();
  call->Resume(store::SessionKey{caller->tenant, request.session_id()},
               std::move(last_event_id));
}

// The cancel of a local stream call, as ChatStreamLocal and
// ResumeStreamLocal return it. Weak: the call lives until both sides are
// done with it, not as long as whoever holds its cancel.
std::function<void(bool expired)> CancelOf(
    const std::shared_ptr<LocalChatStreamCall>& call) {
  return [weak = std::weak_ptr<LocalChatStreamCall>(call)](bool expired) {
    if (std::shared_ptr<LocalChatStreamCall> call = weak.lock()) {
      call->CancelCall(expired);
    }
  };
}

}  // namespace

ChatServiceImpl::ChatServiceImpl(ChatEngine* engine,
                                 store::ConversationStore* store,
                                 ThreadPool* pool, Authenticator* authenticator,
                                 ModelCatalog models,
                                 ResumableStreamOptions stream_options)
    : engine_(engine),
      store_(store),
      pool_(pool),
      authenticator_(authenticator),
      streams_(std::make_unique<ResumableStreams>(
          engine,
          store->streams() != nullptr ? store->streams() : &local_streams_,
          pool, stream_options)),
      models_(std::move(models)) {}

absl::Status ChatServiceImpl::ChargeSessionWrite(
    const Caller& caller, grpc::CallbackServerContext& context) {
  absl::StatusOr<RateLimitStatus> standing =
      engine_->ChargeSessionWrite(caller.key_id, caller.limits);
  if (!standing.ok()) return standing.status();  // FinishOnPool says why.
  for (const auto& [key, value] : RateLimitMetadata(*standing)) {
    context.AddInitialMetadata(key, value);
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ChatServiceImpl::GetStatus(
    grpc::CallbackServerContext* context,
    const chat::v1::GetStatusRequest* /*request*/,
    chat::v1::GetStatusResponse* response) {
  response->set_status("ok");
  response->set_service("chat-api");
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* ChatServiceImpl::Chat(
    grpc::CallbackServerContext* context, const ChatRequest* request,
    ChatResponse* response) {
  // No delta is shown, so a turn that lost a race may be retried unseen.
  return StartUnaryTurn(context, request, response, engine_, authenticator_,
                        "Chat", /*retry_on_conflict=*/true);
}

std::function<void()> ChatServiceImpl::ChatLocal(
    chat::v1::ChatRequest request, const MetadataPairs& metadata,
    absl::Time deadline, std::function<void(LocalTurnAnswer)> done) {
  std::shared_ptr<LocalChatCall> call =
      LocalChatCall::Create(engine_, metadata, std::move(done));
  AuthenticateLocalTurn(authenticator_, metadata, std::move(request), deadline,
                        [call](absl::StatusOr<ChatTurnRequest> turn) {
                          // As Chat: no delta is shown.
                          if (turn.ok()) turn->retry_on_conflict = true;
                          call->Start(std::move(turn));
                        });
  // Weak: the call lives until both sides are done with it, not as long as
  // whoever holds its cancel.
  return [weak = std::weak_ptr<LocalChatCall>(call)] {
    if (std::shared_ptr<LocalChatCall> call = weak.lock()) call->CancelTurn();
  };
}

std::function<void(bool expired)> ChatServiceImpl::ChatStreamLocal(
    chat::v1::ChatStreamRequest request, const MetadataPairs& metadata,
    absl::Time deadline, std::shared_ptr<LocalStreamReceiver> receiver) {
  std::shared_ptr<LocalChatStreamCall> call = LocalChatStreamCall::Create(
      LocalChatStreamCall::kChatStream, streams_.get(), std::move(receiver));
  call->set_call_log(StartCallLog(metadata, "ChatStream"));
  AuthenticateLocalTurn(authenticator_, metadata, std::move(request), deadline,
                        [call](absl::StatusOr<ChatTurnRequest> turn) {
                          call->Start(std::move(turn));
                        });
  return CancelOf(call);
}

std::function<void(bool expired)> ChatServiceImpl::ResumeStreamLocal(
    chat::v1::ResumeStreamRequest request, const MetadataPairs& metadata,
    std::shared_ptr<LocalStreamReceiver> receiver) {
  std::shared_ptr<LocalChatStreamCall> call = LocalChatStreamCall::Create(
      LocalChatStreamCall::kResumeStream, streams_.get(), std::move(receiver));
  call->set_call_log(StartCallLog(metadata, "ResumeStream"));
  authenticator_->Authenticate(
      LocalCallCredentials(metadata),
      [call, request = std::move(request),
       header = MetadataValue(metadata, "last-event-id")](
          absl::StatusOr<Caller> caller) {
        ResumeFor(call.get(), caller, request, header);
      });
  return CancelOf(call);
}

grpc::ServerWriteReactor<chat::v1::ChatStreamResponse>*
ChatServiceImpl::ChatStream(grpc::CallbackServerContext* context,
                            const chat::v1::ChatStreamRequest* request) {
  auto* reactor = new ChatStreamReactor(context, streams_.get());
  reactor->set_call_log(StartCallLog(*context, "ChatStream"));
  authenticator_->Authenticate(
      CredentialsOf(*context),
      [reactor, context, request](absl::StatusOr<Caller> caller) {
        if (!caller.ok()) return reactor->Start(caller.status());
        reactor->Start(TurnRequestOf(*context, *request, *caller));
      });
  return reactor;
}

grpc::ServerUnaryReactor* ChatServiceImpl::GetHistory(
    grpc::CallbackServerContext* context,
    const chat::v1::GetHistoryRequest* request,
    chat::v1::GetHistoryResponse* response) {
  return FinishOnPool(
      context, "GetHistory", authenticator_, pool_,
      [this, request, response](const Caller& caller) -> absl::Status {
        if (absl::Status s = ValidateSessionId(request->session_id());
            !s.ok()) {
          return s;
        }
        return FillHistory(*store_, {caller.tenant, request->session_id()},
                           response);
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::DeleteSession(
    grpc::CallbackServerContext* context,
    const chat::v1::DeleteSessionRequest* request,
    chat::v1::DeleteSessionResponse* response) {
  return FinishOnPool(
      context, "DeleteSession", authenticator_, pool_,
      [this, request, response](const Caller& caller) -> absl::Status {
        if (absl::Status s = ValidateSessionId(request->session_id());
            !s.ok()) {
          return s;
        }
        const store::SessionKey key{caller.tenant, request->session_id()};
        absl::StatusOr<bool> deleted = store_->DeleteSession(key);
        if (!deleted.ok()) return deleted.status();
        response->set_status(*deleted ? "cleared" : "not_found");
        response->set_session_id(key.session_id);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::ResetSession(
    grpc::CallbackServerContext* context,
    const chat::v1::ResetSessionRequest* request,
    chat::v1::ResetSessionResponse* response) {
  return FinishOnPool(
      context, "ResetSession", authenticator_, pool_,
      [this, request, response](const Caller& caller) -> absl::Status {
        if (absl::Status s = ValidateSessionId(request->session_id());
            !s.ok()) {
          return s;
        }
        const store::SessionKey key{caller.tenant, request->session_id()};
        absl::StatusOr<int> previous = store_->ResetSession(key, absl::Now());
        response->set_session_id(key.session_id);
        if (absl::IsNotFound(previous.status())) {
          response->set_status("not_found");
          return absl::OkStatus();
        }
        if (!previous.ok()) return previous.status();
        response->set_status("reset");
        response->set_previous_turns(*previous);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::ListSessions(
    grpc::CallbackServerContext* context,
    const chat::v1::ListSessionsRequest* request,
    chat::v1::ListSessionsResponse* response) {
  return FinishOnPool(
      context, "ListSessions", authenticator_, pool_,
      [this, request, response](const Caller& caller) -> absl::Status {
        int page_size = request->page_size();
        if (page_size < 0 || page_size > kMaxPageSize) {
          return absl::InvalidArgumentError(absl::StrCat(
              "page_size must be between 0 and ", kMaxPageSize, " (0 means ",
              kDefaultPageSize, "); got ", page_size));
        }
        if (page_size == 0) page_size = kDefaultPageSize;
        absl::StatusOr<store::SessionPage> page = store_->ListSessions(
            caller.tenant, page_size, request->page_token());
        if (!page.ok()) return page.status();
        for (const store::SessionInfo& info : page->sessions) {
          FillSessionSummary(info, response->add_sessions());
        }
        response->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::GetStats(
    grpc::CallbackServerContext* context,
    const chat::v1::GetStatsRequest* /*request*/,
    chat::v1::GetStatsResponse* response) {
  return FinishOnPool(
      context, "GetStats", authenticator_, pool_,
      [this, response](const Caller& caller) -> absl::Status {
        absl::StatusOr<store::StoreStats> stats =
            store_->GetStats(caller.tenant);
        if (!stats.ok()) return stats.status();
        response->set_total_sessions(stats->total_sessions);
        response->set_total_messages(stats->total_messages);
        response->set_avg_messages_per_session(
            stats->total_sessions == 0
                ? 0.0
                : static_cast<double>(stats->total_messages) /
                      static_cast<double>(stats->total_sessions));
        response->set_total_input_tokens(stats->total_input_tokens);
        response->set_total_output_tokens(stats->total_output_tokens);
        if (stats->total_cost_usd.has_value()) {
          response->set_total_cost_usd(*stats->total_cost_usd);
        }
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<chat::v1::ChatStreamResponse>*
ChatServiceImpl::ResumeStream(grpc::CallbackServerContext* context,
                              const chat::v1::ResumeStreamRequest* request) {
  auto* reactor = new ChatStreamReactor(context, streams_.get());
  reactor->set_call_log(StartCallLog(*context, "ResumeStream"));
  authenticator_->Authenticate(
      CredentialsOf(*context),
      [reactor, context, request](absl::StatusOr<Caller> caller) {
        auto header = context->client_metadata().find("last-event-id");
        ResumeFor(reactor, caller, *request,
                  header != context->client_metadata().end()
                      ? absl::string_view(header->second.data(),
                                          header->second.size())
                      : absl::string_view());
      });
  return reactor;
}

grpc::ServerUnaryReactor* ChatServiceImpl::CancelStream(
    grpc::CallbackServerContext* context,
    const chat::v1::CancelStreamRequest* request,
    chat::v1::CancelStreamResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  authenticator_->Authenticate(
      CredentialsOf(*context), [this, reactor, request, response,
                                log = StartCallLog(*context, "CancelStream")](
                                   absl::StatusOr<Caller> caller) mutable {
        absl::Status refused = caller.status();
        if (refused.ok()) refused = ValidateSessionId(request->session_id());
        if (!refused.ok()) {
          LogCall(log, refused);
          reactor->Finish(ToGrpcStatus(refused));
          return;
        }
        log.tenant = caller->tenant;
        log.key_id = caller->key_id;
        streams_->Cancel(
            store::SessionKey{caller->tenant, request->session_id()},
            [reactor, request, response,
             log = std::move(log)](absl::Status status) {
              if (status.ok()) {
                response->set_session_id(request->session_id());
                response->set_status("cancelled");
              }
              LogCall(log, status);
              reactor->Finish(ToGrpcStatus(status));
            });
      });
  return reactor;
}

grpc::ServerUnaryReactor* ChatServiceImpl::Complete(
    grpc::CallbackServerContext* context,
    const chat::v1::CompleteRequest* request,
    chat::v1::CompleteResponse* response) {
  auto* reactor = new CompleteUnaryReactor(context, engine_, response);
  authenticator_->Authenticate(
      CredentialsOf(*context),
      [reactor, context, request](absl::StatusOr<Caller> caller) {
        if (!caller.ok()) return reactor->Start(caller.status());
        ChatTurnRequest turn = ToStatelessTurnRequest(*request, caller->tenant);
        turn.key_id = caller->key_id;
        turn.key_limits = caller->limits;
        turn.deadline = DeadlineOf(*context);
        reactor->Start(std::move(turn));
      });
  return reactor;
}

grpc::ServerWriteReactor<chat::v1::CompleteStreamResponse>*
ChatServiceImpl::CompleteStream(
    grpc::CallbackServerContext* context,
    const chat::v1::CompleteStreamRequest* request) {
  auto* reactor = new CompleteStreamReactor(context, engine_);
  authenticator_->Authenticate(
      CredentialsOf(*context),
      [reactor, context, request](absl::StatusOr<Caller> caller) {
        if (!caller.ok()) return reactor->Start(caller.status());
        ChatTurnRequest turn = ToStatelessTurnRequest(*request, caller->tenant);
        turn.key_id = caller->key_id;
        turn.key_limits = caller->limits;
        turn.deadline = DeadlineOf(*context);
        reactor->Start(std::move(turn));
      });
  return reactor;
}

grpc::ServerUnaryReactor* ChatServiceImpl::ListModels(
    grpc::CallbackServerContext* context,
    const chat::v1::ListModelsRequest* /*request*/,
    chat::v1::ListModelsResponse* response) {
  return FinishOnPool(context, "ListModels", authenticator_, pool_,
                      [this, response](const Caller& caller) -> absl::Status {
                        const std::vector<std::string>& server_allowed =
                            engine_->options().limits.allowed_models;
                        auto server_serves = [&](const std::string& model) {
                          return server_allowed.empty() ||
                                 absl::c_linear_search(server_allowed, model);
                        };
                        // A key limited to some models may use those (the ones
                        // the server allows); any other key, what the server
                        // serves.
                        const std::vector<std::string>& key_models =
                            caller.limits.allowed_models;
                        for (const std::string& model :
                             key_models.empty() ? models_.models : key_models) {
                          if (server_serves(model)) response->add_models(model);
                        }
                        response->set_default_model(models_.default_model);
                        return absl::OkStatus();
                      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::UpdateSession(
    grpc::CallbackServerContext* context,
    const chat::v1::UpdateSessionRequest* request,
    chat::v1::UpdateSessionResponse* response) {
  return FinishOnPool(
      context, "UpdateSession", authenticator_, pool_,
      [this, context, request, response](const Caller& caller) -> absl::Status {
        if (absl::Status s = ValidateSessionId(request->session_id());
            !s.ok()) {
          return s;
        }
        const store::SessionKey key{caller.tenant, request->session_id()};
        if (request->has_title()) {
          absl::StatusOr<std::string> title = NormalizeTitle(request->title());
          if (!title.ok()) return title.status();
          if (absl::Status s = ChargeSessionWrite(caller, *context); !s.ok()) {
            return s;
          }
          absl::StatusOr<bool> set =
              store_->SetTitle(key, *title, /*only_if_untitled=*/false);
          if (!set.ok()) return set.status();
        }
        absl::StatusOr<store::SessionInfo> session = store_->GetSession(key);
        if (!session.ok()) return session.status();
        FillSessionSummary(*session, response->mutable_session());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::SearchMessages(
    grpc::CallbackServerContext* context,
    const chat::v1::SearchMessagesRequest* request,
    chat::v1::SearchMessagesResponse* response) {
  return FinishOnPool(
      context, "SearchMessages", authenticator_, pool_,
      [this, request, response](const Caller& caller) -> absl::Status {
        const std::string& query = request->query();
        if (absl::StripAsciiWhitespace(query).empty()) {
          return absl::InvalidArgumentError("query must not be empty");
        }
        if (query.size() > kMaxSearchQueryBytes) {
          return absl::InvalidArgumentError(
              absl::StrCat("query must be at most ", kMaxSearchQueryBytes,
                           " bytes, got ", query.size()));
        }
        int page_size = request->page_size();
        if (page_size < 0 || page_size > kMaxSearchPageSize) {
          return absl::InvalidArgumentError(absl::StrCat(
              "page_size must be between 0 and ", kMaxSearchPageSize,
              " (0 means ", kDefaultSearchPageSize, "); got ", page_size));
        }
        if (page_size == 0) page_size = kDefaultSearchPageSize;
        absl::StatusOr<store::SearchPage> page = store_->SearchMessages(
            caller.tenant, query, page_size, request->page_token());
        if (!page.ok()) return page.status();
        response->mutable_hits()->Reserve(static_cast<int>(page->hits.size()));
        for (store::SearchHit& hit : page->hits) {
          chat::v1::SearchHit* out = response->add_hits();
          out->set_session_id(std::move(hit.session_id));
          out->set_session_title(std::move(hit.session_title));
          out->set_message_index(hit.message_index);
          out->set_role(std::move(hit.role));
          out->set_snippet(std::move(hit.snippet));
          out->set_timestamp(FormatTimestamp(hit.created_at));
        }
        response->set_next_page_token(page->next_page_token);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* ChatServiceImpl::RegenerateTurn(
    grpc::CallbackServerContext* context,
    const chat::v1::RegenerateTurnRequest* request,
    chat::v1::RegenerateTurnResponse* response) {
  return StartUnaryTurn(context, request, response, engine_, authenticator_,
                        "RegenerateTurn");
}

grpc::ServerUnaryReactor* ChatServiceImpl::EditMessage(
    grpc::CallbackServerContext* context,
    const chat::v1::EditMessageRequest* request,
    chat::v1::EditMessageResponse* response) {
  return StartUnaryTurn(context, request, response, engine_, authenticator_,
                        "EditMessage");
}

grpc::ServerUnaryReactor* ChatServiceImpl::SwitchBranch(
    grpc::CallbackServerContext* context,
    const chat::v1::SwitchBranchRequest* request,
    chat::v1::SwitchBranchResponse* response) {
  return FinishOnPool(
      context, "SwitchBranch", authenticator_, pool_,
      [this, context, request, response](const Caller& caller) -> absl::Status {
        if (absl::Status s = ValidateSessionId(request->session_id());
            !s.ok()) {
          return s;
        }
        if (absl::Status s = ChargeSessionWrite(caller, *context); !s.ok()) {
          return s;
        }
        const store::SessionKey key{caller.tenant, request->session_id()};
        absl::StatusOr<int> switched =
            store_->SwitchBranch(key, request->turn_id());
        if (!switched.ok()) return switched.status();
        return FillHistory(*store_, key, response);
      });
}

}  // namespace chat
