#include "gateway/openai/openai_api.h"

#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "chat/v1/chat.pb.h"
#include "gateway/openai/openai_translate.h"
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

// A call's context: the gateway's deadline, the caller's credentials and
// trace as metadata, cancelled when the HTTP client leaves.
struct CallContext {
  std::shared_ptr<grpc::ClientContext> context;
  std::shared_ptr<std::atomic<bool>> client_gone;
};

CallContext NewCallContext(const std::shared_ptr<HttpExchange>& exchange,
                           const std::string& request_id,
                           const HttpHeaders& headers, absl::Duration timeout) {
  CallContext call;
  call.context = std::make_shared<grpc::ClientContext>();
  call.context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  call.context->set_wait_for_ready(true);
  std::string traceparent;
  for (const auto& [name, value] : headers) {
    if (name == "traceparent") traceparent = value;
  }
  for (const auto& [key, value] :
       ForwardedMetadata(exchange->request(), request_id,
                         exchange->client_address(), traceparent)) {
    // Idempotency-Key names a turn of a session; these calls have none.
    if (key == "idempotency-key") continue;
    call.context->AddMetadata(key, value);
  }
  call.client_gone = std::make_shared<std::atomic<bool>>(false);
  exchange->OnClientGone(
      [weak = std::weak_ptr<grpc::ClientContext>(call.context),
       gone = call.client_gone] {
        gone->store(true);
        if (auto c = weak.lock()) c->TryCancel();
      });
  return call;
}

// One unary call; `done` gets the status and the answer's buffer.
struct UnaryCall {
  CallContext call;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
};

void StartUnary(BackendCalls* backends, CallContext call, const char* method,
                const Message& request,
                std::function<void(const grpc::Status&, UnaryCall&)> done) {
  auto unary = std::make_shared<UnaryCall>();
  unary->call = std::move(call);
  unary->request = Serialize(request);
  backends->CallStarted(unary->call.context.get());
  backends->StartOnBackend(
      *unary->call.context, unary->call.client_gone,
      [backends, unary, method,
       done = std::move(done)](grpc::GenericStub& stub) {
        stub.UnaryCall(unary->call.context.get(), method, grpc::StubOptions(),
                       &unary->request, &unary->response,
                       [backends, unary, done](grpc::Status status) {
                         status = backends->ClientVisibleStatus(status);
                         backends->CallFinished(unary->call.context.get());
                         done(status, *unary);
                       });
      });
}

HttpHeaders LimitHeaders(grpc::ClientContext& context) {
  return ResponseHeadersFromMetadata(&context.GetServerInitialMetadata(),
                                     &context.GetServerTrailingMetadata());
}

// One streamed chat completion: CompleteStream's events as OpenAI's
// chunks. As the gateway's StreamCall, the next read starts only once the
// previous chunk is written, and the HTTP answer starts only with the
// first event, so a refusal (401, 429) is an ordinary HTTP error with its
// headers. A client that leaves cancels the call, and chat-server cancels
// the provider request. Deletes itself in OnDone.
class CompletionStream final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  CompletionStream(BackendCalls* backends, CallContext call,
                   std::shared_ptr<HttpExchange> exchange, HttpHeaders headers,
                   const ChatCompletionCall& completion)
      : backends_(backends),
        call_(std::move(call)),
        exchange_(std::move(exchange)),
        headers_(std::move(headers)),
        id_(NewOpenAiId("chatcmpl-")),
        created_(UnixNow()),
        model_(completion.model),
        include_usage_(completion.include_usage) {
    chat::v1::CompleteStreamRequest request;
    request.mutable_messages()->CopyFrom(completion.request.messages());
    if (completion.request.has_system_prompt()) {
      request.set_system_prompt(completion.request.system_prompt());
    }
    request.set_model(completion.request.model());
    if (completion.request.has_max_tokens()) {
      request.set_max_tokens(completion.request.max_tokens());
    }
    if (completion.request.has_temperature()) {
      request.set_temperature(completion.request.temperature());
    }
    request.mutable_stop()->CopyFrom(completion.request.stop());
    request.set_user(completion.request.user());
    request_ = Serialize(request);
  }

  void Start() {
    backends_->CallStarted(call_.context.get());
    backends_->StartOnBackend(
        *call_.context, call_.client_gone, [this](grpc::GenericStub& stub) {
          stub.PrepareBidiStreamingCall(call_.context.get(), kCompleteStream,
                                        grpc::StubOptions(), this);
          StartWriteLast(&request_, grpc::WriteOptions());
          StartCall();
        });
  }

  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;  // The call failed: OnDone says how.
    initial_metadata_ = true;
    StartRead(&response_);
  }

  void OnWriteDone(bool /*ok*/) override {}

  void OnReadDone(bool ok) override {
    if (!ok) return;  // End of stream or failure: OnDone says which.
    chat::v1::CompleteStreamResponse event;
    if (!Parse(response_, &event)) {
      call_.context->TryCancel();
      StartRead(&response_);
      return;
    }
    std::string out;
    if (!started_) {
      EnsureStarted();
      out = FirstChunk(id_, created_, model_, include_usage_);
    }
    if (event.has_delta()) {
      if (event.delta().text().empty() && !out.empty()) {
        // Nothing but the role chunk.
      } else {
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
    // A hold keeps the call from finishing while the write is pending (see
    // StreamCall in gateway/app/gateway.cc).
    AddHold();
    exchange_->Write(std::move(out), [this](bool written) {
      if (!written) call_.context->TryCancel();  // The client left.
      StartRead(&response_);
      RemoveHold();
    });
  }

  void OnDone(const grpc::Status& grpc_status) override {
    const grpc::Status status = backends_->ClientVisibleStatus(grpc_status);
    if (status.ok()) {
      EnsureStarted();
      exchange_->Write(DoneEvent(), nullptr);
      exchange_->FinishStream();
    } else if (!started_) {
      RespondCallError(
          exchange_, std::move(headers_), status,
          ResponseHeadersFromMetadata(
              initial_metadata_ ? &call_.context->GetServerInitialMetadata()
                                : nullptr,
              &call_.context->GetServerTrailingMetadata()));
    } else {
      // After the first chunk the status line is sent: an error event, which
      // OpenAI's SDKs raise as an APIError.
      exchange_->Write(
          absl::StrCat(
              "data: ", OpenAiErrorBody(ToOpenAiError(ToHttpError(status))),
              "\n\n"),
          nullptr);
      exchange_->FinishStream();
    }
    backends_->CallFinished(call_.context.get());
    delete this;
  }

 private:
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
  const std::string id_;
  const int64_t created_;
  const std::string model_;
  const bool include_usage_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  // Touched only by reactor callbacks, one at a time.
  bool started_ = false;
  bool initial_metadata_ = false;
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

bool OpenAiApi::Serves(absl::string_view path) {
  return path == kCompletionsPath || path == kModelsPath ||
         absl::StartsWith(path, absl::StrCat(kModelsPath, "/"));
}

void OpenAiApi::Handle(std::shared_ptr<HttpExchange> exchange,
                       const std::string& method, const std::string& path,
                       const std::string& request_id, HttpHeaders headers) {
  const bool completions = path == kCompletionsPath;
  const std::string route =
      completions ? std::string(kCompletionsPath)
                  : (path == kModelsPath ? std::string(kModelsPath)
                                         : absl::StrCat(kModelsPath, "/{id}"));
  exchange->SetRoute(absl::StrCat(method, " ", route));
  const char* allowed = completions ? "POST" : "GET";
  if (method != allowed) {
    headers.emplace_back("Allow", absl::StrCat(allowed, ", OPTIONS"));
    RespondOpenAiError(
        exchange, std::move(headers), 405, grpc::StatusCode::UNIMPLEMENTED,
        absl::StrCat("method ", method, " is not allowed on ", path));
    return;
  }
  if (completions) {
    ChatCompletions(std::move(exchange), request_id, std::move(headers));
    return;
  }
  std::string id;
  if (path != kModelsPath) id = path.substr(kModelsPath.size() + 1);
  Models(std::move(exchange), std::move(id), request_id, std::move(headers));
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
  CallContext call =
      NewCallContext(exchange, request_id, headers, request_timeout_);
  if (completion->stream) {
    auto* stream = new CompletionStream(backends_, std::move(call), exchange,
                                        std::move(headers), *completion);
    stream->Start();
    return;
  }
  StartUnary(
      backends_, std::move(call), kComplete, completion->request,
      [exchange, headers = std::move(headers)](const grpc::Status& status,
                                               UnaryCall& unary) mutable {
        HttpHeaders limits = LimitHeaders(*unary.call.context);
        chat::v1::CompleteResponse response;
        grpc::Status result = status;
        if (result.ok() && !Parse(unary.response, &response)) {
          result = grpc::Status(grpc::StatusCode::INTERNAL,
                                "the backend's answer did not parse");
        }
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
  CallContext call =
      NewCallContext(exchange, request_id, headers, request_timeout_);
  StartUnary(
      backends_, std::move(call), kListModels, chat::v1::ListModelsRequest(),
      [exchange, model_id = std::move(model_id), headers = std::move(headers)](
          const grpc::Status& status, UnaryCall& unary) mutable {
        HttpHeaders limits = LimitHeaders(*unary.call.context);
        chat::v1::ListModelsResponse models;
        grpc::Status result = status;
        if (result.ok() && !Parse(unary.response, &models)) {
          result = grpc::Status(grpc::StatusCode::INTERNAL,
                                "the backend's answer did not parse");
        }
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

}  // namespace chat::gateway
