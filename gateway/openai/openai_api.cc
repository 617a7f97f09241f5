#include "gateway/openai/openai_api.h"

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "chat/v1/chat.pb.h"
#include "gateway/openai/openai_responses.h"
#include "gateway/openai/openai_translate.h"
#include "gateway/transcode/backend_call.h"
#include "gateway/transcode/metadata.h"
#include "gateway/transcode/status_mapping.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace chat::gateway {
namespace {

using google::protobuf::Message;

constexpr absl::string_view kCompletionsPath = "/v1/chat/completions";
constexpr absl::string_view kModelsPath = "/v1/models";
constexpr char kComplete[] = "/chat.v1.ChatService/Complete";
constexpr char kCompleteStream[] = "/chat.v1.ChatService/CompleteStream";
constexpr char kListModels[] = "/chat.v1.ChatService/ListModels";

void AppendHeaders(HttpHeaders more, HttpHeaders* headers) {
  for (auto& h : more) headers->push_back(std::move(h));
}

grpc::ByteBuffer Serialize(const Message& message) {
  grpc::ByteBuffer buffer;
  bool own_buffer = false;
  grpc::Status status =
      grpc::GenericSerialize<grpc::ProtoBufferWriter, Message>(message, &buffer,
                                                               &own_buffer);
  // Serializing a message we built cannot fail unless this program is wrong.
  if (!status.ok()) std::abort();
  return buffer;
}

bool Parse(const grpc::ByteBuffer& buffer, Message* message) {
  grpc::ByteBuffer view(buffer);  // The reader consumes its buffer.
  grpc::ProtoBufferReader reader(&view);
  return reader.status().ok() && message->ParseFromZeroCopyStream(&reader);
}

int64_t UnixNow() { return absl::ToUnixSeconds(absl::Now()); }

// An OpenAI-shaped error from a failed call, with the rate-limit headers
// chat-server sent with it.
void RespondCallError(const std::shared_ptr<HttpExchange>& exchange,
                      HttpHeaders headers, const grpc::Status& status,
                      HttpHeaders limit_headers) {
  HttpError error = ToHttpError(status);
  AppendHeaders(std::move(limit_headers), &headers);
  AppendHeaders(ErrorHeaders(error), &headers);
  headers.emplace_back("Content-Type", "application/json");
  exchange->Respond(error.http_status, std::move(headers),
                    OpenAiErrorBody(ToOpenAiError(error)));
}

// A call (its deadline, the caller's credentials and trace as metadata,
// cancelled when the HTTP client leaves) and its current attempt's context.
struct CallContext {
  std::shared_ptr<BackendCall> call;
  std::shared_ptr<grpc::ClientContext> context;
};

CallContext NewCallContext(const std::shared_ptr<HttpExchange>& exchange,
                           const std::string& request_id,
                           const HttpHeaders& headers, absl::Duration timeout) {
  std::string traceparent;
  for (const auto& [name, value] : headers) {
    if (name == "traceparent") traceparent = value;
  }
  BackendCall::Metadata metadata;
  for (auto& [key, value] :
       ForwardedMetadata(exchange->request(), request_id,
                         exchange->client_address(), traceparent)) {
    // Idempotency-Key names a turn of a session; these calls have none.
    if (key == "idempotency-key") continue;
    metadata.emplace_back(std::move(key), std::move(value));
  }
  CallContext call;
  call.call =
      std::make_shared<BackendCall>(absl::Now() + timeout, std::move(metadata));
  call.context = call.call->NewAttempt();
  exchange->OnClientGone(
      [backend_call = call.call] { backend_call->ClientGone(); });
  return call;
}

// One unary call; `done` gets the status and the answer's buffer.
struct UnaryCall {
  CallContext call;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  // Contexts of failed attempts, kept until the call ends rather than
  // destroyed inside their own completion callback.
  std::vector<std::shared_ptr<grpc::ClientContext>> failed_attempts;
};

// Starts the current attempt of `unary`, and the next one while no backend
// takes it (BackendCalls::Resends).
void StartAttempt(BackendCalls* backends, std::shared_ptr<UnaryCall> unary,
                  const char* method,
                  std::function<void(const grpc::Status&, UnaryCall&)> done) {
  backends->CallStarted(unary->call.context.get());
  // Taken before `unary` moves into the closure.
  const BackendCall& call = *unary->call.call;
  grpc::ClientContext& context = *unary->call.context;
  backends->StartOnBackend(
      call, context,
      [backends, unary = std::move(unary), method,
       done = std::move(done)](grpc::GenericStub& stub) {
        stub.UnaryCall(unary->call.context.get(), method, grpc::StubOptions(),
                       &unary->request, &unary->response,
                       [backends, unary, method, done](grpc::Status status) {
                         const std::shared_ptr<grpc::ClientContext> attempt =
                             unary->call.context;
                         if (backends->Resends(*unary->call.call, status)) {
                           unary->failed_attempts.push_back(attempt);
                           unary->call.context = unary->call.call->Resend();
                           StartAttempt(backends, unary, method, done);
                         } else {
                           done(backends->ClientVisibleStatus(status), *unary);
                         }
                         // Last: the next attempt is counted in flight before
                         // this one stops being, and the answer is written
                         // before the gateway may see no call in flight.
                         backends->CallFinished(attempt.get());
                       });
      });
}

void StartUnary(BackendCalls* backends, CallContext call, const char* method,
                const Message& request,
                std::function<void(const grpc::Status&, UnaryCall&)> done) {
  auto unary = std::make_shared<UnaryCall>();
  unary->call = std::move(call);
  unary->request = Serialize(request);
  StartAttempt(backends, std::move(unary), method, std::move(done));
}

HttpHeaders LimitHeaders(grpc::ClientContext& context) {
  return ResponseHeadersFromMetadata(&context.GetServerInitialMetadata(),
                                     &context.GetServerTrailingMetadata());
}

// One unary call whose answer is parsed into `Response`; `done` gets the
// status (INTERNAL if the answer did not parse), the answer and the
// rate-limit headers chat-server sent.
template <typename Response>
void CallBackend(
    BackendCalls* backends, const std::shared_ptr<HttpExchange>& exchange,
    const std::string& request_id, const HttpHeaders& headers,
    absl::Duration timeout, const char* method, const Message& request,
    std::function<void(const grpc::Status&, Response&, HttpHeaders)> done) {
  StartUnary(
      backends, NewCallContext(exchange, request_id, headers, timeout), method,
      request,
      [done = std::move(done)](const grpc::Status& status, UnaryCall& unary) {
        HttpHeaders limits = LimitHeaders(*unary.call.context);
        Response response;
        grpc::Status result = status;
        if (result.ok() && !Parse(unary.response, &response)) {
          result = grpc::Status(grpc::StatusCode::INTERNAL,
                                "the backend's answer did not parse");
        }
        done(result, response, std::move(limits));
      });
}

// A server-streaming call whose events become an OpenAI event stream
// (Server-Sent Events). As the gateway's StreamCall, the next read starts
// only once the previous event is written, and the HTTP answer starts only
// with the first event, so a refusal (401, 429) is an ordinary HTTP error
// with its headers. A client that leaves cancels the call, and chat-server
// cancels the provider request. Subclasses say what each event is in
// OpenAI's shapes. Deletes itself in OnDone.
class OpenAiEventStream
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Calls `method` (a server-streaming RPC) with the request.
  void Start(const char* method) {
    method_ = method;
    backends_->CallStarted(call_.context.get());
    backends_->StartOnBackend(
        *call_.call, *call_.context, [this, method](grpc::GenericStub& stub) {
          stub.PrepareBidiStreamingCall(call_.context.get(), method,
                                        grpc::StubOptions(), this);
          StartWriteLast(&request_, grpc::WriteOptions());
          StartCall();
        });
  }

 protected:
  OpenAiEventStream(BackendCalls* backends, CallContext call,
                    std::shared_ptr<HttpExchange> exchange, HttpHeaders headers,
                    grpc::ByteBuffer request)
      : backends_(backends),
        call_(std::move(call)),
        exchange_(std::move(exchange)),
        headers_(std::move(headers)),
        request_(std::move(request)) {}
  // The next attempt of `failed`'s call, which no backend took (a reactor
  // serves one call). Nothing was translated yet, so the state is as new.
  struct NextAttemptOf {
    const OpenAiEventStream& failed;
  };
  explicit OpenAiEventStream(NextAttemptOf next)
      : backends_(next.failed.backends_),
        call_{next.failed.call_.call, next.failed.call_.call->Resend()},
        exchange_(next.failed.exchange_),
        headers_(next.failed.headers_),
        request_(next.failed.request_) {}
  OpenAiEventStream(const OpenAiEventStream&) = delete;
  OpenAiEventStream& operator=(const OpenAiEventStream&) = delete;
  ~OpenAiEventStream() override = default;

  // This stream's next attempt, of its subclass (NextAttemptOf).
  virtual OpenAiEventStream* NextAttempt() const = 0;

  // The stream's text for one event of the call; `first` for the call's
  // first event. nullopt if the event does not parse: the call is cancelled.
  virtual std::optional<std::string> Translate(const grpc::ByteBuffer& event,
                                               bool first) = 0;
  // What follows the last event when the call succeeded (may be empty).
  virtual std::string Trailer() = 0;
  // The event reporting a failure once the stream has started (the status
  // line is sent), which OpenAI's SDKs raise as an APIError.
  virtual std::string ErrorEvent(const grpc::Status& status) = 0;

 private:
  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;  // The call failed: OnDone says how.
    initial_metadata_ = true;
    StartRead(&response_);
  }

  void OnWriteDone(bool /*ok*/) override {}

  void OnReadDone(bool ok) override {
    if (!ok) return;  // End of stream or failure: OnDone says which.
    std::optional<std::string> out = Translate(response_, !started_);
    if (!out.has_value()) {
      call_.context->TryCancel();
      StartRead(&response_);
      return;
    }
    EnsureStarted();
    // A hold keeps the call from finishing while the write is pending (see
    // StreamCall in gateway/app/gateway.cc).
    AddHold();
    // A failed write is the client leaving, which the exchange reports too:
    // BackendCall::ClientGone cancels the call.
    exchange_->Write(*std::move(out), [this](bool /*written*/) {
      StartRead(&response_);
      RemoveHold();
    });
  }

  void OnDone(const grpc::Status& grpc_status) override {
    if (!initial_metadata_ && backends_->Resends(*call_.call, grpc_status)) {
      // Counted in flight before this attempt stops being.
      NextAttempt()->Start(method_);
      backends_->CallFinished(call_.context.get());
      delete this;
      return;
    }
    const grpc::Status status = backends_->ClientVisibleStatus(grpc_status);
    if (status.ok()) {
      EnsureStarted();
      exchange_->Write(Trailer(), nullptr);
      exchange_->FinishStream();
    } else if (!started_) {
      RespondCallError(
          exchange_, std::move(headers_), status,
          ResponseHeadersFromMetadata(
              initial_metadata_ ? &call_.context->GetServerInitialMetadata()
                                : nullptr,
              &call_.context->GetServerTrailingMetadata()));
    } else {
      exchange_->Write(ErrorEvent(status), nullptr);
      exchange_->FinishStream();
    }
    backends_->CallFinished(call_.context.get());
    delete this;
  }

  void EnsureStarted() {
    if (started_) return;
    started_ = true;
    HttpHeaders headers = headers_;
    AppendHeaders(
        ResponseHeadersFromMetadata(
            initial_metadata_ ? &call_.context->GetServerInitialMetadata()
                              : nullptr,
            nullptr),
        &headers);
    headers.emplace_back("Content-Type", "text/event-stream");
    headers.emplace_back("Cache-Control", "no-cache");
    headers.emplace_back("X-Accel-Buffering", "no");
    exchange_->StartStream(200, std::move(headers));
  }

  BackendCalls* const backends_;
  CallContext call_;
  std::shared_ptr<HttpExchange> exchange_;
  HttpHeaders headers_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  const char* method_ = nullptr;  // Set by Start().
  // Touched only by reactor callbacks, one at a time.
  bool started_ = false;
  bool initial_metadata_ = false;
};

// The streamed form of a completion request: the same fields.
chat::v1::CompleteStreamRequest StreamRequestOf(
    const chat::v1::CompleteRequest& complete) {
  chat::v1::CompleteStreamRequest request;
  request.mutable_messages()->CopyFrom(complete.messages());
  if (complete.has_system_prompt()) {
    request.set_system_prompt(complete.system_prompt());
  }
  if (complete.has_model()) request.set_model(complete.model());
  if (complete.has_max_tokens()) request.set_max_tokens(complete.max_tokens());
  if (complete.has_temperature()) {
    request.set_temperature(complete.temperature());
  }
  request.mutable_stop()->CopyFrom(complete.stop());
  request.set_user(complete.user());
  return request;
}

// One streamed chat completion: CompleteStream's events as OpenAI's
// chunks, ending with "data: [DONE]".
class CompletionStream final : public OpenAiEventStream {
 public:
  CompletionStream(BackendCalls* backends, CallContext call,
                   std::shared_ptr<HttpExchange> exchange, HttpHeaders headers,
                   const ChatCompletionCall& completion)
      : OpenAiEventStream(backends, std::move(call), std::move(exchange),
                          std::move(headers),
                          Serialize(StreamRequestOf(completion.request))),
        id_(NewOpenAiId("chatcmpl-")),
        created_(UnixNow()),
        model_(completion.model),
        include_usage_(completion.include_usage) {}

 private:
  // The next attempt of `failed`'s call.
  CompletionStream(NextAttemptOf next, const CompletionStream& failed)
      : OpenAiEventStream(next),
        id_(failed.id_),
        created_(failed.created_),
        model_(failed.model_),
        include_usage_(failed.include_usage_) {}
  OpenAiEventStream* NextAttempt() const override {
    return new CompletionStream(NextAttemptOf{*this}, *this);
  }

  std::optional<std::string> Translate(const grpc::ByteBuffer& buffer,
                                       bool first) override {
    chat::v1::CompleteStreamResponse event;
    if (!Parse(buffer, &event)) return std::nullopt;
    std::string out;
    if (first) out = FirstChunk(id_, created_, model_, include_usage_);
    if (event.has_delta()) {
      // An empty first delta is said by the role chunk alone.
      if (!event.delta().text().empty() || out.empty()) {
        out += DeltaChunk(id_, created_, model_, event.delta().text(),
                          include_usage_);
      }
    } else if (event.has_done()) {
      out += FinishChunk(id_, created_, model_, event.done().stop_reason(),
                         include_usage_);
      if (include_usage_) {
        out += UsageChunk(id_, created_, model_, event.done().usage());
      }
    }
    return out;
  }

  std::string Trailer() override { return DoneEvent(); }

  std::string ErrorEvent(const grpc::Status& status) override {
    return absl::StrCat(
        "data: ", OpenAiErrorBody(ToOpenAiError(ToHttpError(status))), "\n\n");
  }

  const std::string id_;
  const int64_t created_;
  const std::string model_;
  const bool include_usage_;
};

}  // namespace

void RespondOpenAiError(const std::shared_ptr<HttpExchange>& exchange,
                        HttpHeaders headers, int http_status,
                        grpc::StatusCode code, std::string message) {
  HttpError error = MakeHttpError(http_status, code, std::move(message));
  AppendHeaders(ErrorHeaders(error), &headers);
  headers.emplace_back("Content-Type", "application/json");
  exchange->Respond(error.http_status, std::move(headers),
                    OpenAiErrorBody(ToOpenAiError(error)));
}

OpenAiApi::OpenAiApi(BackendCalls* backends, absl::Duration request_timeout)
    : backends_(backends), request_timeout_(request_timeout) {}

namespace {

enum class RouteKind {
  kNone,
  kCompletions,
  kModels,
  kModel,
  kResponses,
  kResponse,
  kConversations,
  kConversation,
  kConversationItems,
};

struct OpenAiRoute {
  RouteKind kind = RouteKind::kNone;
  // The route's template, for the metrics.
  std::string name;
  std::vector<std::string> methods;
  // The {id} of the path, when it has one.
  std::string id;
};

OpenAiRoute MatchRoute(absl::string_view path) {
  OpenAiRoute route;
  auto set = [&](RouteKind kind, std::string name,
                 std::vector<std::string> methods) {
    route.kind = kind;
    route.name = std::move(name);
    route.methods = std::move(methods);
  };
  absl::string_view rest = path;
  if (path == kCompletionsPath) {
    set(RouteKind::kCompletions, std::string(kCompletionsPath), {"POST"});
  } else if (path == kModelsPath) {
    set(RouteKind::kModels, std::string(kModelsPath), {"GET"});
  } else if (absl::ConsumePrefix(&rest, "/v1/models/")) {
    set(RouteKind::kModel, "/v1/models/{id}", {"GET"});
    route.id = std::string(rest);
  } else if (path == "/v1/responses") {
    set(RouteKind::kResponses, "/v1/responses", {"POST"});
  } else if (absl::ConsumePrefix(&rest, "/v1/responses/")) {
    set(RouteKind::kResponse, "/v1/responses/{id}", {"GET"});
    route.id = std::string(rest);
  } else if (path == "/v1/conversations") {
    set(RouteKind::kConversations, "/v1/conversations", {"POST"});
  } else if (absl::ConsumePrefix(&rest, "/v1/conversations/")) {
    if (absl::ConsumeSuffix(&rest, "/items")) {
      set(RouteKind::kConversationItems, "/v1/conversations/{id}/items",
          {"GET"});
    } else {
      set(RouteKind::kConversation, "/v1/conversations/{id}",
          {"GET", "DELETE"});
    }
    route.id = std::string(rest);
  }
  return route;
}

std::string QueryOf(const HttpRequest& request) {
  absl::string_view target(request.target().data(), request.target().size());
  const size_t question = target.find('?');
  return question == absl::string_view::npos
             ? std::string()
             : std::string(target.substr(question + 1));
}

}  // namespace

bool OpenAiApi::Serves(absl::string_view path) {
  return MatchRoute(path).kind != RouteKind::kNone;
}

std::vector<std::string> OpenAiApi::AllowedMethods(absl::string_view path) {
  return MatchRoute(path).methods;
}

void OpenAiApi::Handle(std::shared_ptr<HttpExchange> exchange,
                       const std::string& method, const std::string& path,
                       const std::string& request_id, HttpHeaders headers) {
  OpenAiRoute route = MatchRoute(path);
  exchange->SetRoute(absl::StrCat(method, " ", route.name));
  if (!absl::c_linear_search(route.methods, method)) {
    headers.emplace_back(
        "Allow", absl::StrCat(absl::StrJoin(route.methods, ", "), ", OPTIONS"));
    RespondOpenAiError(
        exchange, std::move(headers), 405, grpc::StatusCode::UNIMPLEMENTED,
        absl::StrCat("method ", method, " is not allowed on ", path));
    return;
  }
  switch (route.kind) {
    case RouteKind::kCompletions:
      ChatCompletions(std::move(exchange), request_id, std::move(headers));
      return;
    case RouteKind::kModels:
    case RouteKind::kModel:
      Models(std::move(exchange), std::move(route.id), request_id,
             std::move(headers));
      return;
    case RouteKind::kResponses:
      CreateResponse(std::move(exchange), request_id, std::move(headers));
      return;
    case RouteKind::kResponse:
      GetResponse(std::move(exchange), std::move(route.id), request_id,
                  std::move(headers));
      return;
    case RouteKind::kConversations:
      CreateConversation(std::move(exchange), request_id, std::move(headers));
      return;
    case RouteKind::kConversation:
      if (method == "DELETE") {
        DeleteConversation(std::move(exchange), std::move(route.id), request_id,
                           std::move(headers));
      } else {
        GetConversation(std::move(exchange), std::move(route.id), request_id,
                        std::move(headers));
      }
      return;
    case RouteKind::kConversationItems:
      ConversationItems(std::move(exchange), std::move(route.id), request_id,
                        std::move(headers));
      return;
    case RouteKind::kNone:
      break;
  }
  RespondOpenAiError(exchange, std::move(headers), 404,
                     grpc::StatusCode::NOT_FOUND,
                     absl::StrCat("no route ", path));
}

void OpenAiApi::ChatCompletions(std::shared_ptr<HttpExchange> exchange,
                                const std::string& request_id,
                                HttpHeaders headers) {
  absl::StatusOr<ChatCompletionCall> completion =
      ParseChatCompletion(exchange->request().body());
  if (!completion.ok()) {
    RespondOpenAiError(exchange, std::move(headers), 400,
                       grpc::StatusCode::INVALID_ARGUMENT,
                       std::string(completion.status().message()));
    return;
  }
  if (completion->stream) {
    auto* stream = new CompletionStream(
        backends_,
        NewCallContext(exchange, request_id, headers, request_timeout_),
        exchange, std::move(headers), *completion);
    stream->Start(kCompleteStream);
    return;
  }
  CallBackend<chat::v1::CompleteResponse>(
      backends_, exchange, request_id, headers, request_timeout_, kComplete,
      completion->request,
      [exchange, headers](const grpc::Status& result,
                          chat::v1::CompleteResponse& response,
                          HttpHeaders limits) mutable {
        if (!result.ok()) {
          RespondCallError(exchange, std::move(headers), result,
                           std::move(limits));
          return;
        }
        AppendHeaders(std::move(limits), &headers);
        headers.emplace_back("Content-Type", "application/json");
        exchange->Respond(
            200, std::move(headers),
            ChatCompletionJson(response, NewOpenAiId("chatcmpl-"), UnixNow()));
      });
}

void OpenAiApi::Models(std::shared_ptr<HttpExchange> exchange,
                       std::string model_id, const std::string& request_id,
                       HttpHeaders headers) {
  CallBackend<chat::v1::ListModelsResponse>(
      backends_, exchange, request_id, headers, request_timeout_, kListModels,
      chat::v1::ListModelsRequest(),
      [exchange, model_id = std::move(model_id), headers](
          const grpc::Status& result, chat::v1::ListModelsResponse& models,
          HttpHeaders limits) mutable {
        if (!result.ok()) {
          RespondCallError(exchange, std::move(headers), result,
                           std::move(limits));
          return;
        }
        std::string body;
        if (model_id.empty()) {
          body = ModelListJson(models);
        } else {
          for (const std::string& m : models.models()) {
            if (m == model_id) body = ModelJson(m);
          }
          if (body.empty()) {
            RespondOpenAiError(exchange, std::move(headers), 404,
                               grpc::StatusCode::NOT_FOUND,
                               absl::StrCat("The model '", model_id,
                                            "' does not exist or you do not "
                                            "have access to it."));
            return;
          }
        }
        AppendHeaders(std::move(limits), &headers);
        headers.emplace_back("Content-Type", "application/json");
        exchange->Respond(200, std::move(headers), std::move(body));
      });
}

namespace {

constexpr char kChat[] = "/chat.v1.ChatService/Chat";
constexpr char kChatStream[] = "/chat.v1.ChatService/ChatStream";
constexpr char kGetHistory[] = "/chat.v1.ChatService/GetHistory";
constexpr char kDeleteSession[] = "/chat.v1.ChatService/DeleteSession";
constexpr char kExportSession[] = "/chat.v1.ChatService/ExportSession";

void RespondJson(const std::shared_ptr<HttpExchange>& exchange,
                 HttpHeaders headers, HttpHeaders limits, std::string body) {
  AppendHeaders(std::move(limits), &headers);
  headers.emplace_back("Content-Type", "application/json");
  exchange->Respond(200, std::move(headers), std::move(body));
}

void RespondNotFound(const std::shared_ptr<HttpExchange>& exchange,
                     HttpHeaders headers, absl::string_view what,
                     absl::string_view id) {
  RespondOpenAiError(exchange, std::move(headers), 404,
                     grpc::StatusCode::NOT_FOUND,
                     absl::StrCat(what, " with id '", id, "' not found."));
}

// What a response's turn came to, from Chat's or Complete's answer.
void FillOutcome(const chat::v1::ChatResponse& done, ResponseView* view) {
  view->text = done.response();
  view->model = done.model();
  view->stop_reason = done.stop_reason();
  view->usage = done.usage();
  // A turn stored after a named turn says its id; an appended one does
  // not, and keeps the id it was given when the response began.
  if (done.has_turn_id()) {
    view->id = StoredResponseId(done.session_id(), done.turn_id());
  }
  view->item_id = ItemId(done.session_id(), 2 * done.turn_count() - 1);
}
void FillOutcome(const chat::v1::CompleteResponse& done, ResponseView* view) {
  view->text = done.response();
  view->model = done.model();
  view->stop_reason = done.stop_reason();
  view->usage = done.usage();
}
void SetStatus(ResponseView* view) {
  view->status = FinishReasonOf(view->stop_reason) == "length" ? "incomplete"
                                                               : "completed";
}

// One streamed response: ChatStream's (store: true) or CompleteStream's
// (store: false) events as OpenAI's Responses events. A client that leaves
// cancels the call (chat-server then cancels the provider request and
// stores nothing).
class ResponseStream final : public OpenAiEventStream {
 public:
  ResponseStream(BackendCalls* backends, CallContext call,
                 std::shared_ptr<HttpExchange> exchange, HttpHeaders headers,
                 bool stored, const Message& request, ResponseView view)
      : OpenAiEventStream(backends, std::move(call), std::move(exchange),
                          std::move(headers), Serialize(request)),
        stored_(stored),
        view_(std::move(view)) {}

  void Start() {
    OpenAiEventStream::Start(stored_ ? kChatStream : kCompleteStream);
  }

 private:
  // The next attempt of `failed`'s call.
  ResponseStream(NextAttemptOf next, const ResponseStream& failed)
      : OpenAiEventStream(next), stored_(failed.stored_), view_(failed.view_) {}
  OpenAiEventStream* NextAttempt() const override {
    return new ResponseStream(NextAttemptOf{*this}, *this);
  }

  std::optional<std::string> Translate(const grpc::ByteBuffer& buffer,
                                       bool first) override {
    std::optional<std::string> delta;
    bool done = false;
    if (stored_) {
      chat::v1::ChatStreamResponse event;
      if (!Parse(buffer, &event)) return std::nullopt;
      if (event.has_delta()) delta = event.delta().text();
      if (event.has_done()) {
        FillOutcome(event.done(), &view_);
        done = true;
      }
    } else {
      chat::v1::CompleteStreamResponse event;
      if (!Parse(buffer, &event)) return std::nullopt;
      if (event.has_delta()) delta = event.delta().text();
      if (event.has_done()) {
        FillOutcome(event.done(), &view_);
        done = true;
      }
    }
    std::string out;
    if (first) {
      ResponseView in_progress = view_;
      in_progress.status = "in_progress";
      in_progress.usage.reset();
      out = ResponseStartEvents(in_progress, &sequence_);
    }
    if (delta.has_value() && !delta->empty()) {
      out += OutputTextDeltaEvent(view_.item_id, *delta, &sequence_);
    }
    if (done) {
      SetStatus(&view_);
      out += ResponseEndEvents(view_, &sequence_);
    }
    return out;
  }

  std::string Trailer() override { return std::string(); }

  std::string ErrorEvent(const grpc::Status& status) override {
    const OpenAiError error = ToOpenAiError(ToHttpError(status));
    return ResponseErrorEvent(error.code.empty() ? error.type : error.code,
                              error.message, &sequence_);
  }

  const bool stored_;
  // Touched only by reactor callbacks, one at a time.
  ResponseView view_;
  int sequence_ = 0;
};

}  // namespace

// A response about to be made: where it goes and what it says so far.
struct ResponsePlan {
  ResponsesCall call;
  ResponseView view;
  // A stored turn of `session_id` (Chat), else a stateless completion
  // (Complete) of `history` followed by the input.
  bool stored = true;
  std::string session_id;
  std::vector<chat::v1::CompletionMessage> history;
  std::string history_system_prompt;
  // A stored turn after this turn of the session, on a branch of its own;
  // absent: after the last turn of the active branch.
  std::optional<int> after_turn_id;
};

void OpenAiApi::CreateResponse(std::shared_ptr<HttpExchange> exchange,
                               const std::string& request_id,
                               HttpHeaders headers) {
  absl::StatusOr<ResponsesCall> call =
      ParseResponsesCall(exchange->request().body());
  if (!call.ok()) {
    RespondOpenAiError(exchange, std::move(headers), 400,
                       grpc::StatusCode::INVALID_ARGUMENT,
                       std::string(call.status().message()));
    return;
  }
  auto plan = std::make_shared<ResponsePlan>();
  plan->call = *std::move(call);
  const ResponsesCall& c = plan->call;
  plan->stored = c.store;
  plan->view.created_at = UnixNow();
  plan->view.model = c.model.value_or("");
  plan->view.previous_response_id = c.previous_response_id;
  plan->view.instructions = c.system_prompt;
  plan->view.store = c.store;
  plan->view.max_output_tokens = c.max_output_tokens;
  plan->view.temperature = c.temperature;
  if (c.store && (c.messages.size() != 1 || c.messages[0].role() != "user")) {
    RespondOpenAiError(
        exchange, std::move(headers), 400, grpc::StatusCode::INVALID_ARGUMENT,
        "a stored response takes exactly one user message as input (chatd "
        "stores whole turns); send earlier messages with store: false, or "
        "one turn at a time");
    return;
  }

  // Where the earlier turns are: a conversation (all of it), a previous
  // response (its session up to that turn), or nowhere.
  std::string session;
  std::optional<int> after_turn;  // Absent: after the whole conversation.
  const char* what = "Conversation";
  std::string asked;
  if (c.conversation.has_value()) {
    session = asked = *c.conversation;
    plan->view.conversation = session;
  } else if (c.previous_response_id.has_value()) {
    what = "Previous response";
    asked = *c.previous_response_id;
    std::optional<StoredResponseRef> ref = ParseStoredResponseId(asked);
    if (!ref.has_value()) {
      RespondNotFound(exchange, std::move(headers), what, asked);
      return;
    }
    session = ref->session_id;
    after_turn = ref->turn;
  }
  if (session.empty()) {
    if (c.store) {
      // A new conversation of its own, which previous_response_id extends.
      plan->session_id = NewConversationId();
      plan->view.id = StoredResponseId(plan->session_id, 1);
      plan->view.item_id = ItemId(plan->session_id, 1);
      plan->view.conversation = plan->session_id;
    }
    RunResponse(std::move(exchange), request_id, std::move(headers),
                std::move(plan));
    return;
  }
  chat::v1::ExportSessionRequest export_request;
  export_request.set_session_id(session);
  // The export holds every branch: the turn a previous response names may
  // be on one not shown, and the next turn's id counts them all.
  CallBackend<chat::v1::ExportSessionResponse>(
      backends_, exchange, request_id, headers, request_timeout_,
      kExportSession, export_request,
      [this, exchange, request_id, headers, plan, session, after_turn, what,
       asked](const grpc::Status& status,
              chat::v1::ExportSessionResponse& exported,
              HttpHeaders limits) mutable {
        if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
          RespondNotFound(exchange, std::move(headers), what, asked);
          return;
        } else if (!status.ok()) {
          RespondCallError(exchange, std::move(headers), status,
                           std::move(limits));
          return;
        }
        const chat::v1::SessionExport& stored = exported.session();
        // The turn this response follows: the one named, or the last of the
        // conversation's active branch (0: none yet).
        const int follows = after_turn.value_or(stored.active_turn_id());
        int depth = 0;
        if (follows > 0) {
          std::optional<ExportedTurn> turn = FindExportedTurn(stored, follows);
          if (!turn.has_value()) {
            RespondNotFound(exchange, std::move(headers), what, asked);
            return;
          }
          depth = turn->depth;
        }
        if (plan->stored) {
          plan->session_id = session;
          plan->after_turn_id = after_turn;
          plan->view.conversation = session;
          // What the store will number the turn unless another turn of the
          // session is stored first; the answer corrects it (FillOutcome).
          plan->view.id = StoredResponseId(session, LastTurnId(stored) + 1);
          plan->view.item_id = ItemId(session, 2 * depth + 1);
        } else {
          if (follows > 0) plan->history = BranchMessages(stored, follows);
          plan->history_system_prompt = stored.system_prompt();
        }
        RunResponse(exchange, request_id, std::move(headers), plan);
      });
}

namespace {

// What answers a non-streamed response once its call ends: the Response
// object, or the call's error.
template <typename Done>
std::function<void(const grpc::Status&, Done&, HttpHeaders)>
RespondWithResponse(std::shared_ptr<HttpExchange> exchange, HttpHeaders headers,
                    std::shared_ptr<ResponsePlan> plan) {
  return [exchange = std::move(exchange), headers = std::move(headers),
          plan = std::move(plan)](const grpc::Status& status, Done& done,
                                  HttpHeaders limits) mutable {
    if (!status.ok()) {
      RespondCallError(exchange, std::move(headers), status, std::move(limits));
      return;
    }
    FillOutcome(done, &plan->view);
    SetStatus(&plan->view);
    RespondJson(exchange, std::move(headers), std::move(limits),
                ResponseJson(plan->view));
  };
}

}  // namespace

void OpenAiApi::RunResponse(std::shared_ptr<HttpExchange> exchange,
                            const std::string& request_id, HttpHeaders headers,
                            std::shared_ptr<ResponsePlan> plan) {
  const ResponsesCall& c = plan->call;
  if (plan->stored) {
    chat::v1::ChatRequest chat;
    chat.set_session_id(plan->session_id);
    chat.set_message(c.messages[0].content());
    if (c.system_prompt.has_value()) chat.set_system_prompt(*c.system_prompt);
    if (c.model.has_value()) chat.set_model(*c.model);
    if (c.max_output_tokens.has_value()) {
      chat.set_max_tokens(*c.max_output_tokens);
    }
    if (c.temperature.has_value()) chat.set_temperature(*c.temperature);
    if (plan->after_turn_id.has_value()) {
      chat.set_after_turn_id(*plan->after_turn_id);
    }
    if (c.stream) {
      // ChatStream reads a ChatRequest's bytes: the fields are numbered alike.
      auto* stream = new ResponseStream(
          backends_,
          NewCallContext(exchange, request_id, headers, request_timeout_),
          exchange, std::move(headers), /*stored=*/true, chat, plan->view);
      stream->Start();
      return;
    }
    CallBackend<chat::v1::ChatResponse>(
        backends_, exchange, request_id, headers, request_timeout_, kChat, chat,
        RespondWithResponse<chat::v1::ChatResponse>(exchange, headers, plan));
    return;
  }
  chat::v1::CompleteRequest complete;
  for (const chat::v1::CompletionMessage& m : plan->history) {
    *complete.add_messages() = m;
  }
  for (const chat::v1::CompletionMessage& m : c.messages) {
    *complete.add_messages() = m;
  }
  // The earlier turns' system prompt unless this response gives its own.
  if (c.system_prompt.has_value()) {
    complete.set_system_prompt(*c.system_prompt);
  } else if (!plan->history_system_prompt.empty()) {
    complete.set_system_prompt(plan->history_system_prompt);
  }
  if (c.model.has_value()) complete.set_model(*c.model);
  if (c.max_output_tokens.has_value()) {
    complete.set_max_tokens(*c.max_output_tokens);
  }
  if (c.temperature.has_value()) complete.set_temperature(*c.temperature);
  complete.set_user(c.user);
  // Not stored, so no lookup should ever find it: no turn in the id.
  plan->view.id = NewOpenAiId("resp_x");
  plan->view.item_id = NewOpenAiId("msg_x");
  if (c.stream) {
    auto* stream = new ResponseStream(
        backends_,
        NewCallContext(exchange, request_id, headers, request_timeout_),
        exchange, std::move(headers), /*stored=*/false,
        StreamRequestOf(complete), plan->view);
    stream->Start();
    return;
  }
  CallBackend<chat::v1::CompleteResponse>(
      backends_, exchange, request_id, headers, request_timeout_, kComplete,
      complete,
      RespondWithResponse<chat::v1::CompleteResponse>(exchange, headers, plan));
}

void OpenAiApi::GetResponse(std::shared_ptr<HttpExchange> exchange,
                            std::string id, const std::string& request_id,
                            HttpHeaders headers) {
  std::optional<StoredResponseRef> ref = ParseStoredResponseId(id);
  if (!ref.has_value()) {
    RespondNotFound(exchange, std::move(headers), "Response", id);
    return;
  }
  chat::v1::ExportSessionRequest request;
  request.set_session_id(ref->session_id);
  // The export: the turn may be on a branch not shown, and it keeps each
  // answer's model and usage.
  CallBackend<chat::v1::ExportSessionResponse>(
      backends_, exchange, request_id, headers, request_timeout_,
      kExportSession, request,
      [exchange, headers, id, ref = *ref](
          const grpc::Status& status, chat::v1::ExportSessionResponse& exported,
          HttpHeaders limits) mutable {
        if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
          RespondNotFound(exchange, std::move(headers), "Response", id);
          return;
        }
        if (!status.ok()) {
          RespondCallError(exchange, std::move(headers), status,
                           std::move(limits));
          return;
        }
        const chat::v1::SessionExport& stored = exported.session();
        std::optional<ExportedTurn> turn = FindExportedTurn(stored, ref.turn);
        if (!turn.has_value()) {
          RespondNotFound(exchange, std::move(headers), "Response", id);
          return;
        }
        const chat::v1::ExportedMessage& answer = *turn->answer;
        ResponseView view;
        view.id = id;
        view.created_at = UnixSecondsOf(answer.timestamp());
        view.item_id = ItemId(ref.session_id, 2 * turn->depth - 1);
        view.text = answer.content();
        view.model = answer.model();
        view.stop_reason = answer.stop_reason();
        if (answer.has_usage()) view.usage = answer.usage();
        SetStatus(&view);
        view.conversation = ref.session_id;
        if (const int parent = turn->user->parent_turn_id(); parent > 0) {
          view.previous_response_id = StoredResponseId(ref.session_id, parent);
        }
        if (!stored.system_prompt().empty()) {
          view.instructions = stored.system_prompt();
        }
        RespondJson(exchange, std::move(headers), std::move(limits),
                    ResponseJson(view));
      });
}

constexpr char kCreateSession[] = "/chat.v1.ChatService/CreateSession";

void OpenAiApi::CreateConversation(std::shared_ptr<HttpExchange> exchange,
                                   const std::string& request_id,
                                   HttpHeaders headers) {
  absl::StatusOr<std::string> metadata =
      ParseConversationMetadata(exchange->request().body());
  if (!metadata.ok()) {
    RespondOpenAiError(exchange, std::move(headers), 400,
                       grpc::StatusCode::INVALID_ARGUMENT,
                       std::string(metadata.status().message()));
    return;
  }
  // The conversation is a chatd session from now on, visible to every key
  // of the tenant and to every API. The id keeps the "conv_" shape OpenAI's
  // clients know (a valid session id too); the server's default system
  // prompt applies, as for a first turn without instructions. A bad key
  // gets its 401 from CreateSession itself.
  chat::v1::CreateSessionRequest request;
  request.set_session_id(NewConversationId());
  CallBackend<chat::v1::CreateSessionResponse>(
      backends_, exchange, request_id, headers, request_timeout_,
      kCreateSession, request,
      [exchange, headers, metadata = *std::move(metadata)](
          const grpc::Status& status, chat::v1::CreateSessionResponse& created,
          HttpHeaders limits) mutable {
        if (!status.ok()) {
          RespondCallError(exchange, std::move(headers), status,
                           std::move(limits));
          return;
        }
        RespondJson(
            exchange, std::move(headers), std::move(limits),
            ConversationJson(created.session().session_id(),
                             UnixSecondsOf(created.session().created_at()),
                             metadata));
      });
}

void OpenAiApi::GetConversation(std::shared_ptr<HttpExchange> exchange,
                                std::string id, const std::string& request_id,
                                HttpHeaders headers) {
  chat::v1::GetHistoryRequest request;
  request.set_session_id(id);
  CallBackend<chat::v1::GetHistoryResponse>(
      backends_, exchange, request_id, headers, request_timeout_, kGetHistory,
      request,
      [exchange, headers, id](const grpc::Status& status,
                              chat::v1::GetHistoryResponse& history,
                              HttpHeaders limits) mutable {
        if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
          RespondNotFound(exchange, std::move(headers), "Conversation", id);
        } else if (!status.ok()) {
          RespondCallError(exchange, std::move(headers), status,
                           std::move(limits));
        } else {
          RespondJson(
              exchange, std::move(headers), std::move(limits),
              ConversationJson(id, UnixSecondsOf(history.created_at())));
        }
      });
}

void OpenAiApi::DeleteConversation(std::shared_ptr<HttpExchange> exchange,
                                   std::string id,
                                   const std::string& request_id,
                                   HttpHeaders headers) {
  chat::v1::DeleteSessionRequest request;
  request.set_session_id(id);
  CallBackend<chat::v1::DeleteSessionResponse>(
      backends_, exchange, request_id, headers, request_timeout_,
      kDeleteSession, request,
      [exchange, headers, id](const grpc::Status& status,
                              chat::v1::DeleteSessionResponse& deleted,
                              HttpHeaders limits) mutable {
        if (!status.ok()) {
          RespondCallError(exchange, std::move(headers), status,
                           std::move(limits));
        } else if (deleted.status() == "not_found") {
          RespondNotFound(exchange, std::move(headers), "Conversation", id);
        } else {
          RespondJson(exchange, std::move(headers), std::move(limits),
                      ConversationDeletedJson(id));
        }
      });
}

void OpenAiApi::ConversationItems(std::shared_ptr<HttpExchange> exchange,
                                  std::string id, const std::string& request_id,
                                  HttpHeaders headers) {
  absl::StatusOr<ItemsQuery> query =
      ParseItemsQuery(QueryOf(exchange->request()));
  if (!query.ok()) {
    RespondOpenAiError(exchange, std::move(headers), 400,
                       grpc::StatusCode::INVALID_ARGUMENT,
                       std::string(query.status().message()));
    return;
  }
  chat::v1::GetHistoryRequest request;
  request.set_session_id(id);
  CallBackend<chat::v1::GetHistoryResponse>(
      backends_, exchange, request_id, headers, request_timeout_, kGetHistory,
      request,
      [exchange, headers, id, query = *query](
          const grpc::Status& status, chat::v1::GetHistoryResponse& history,
          HttpHeaders limits) mutable {
        if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
          RespondNotFound(exchange, std::move(headers), "Conversation", id);
          return;
        } else if (!status.ok()) {
          RespondCallError(exchange, std::move(headers), status,
                           std::move(limits));
          return;
        }
        RespondJson(exchange, std::move(headers), std::move(limits),
                    ItemsListJson(id, history, query));
      });
}

}  // namespace chat::gateway
