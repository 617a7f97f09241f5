#include "gateway/app/gateway.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "gateway/compat/template_routes.h"
#include "gateway/openapi/openapi.h"
#include "gateway/openapi/proto_docs.h"
#include "gateway/transcode/backend_call.h"
#include "gateway/transcode/metadata.h"
#include "gateway/transcode/sse_writer.h"
#include "gateway/transcode/status_mapping.h"
#include "gateway/transcode/transcoder.h"
#include "grpcpp/client_context.h"
#include "grpcpp/impl/codegen/proto_utils.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/client_callback.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/proto_buffer_writer.h"

namespace chat::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::MethodDescriptor;

constexpr absl::string_view kJson = "application/json";

void AppendHeaders(HttpHeaders more, HttpHeaders* headers) {
  for (auto& h : more) headers->push_back(std::move(h));
}

void RespondError(const std::shared_ptr<HttpExchange>& exchange,
                  HttpHeaders headers, const HttpError& error) {
  AppendHeaders(ErrorHeaders(error), &headers);
  headers.emplace_back("Content-Type", std::string(kJson));
  exchange->Respond(error.http_status, std::move(headers), ErrorBody(error));
}

std::string Header(const HttpRequest& request, absl::string_view name) {
  auto it = request.find(boost::beast::string_view(name.data(), name.size()));
  if (it == request.end()) return "";
  return std::string(it->value().data(), it->value().size());
}

// Straight into gRPC's slices (no intermediate string, no copy of it).
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

// Parses `buffer` as a message of `type`, reading gRPC's slices in place;
// nullptr if it does not parse.
std::unique_ptr<Message> Parse(const grpc::ByteBuffer& buffer,
                               const google::protobuf::Descriptor* type) {
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(type);
  if (prototype == nullptr) return nullptr;
  // The reader consumes the buffer; the copy shares its slices.
  grpc::ByteBuffer view(buffer);
  grpc::ProtoBufferReader reader(&view);
  if (!reader.status().ok()) return nullptr;
  std::unique_ptr<Message> message(prototype->New());
  if (!message->ParseFromZeroCopyStream(&reader)) return nullptr;
  return message;
}

std::string GrpcMethodPath(const MethodDescriptor* method) {
  return absl::StrCat("/", method->service()->full_name(), "/", method->name());
}

}  // namespace

// One unary call. `context` is the current attempt's (of `backend`, a page
// of a gathered list being one call).
struct UnaryCall {
  std::shared_ptr<BackendCall> backend;
  std::shared_ptr<grpc::ClientContext> context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  std::shared_ptr<HttpExchange> exchange;
  const MethodDescriptor* method = nullptr;
  HttpHeaders headers;
  // Set when the answer gathers every page (see FollowsAllPages): the
  // request to ask again with the next token, and the pages so far.
  std::unique_ptr<Message> paged_request;
  std::unique_ptr<Message> gathered;
  // The contexts of finished pages and failed attempts, kept until the
  // whole call ends rather than destroyed inside the completion callback
  // of the call each served.
  std::vector<std::shared_ptr<grpc::ClientContext>> finished_attempts;
  // The headers made from the last call's response metadata.
  HttpHeaders limit_headers;
  // The answer of a call answered locally (StartLocal), and its response
  // metadata.
  std::unique_ptr<Message> local_response;
  std::optional<std::pair<BackendCall::Metadata, BackendCall::Metadata>>
      local_metadata;
};

namespace {

// The template's routes predate paging: its `GET /sessions` listed every
// session. So a paged list reached through a route that compat's table marks
// gather_all_pages, asked with neither page_size nor page_token, answers
// every page, gathered by the gateway, up to kMaxUnpagedItems items (then
// the answer's next_page_token says where to go on). Every other route
// pages as the proto says.
constexpr int kUnpagedPageSize = 1000;
constexpr int kMaxUnpagedItems = 10000;

bool FollowsAllPages(const Route& route, const Message& request) {
  if (!TemplateBehaviourOf(route).gather_all_pages ||
      !IsPagedList(*route.method)) {
    return false;
  }
  const Descriptor* in = route.method->input_type();
  const FieldDescriptor* size = in->FindFieldByName("page_size");
  const FieldDescriptor* token = in->FindFieldByName("page_token");
  const google::protobuf::Reflection* r = request.GetReflection();
  return r->GetInt32(request, size) == 0 &&
         r->GetString(request, token).empty();
}

// A compat table that names a route chat.proto does not declare is a bug
// in this program: stop before serving anything.
void CheckTemplateRoutesOrDie() {
  if (absl::Status s = CheckTemplateRoutesAgainstChatProto(); !s.ok()) {
    LogError("the template's route table does not match chat.proto: ",
             s.ToString());
    std::abort();
  }
}

// Items gathered so far: the sizes of the answer's repeated fields.
int GatheredItems(const Message& answer) {
  int items = 0;
  const Descriptor* type = answer.GetDescriptor();
  for (int i = 0; i < type->field_count(); ++i) {
    if (type->field(i)->is_repeated()) {
      items += answer.GetReflection()->FieldSize(answer, type->field(i));
    }
  }
  return items;
}

// A stream's event as `format` writes it; "" for none (a raw-text stream
// has no `done` event).
std::string FormatStreamEvent(StreamFormat format, const Message& event) {
  switch (format) {
    case StreamFormat::kRawText: {
      StreamEventParts parts = SplitStreamEvent(event);
      return parts.has_text && parts.name != "done" ? parts.text : "";
    }
    case StreamFormat::kSse: {
      StreamEventParts parts = SplitStreamEvent(event);
      return SseEvent(parts.name, parts.json, parts.id);
    }
    case StreamFormat::kNdjson:
      return NdjsonResult(MessageToJson(event));
  }
  return "";
}

// Sends the status line and headers of a stream: the route's `headers`,
// those made of the call's initial metadata, and the stream's own.
void StartHttpStream(HttpExchange& exchange, StreamFormat format,
                     HttpHeaders headers, HttpHeaders metadata_headers) {
  AppendHeaders(std::move(metadata_headers), &headers);
  headers.emplace_back("Content-Type", std::string(StreamContentType(format)));
  headers.emplace_back("Cache-Control", "no-cache");
  // Tells nginx-style proxies in front of us not to buffer the stream.
  headers.emplace_back("X-Accel-Buffering", "no");
  exchange.StartStream(200, std::move(headers));
}

// Ends a stream that failed with `error`. Nothing sent yet (`started`
// false): an ordinary HTTP error (grpc-gateway's line-delimited shape for an
// ndjson client) with `headers`, which hold the headers made of the call's
// response metadata (the rate-limit headers sent along with the error).
// Else the error as the stream's last event.
void EndStreamWithError(const std::shared_ptr<HttpExchange>& exchange,
                        StreamFormat format, bool started, HttpHeaders headers,
                        const HttpError& error) {
  if (!started) {
    if (format == StreamFormat::kNdjson) {
      AppendHeaders(ErrorHeaders(error), &headers);
      headers.emplace_back("Content-Type",
                           std::string(StreamContentType(format)));
      exchange->Respond(error.http_status, std::move(headers),
                        NdjsonError(error));
    } else {
      RespondError(exchange, std::move(headers), error);
    }
    return;
  }
  std::string tail;
  switch (format) {
    case StreamFormat::kRawText:
      tail = RawTextError(error);
      break;
    case StreamFormat::kSse:
      tail = SseEvent("error", ErrorBody(error));
      break;
    case StreamFormat::kNdjson:
      tail = NdjsonError(error);
      break;
  }
  exchange->Write(std::move(tail), nullptr);
  exchange->FinishStream();
}

// What a call answered in this process ends with when its deadline passed
// (the gateway's cancel), as an RPC's would.
grpc::Status DeadlineExceeded() {
  return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded");
}

// One server-streaming call, read one message at a time: the next read
// starts only once the previous event is written to the client, so a slow
// client slows the stream (gRPC flow control reaches chat-server) instead
// of queueing without bound. Deletes itself in OnDone, the reactor's last
// callback.
class StreamCall final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // The attempt of `call` with `context`.
  StreamCall(Gateway* gateway, std::shared_ptr<BackendCall> call,
             std::shared_ptr<grpc::ClientContext> context,
             std::shared_ptr<HttpExchange> exchange,
             const MethodDescriptor* method, StreamFormat format,
             HttpHeaders headers, grpc::ByteBuffer request)
      : gateway_(gateway),
        call_(std::move(call)),
        context_(std::move(context)),
        exchange_(std::move(exchange)),
        method_(method),
        format_(format),
        headers_(std::move(headers)),
        request_(std::move(request)) {}

  void Start() {
    gateway_->CallStarted(context_.get());
    gateway_->StartOnBackend(
        *call_, *context_, [this](grpc::GenericStub& stub) {
          stub.PrepareBidiStreamingCall(context_.get(), GrpcMethodPath(method_),
                                        grpc::StubOptions(), this);
          StartWriteLast(&request_, grpc::WriteOptions());
          StartCall();
        });
  }

  // The first read starts only here, so that the stream's headers (made
  // from the initial metadata) are read after gRPC has filled them in.
  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;  // The call failed: OnDone says how.
    initial_metadata_ = true;
    StartRead(&response_);
  }

  void OnWriteDone(bool /*ok*/) override {}

  void OnReadDone(bool ok) override {
    if (!ok) return;  // End of stream or failure: OnDone says which.
    std::unique_ptr<Message> event = Parse(response_, method_->output_type());
    if (event == nullptr) {
      context_->TryCancel();
      StartRead(&response_);
      return;
    }
    std::string out = FormatStreamEvent(format_, *event);
    if (out.empty()) {
      StartRead(&response_);
      return;
    }
    EnsureStarted();
    // The next read starts outside a reaction, so a hold keeps the call
    // (and this reactor) from finishing in between: without it, a stream
    // whose status arrives while no read is pending would reach OnDone and
    // be deleted before the write's callback runs.
    AddHold();
    // A failed write is the client leaving, which the exchange reports too:
    // BackendCall::ClientGone cancels the call.
    exchange_->Write(std::move(out), [this](bool /*written*/) {
      StartRead(&response_);
      RemoveHold();
    });
  }

  void OnDone(const grpc::Status& grpc_status) override {
    if (!initial_metadata_ && gateway_->Resends(*call_, grpc_status)) {
      // A reactor serves one call: the next attempt is a new one. It is
      // counted in flight before this one stops being, so that the gateway
      // never looks idle in between.
      auto* again =
          new StreamCall(gateway_, call_, call_->Resend(), exchange_, method_,
                         format_, std::move(headers_), std::move(request_));
      again->Start();
      gateway_->CallFinished(context_.get());
      delete this;
      return;
    }
    const grpc::Status status = gateway_->ClientVisibleStatus(grpc_status);
    if (status.ok()) {
      EnsureStarted();
      exchange_->FinishStream();
    } else {
      if (!started_) {
        AppendHeaders(
            ResponseHeadersFromMetadata(
                initial_metadata_ ? &context_->GetServerInitialMetadata()
                                  : nullptr,
                &context_->GetServerTrailingMetadata()),
            &headers_);
      }
      EndStreamWithError(exchange_, format_, started_, std::move(headers_),
                         ToHttpError(status));
    }
    // After the last exchange call above: once the gateway sees no call in
    // flight, nothing posts to the HTTP side any more.
    gateway_->CallFinished(context_.get());
    delete this;
  }

 private:
  void EnsureStarted() {
    if (started_) return;
    started_ = true;
    StartHttpStream(
        *exchange_, format_, headers_,
        ResponseHeadersFromMetadata(
            initial_metadata_ ? &context_->GetServerInitialMetadata() : nullptr,
            nullptr));
  }

  Gateway* const gateway_;
  const std::shared_ptr<BackendCall> call_;
  std::shared_ptr<grpc::ClientContext> context_;
  std::shared_ptr<HttpExchange> exchange_;
  const MethodDescriptor* method_;
  const StreamFormat format_;
  HttpHeaders headers_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  bool started_ = false;  // Touched only by reactor callbacks, one at a time.
  // Set by OnReadInitialMetadataDone, before the first read starts.
  bool initial_metadata_ = false;
};

// One server-streaming call answered in this process (a method of
// GatewayOptions::local_streams): the method's events reach the client as
// StreamCall's do, one write at a time. Held by the method until Finish.
class LocalStreamCall final : public LocalStreamSink {
 public:
  // `context` stands for the call among the gateway's calls in flight;
  // `cancel` is the call's.
  LocalStreamCall(Gateway* gateway,
                  std::shared_ptr<grpc::ClientContext> context,
                  std::shared_ptr<HttpExchange> exchange, StreamFormat format,
                  HttpHeaders headers, std::shared_ptr<LocalCancel> cancel)
      : gateway_(gateway),
        context_(std::move(context)),
        exchange_(std::move(exchange)),
        format_(format),
        headers_(std::move(headers)),
        cancel_(std::move(cancel)) {}

  // LocalStreamSink. The method calls these one at a time.
  void Write(const Message& event,
             const BackendCall::Metadata& initial_metadata,
             std::function<void(bool)> written) override {
    std::string out = FormatStreamEvent(format_, event);
    if (out.empty()) {
      written(true);
      return;
    }
    EnsureStarted(initial_metadata);
    // A failed write is the client leaving, which the exchange reports too:
    // CancelOnClientGone cancels the call (kClientGone).
    exchange_->Write(std::move(out), std::move(written));
  }

  void Finish(grpc::Status status,
              const BackendCall::Metadata& initial_metadata,
              const BackendCall::Metadata& trailing_metadata) override {
    if (status.error_code() == grpc::StatusCode::CANCELLED &&
        cancel_->deadline_passed()) {
      status = DeadlineExceeded();
    }
    status = gateway_->ClientVisibleStatus(status);
    if (status.ok()) {
      EnsureStarted(initial_metadata);
      exchange_->FinishStream();
    } else {
      if (!started_) {
        AppendHeaders(
            ResponseHeadersFromMetadata(initial_metadata, trailing_metadata),
            &headers_);
      }
      EndStreamWithError(exchange_, format_, started_, std::move(headers_),
                         ToHttpError(status));
    }
    // After the last exchange call above, as StreamCall's OnDone.
    gateway_->CallFinished(context_.get());
  }

 private:
  void EnsureStarted(const BackendCall::Metadata& initial_metadata) {
    if (started_) return;
    started_ = true;
    StartHttpStream(*exchange_, format_, headers_,
                    ResponseHeadersFromMetadata(initial_metadata, {}));
  }

  Gateway* const gateway_;
  const std::shared_ptr<grpc::ClientContext> context_;
  const std::shared_ptr<HttpExchange> exchange_;
  const StreamFormat format_;
  // Touched by Write and Finish only, which never overlap.
  HttpHeaders headers_;
  bool started_ = false;
  const std::shared_ptr<LocalCancel> cancel_;
};

}  // namespace

Gateway::Gateway(std::shared_ptr<BackendSet> backends, RouteTable routes,
                 GatewayOptions options)
    : backends_(std::move(backends)),
      routes_(std::move(routes)),
      options_(std::move(options)),
      cors_(options_.cors_origins),
      openapi_json_(GenerateOpenApi(routes_, "chatd REST API", "1.0.0",
                                    &ChatProtoDocs())),
      static_files_(LoadStaticFiles(options_.web_root)),
      openai_(this, options_.request_timeout) {
  CheckTemplateRoutesOrDie();
}

void Gateway::HandleOptions(const std::shared_ptr<HttpExchange>& exchange,
                            const std::string& path, const std::string& origin,
                            HttpHeaders headers) {
  std::vector<std::string> allowed;
  if (path == "/openapi.json" || path == "/healthz" || path == "/readyz" ||
      static_files_.contains(path)) {
    allowed = {"GET"};
  } else if (OpenAiApi::Serves(path)) {
    allowed = OpenAiApi::AllowedMethods(path);
  } else {
    allowed = routes_.Match("OPTIONS", path).allowed;
  }
  if (allowed.empty()) {
    RespondError(exchange, std::move(headers),
                 MakeHttpError(404, grpc::StatusCode::NOT_FOUND,
                               absl::StrCat("no route for ", path)));
    return;
  }
  for (auto& h : cors_.PreflightHeaders(
           origin, allowed,
           Header(exchange->request(), "access-control-request-headers"))) {
    headers.push_back(std::move(h));
  }
  allowed.push_back("OPTIONS");
  headers.emplace_back("Allow", absl::StrJoin(allowed, ", "));
  exchange->Respond(204, std::move(headers), "");
}

void Gateway::Handle(std::shared_ptr<HttpExchange> exchange) {
  const HttpRequest& request = exchange->request();
  const std::string request_id = RequestIdFor(request);
  const std::string origin = Header(request, "origin");
  // Returned to the client too, so it can find the call in the logs; the
  // access log reads the trace id from it.
  HttpHeaders headers = {
      {"x-request-id", request_id},
      {"traceparent", FormatTraceparent(GatewayTraceFor(request))}};
  for (auto& h : cors_.ResponseHeaders(origin)) {
    // A browser's script reads the rate-limit headers too.
    if (h.first == "Access-Control-Expose-Headers") {
      for (absl::string_view key : ResponseHeaderAllowList()) {
        absl::StrAppend(&h.second, ", ", key);
      }
    }
    headers.push_back(std::move(h));
  }

  const std::string target(request.target().data(), request.target().size());
  const size_t question = target.find('?');
  const std::string path = target.substr(0, question);
  const std::string query =
      question == std::string::npos ? "" : target.substr(question + 1);
  // HEAD is GET without the body (the connection leaves the body out).
  const std::string method = request.method() == boost::beast::http::verb::head
                                 ? std::string("GET")
                                 : std::string(request.method_string().data(),
                                               request.method_string().size());

  if (method == "OPTIONS") {
    exchange->SetRoute("OPTIONS");
    HandleOptions(exchange, path, origin, std::move(headers));
    return;
  }
  // The gateway's own metrics: outside authentication, like the documents
  // below, since no backend call is made.
  if (options_.serve_metrics && path == "/metrics" && method == "GET") {
    exchange->SetRoute("GET /metrics");
    headers.emplace_back("Content-Type", std::string(kMetricsContentType));
    exchange->Respond(200, std::move(headers),
                      MetricsRegistry::Default().Render());
    return;
  }
  if (HandleProbe(exchange, method, path, headers)) return;
  // The gateway's own documents: the OpenAPI description and the web page.
  const bool is_openapi = path == "/openapi.json";
  auto file = static_files_.find(path);
  if (is_openapi || file != static_files_.end()) {
    exchange->SetRoute(absl::StrCat("GET ", path));  // A fixed set of paths.
    if (method != "GET") {
      headers.emplace_back("Allow", "GET, OPTIONS");
      RespondError(exchange, std::move(headers),
                   MakeHttpError(405, grpc::StatusCode::UNIMPLEMENTED,
                                 absl::StrCat("method ", method,
                                              " is not allowed on ", path)));
      return;
    }
    headers.emplace_back("Content-Type", is_openapi
                                             ? std::string(kJson)
                                             : file->second.content_type);
    if (!is_openapi) headers.emplace_back("Cache-Control", "no-cache");
    exchange->Respond(200, std::move(headers),
                      is_openapi ? openapi_json_ : file->second.body);
    return;
  }

  // OpenAI's API, for its SDKs: its own shapes and errors (gateway/openai).
  if (OpenAiApi::Serves(path)) {
    openai_.Handle(std::move(exchange), method, path, request_id,
                   std::move(headers));
    return;
  }

  RouteMatch match = routes_.Match(method, path);
  if (match.kind == RouteMatch::kNotFound) {
    RespondError(
        exchange, std::move(headers),
        MakeHttpError(404, grpc::StatusCode::NOT_FOUND,
                      absl::StrCat("no route for ", method, " ", path)));
    return;
  }
  if (match.kind == RouteMatch::kMethodNotAllowed) {
    match.allowed.push_back("OPTIONS");
    headers.emplace_back("Allow", absl::StrJoin(match.allowed, ", "));
    RespondError(exchange, std::move(headers),
                 MakeHttpError(405, grpc::StatusCode::UNIMPLEMENTED,
                               absl::StrCat("method ", method,
                                            " is not allowed on ", path)));
    return;
  }
  const Route& route = *match.route;
  exchange->SetRoute(absl::StrCat(route.http_method, " ", route.path.text()));
  absl::StatusOr<std::unique_ptr<Message>> message =
      BuildRequest(route.method->input_type(), route.body, request.body(),
                   match.bindings, ParseQueryString(query));
  if (!message.ok()) {
    RespondError(exchange, std::move(headers),
                 MakeHttpError(400, grpc::StatusCode::INVALID_ARGUMENT,
                               std::string(message.status().message())));
    return;
  }

  CallBackend(exchange, *match.route, **message, request_id,
              std::move(headers));
}

void Gateway::CallBackend(const std::shared_ptr<HttpExchange>& exchange,
                          const Route& route, const Message& message,
                          const std::string& request_id, HttpHeaders headers) {
  const HttpRequest& request = exchange->request();
  absl::Duration timeout = options_.request_timeout;
  if (std::string value = Header(request, "grpc-timeout"); !value.empty()) {
    absl::StatusOr<absl::Duration> asked = ParseGrpcTimeout(value);
    if (!asked.ok()) {
      RespondError(exchange, std::move(headers),
                   MakeHttpError(400, grpc::StatusCode::INVALID_ARGUMENT,
                                 std::string(asked.status().message())));
      return;
    }
    timeout = std::min(timeout, *asked);
  }
  // The traceparent Handle put first among the response headers.
  std::string traceparent;
  for (const auto& [name, value] : headers) {
    if (name == "traceparent") traceparent = value;
  }
  auto backend_call = std::make_shared<BackendCall>(
      absl::Now() + timeout,
      ForwardedMetadata(request, request_id, exchange->client_address(),
                        traceparent));
  // A client that leaves cancels the call, and chat-server then cancels the
  // provider request.
  exchange->OnClientGone([backend_call] { backend_call->ClientGone(); });

  if (route.method->server_streaming()) {
    StreamFormat format = StreamFormat::kSse;
    if (TemplateBehaviourOf(route).raw_text_stream) {
      format = StreamFormat::kRawText;
    } else if (absl::StrContains(Header(request, "accept"),
                                 "application/x-ndjson")) {
      format = StreamFormat::kNdjson;
    }
    if (auto local = options_.local_streams.find(route.method->full_name());
        local != options_.local_streams.end()) {
      StartLocalStream(std::move(backend_call), exchange, format,
                       std::move(headers), message, *local->second);
      return;
    }
    std::shared_ptr<grpc::ClientContext> context = backend_call->NewAttempt();
    auto* call = new StreamCall(this, std::move(backend_call),
                                std::move(context), exchange, route.method,
                                format, std::move(headers), Serialize(message));
    call->Start();
    return;
  }

  auto call = std::make_shared<UnaryCall>();
  call->backend = std::move(backend_call);
  call->context = call->backend->NewAttempt();
  call->exchange = exchange;
  call->method = route.method;
  call->headers = std::move(headers);
  if (auto local = options_.local_methods.find(route.method->full_name());
      local != options_.local_methods.end()) {
    StartLocal(std::move(call), *local->second, message);
    return;
  }
  call->request = Serialize(message);
  if (FollowsAllPages(route, message)) {
    call->paged_request.reset(message.New());
    call->paged_request->CopyFrom(message);
    call->paged_request->GetReflection()->SetInt32(
        call->paged_request.get(),
        route.method->input_type()->FindFieldByName("page_size"),
        kUnpagedPageSize);
    call->request = Serialize(*call->paged_request);
  }
  StartUnary(std::move(call));
}

void Gateway::StartUnary(std::shared_ptr<UnaryCall> call) {
  CallStarted(call->context.get());
  StartOnBackend(
      *call->backend, *call->context, [this, call](grpc::GenericStub& stub) {
        stub.UnaryCall(call->context.get(), GrpcMethodPath(call->method),
                       grpc::StubOptions(), &call->request, &call->response,
                       [this, call](grpc::Status status) {
                         FinishUnary(call, std::move(status));
                       });
      });
}

std::optional<grpc::Status> Gateway::LocalCallStarted(
    grpc::ClientContext* context, std::shared_ptr<LocalCancel> cancel,
    absl::Time deadline) {
  bool cancelled;
  {
    absl::MutexLock lock(&mu_);
    calls_.insert(context);
    local_calls_.emplace(context, std::move(cancel));
    cancelled = cancelling_;
  }
  // As gRPC fails a call cancelled or past its deadline before it starts:
  // the method never sees it (no turn, no charge to the key). A client that
  // leaves is seen after Handle returns, through CancelOnClientGone.
  if (cancelled) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
  }
  if (absl::Now() >= deadline) return DeadlineExceeded();
  return std::nullopt;
}

namespace {

// A local call is cancelled as an RPC would be: when the client leaves and
// at its deadline (CancelAll cancels it at shutdown).
void WatchLocalCall(BackendCall& backend, HttpExchange& exchange,
                    const std::shared_ptr<LocalCancel>& cancel) {
  backend.CancelOnClientGone(
      [cancel] { cancel->Cancel(LocalCancelReason::kClientGone); });
  exchange.OnDeadline(backend.deadline(), [cancel] {
    cancel->Cancel(LocalCancelReason::kDeadline);
  });
}

}  // namespace

void Gateway::StartLocal(std::shared_ptr<UnaryCall> call,
                         LocalUnaryMethod& method, const Message& request) {
  // The attempt's context stands for the call among those in flight (it
  // carries no gRPC call): CancelAll, a client that leaves and the deadline
  // cancel it through `cancel`, as they would cancel an RPC.
  auto cancel = std::make_shared<LocalCancel>();
  grpc::ClientContext* const context = call->context.get();
  if (std::optional<grpc::Status> refused =
          LocalCallStarted(context, cancel, call->backend->deadline())) {
    call->local_metadata.emplace();
    AnswerUnary(call, *std::move(refused));
    CallFinished(context);
    return;
  }
  WatchLocalCall(*call->backend, *call->exchange, cancel);
  cancel->Set(method.Start(
      request, call->backend->metadata(), call->backend->deadline(),
      [this, call, context, cancel](LocalAnswer answer) {
        grpc::Status status = std::move(answer.status);
        if (status.error_code() == grpc::StatusCode::CANCELLED &&
            cancel->deadline_passed()) {
          status = DeadlineExceeded();
        }
        call->local_response = std::move(answer.response);
        call->local_metadata.emplace(std::move(answer.initial_metadata),
                                     std::move(answer.trailing_metadata));
        AnswerUnary(call, std::move(status));
        CallFinished(context);
      }));
}

void Gateway::StartLocalStream(std::shared_ptr<BackendCall> backend,
                               std::shared_ptr<HttpExchange> exchange,
                               StreamFormat format, HttpHeaders headers,
                               const Message& request,
                               LocalStreamMethod& method) {
  // As StartLocal's: the context stands for the call in flight.
  std::shared_ptr<grpc::ClientContext> context = backend->NewAttempt();
  auto cancel = std::make_shared<LocalCancel>();
  auto call = std::make_shared<LocalStreamCall>(this, context, exchange, format,
                                                std::move(headers), cancel);
  if (std::optional<grpc::Status> refused =
          LocalCallStarted(context.get(), cancel, backend->deadline())) {
    call->Finish(*std::move(refused), {}, {});
    return;
  }
  WatchLocalCall(*backend, *exchange, cancel);
  cancel->Set(method.Start(request, backend->metadata(), backend->deadline(),
                           std::move(call)));
}

void Gateway::FinishUnary(const std::shared_ptr<UnaryCall>& call,
                          grpc::Status status) {
  const std::shared_ptr<grpc::ClientContext> attempt = call->context;
  if (Resends(*call->backend, status)) {
    call->finished_attempts.push_back(attempt);
    call->context = call->backend->Resend();
    StartUnary(call);
  } else {
    AnswerUnary(call, std::move(status));
  }
  // Last: the next attempt or page is counted in flight before this one
  // stops being, and once the gateway sees no call in flight, nothing
  // touches the HTTP side any more.
  CallFinished(attempt.get());
}

void Gateway::AnswerUnary(const std::shared_ptr<UnaryCall>& call,
                          grpc::Status status) {
  status = ClientVisibleStatus(status);
  std::unique_ptr<Message> reply;
  if (status.ok()) {
    reply = call->local_metadata.has_value()
                ? std::move(call->local_response)
                : Parse(call->response, call->method->output_type());
    if (reply == nullptr) {
      status = grpc::Status(grpc::StatusCode::INTERNAL,
                            "the backend's answer did not parse");
    }
  }
  // Every page's rate-limit headers replace the previous page's: the
  // last call's say what is left.
  call->limit_headers =
      call->local_metadata.has_value()
          ? ResponseHeadersFromMetadata(call->local_metadata->first,
                                        call->local_metadata->second)
          : ResponseHeadersFromMetadata(
                &call->context->GetServerInitialMetadata(),
                &call->context->GetServerTrailingMetadata());
  if (!status.ok()) {
    AppendHeaders(std::move(call->limit_headers), &call->headers);
    RespondError(call->exchange, std::move(call->headers), ToHttpError(status));
    return;
  }
  if (call->paged_request != nullptr) {
    // Repeated fields append; next_page_token is this page's, set by
    // hand: proto3's MergeFrom skips an empty string, so the last
    // page's "" would leave the previous token (and ask for the last
    // page again and again).
    const FieldDescriptor* next =
        call->method->output_type()->FindFieldByName("next_page_token");
    std::string token = reply->GetReflection()->GetString(*reply, next);
    const int items_before =
        call->gathered == nullptr ? 0 : GatheredItems(*call->gathered);
    if (call->gathered == nullptr) {
      call->gathered = std::move(reply);
    } else {
      call->gathered->MergeFrom(*reply);
      call->gathered->GetReflection()->SetString(call->gathered.get(), next,
                                                 token);
    }
    const int items = GatheredItems(*call->gathered);
    // A page that adds nothing ends the gathering too: a backend that
    // kept answering empty pages with a token would otherwise be asked
    // again until the deadline. Its token is in the answer.
    if (!token.empty() && items < kMaxUnpagedItems && items > items_before) {
      if (call->backend->client_gone()->load()) {  // Nobody asks any more.
        RespondError(call->exchange, std::move(call->headers),
                     MakeHttpError(499, grpc::StatusCode::CANCELLED,
                                   "the client went away"));
        return;
      }
      call->paged_request->GetReflection()->SetString(
          call->paged_request.get(),
          call->method->input_type()->FindFieldByName("page_token"), token);
      call->request = Serialize(*call->paged_request);
      call->response.Clear();
      // A context serves one call: the next page gets a fresh one,
      // with the same deadline and metadata.
      call->finished_attempts.push_back(std::move(call->context));
      call->context = call->backend->NewAttempt();
      StartUnary(call);
      return;
    }
    reply = std::move(call->gathered);
  }
  AppendHeaders(std::move(call->limit_headers), &call->headers);
  call->headers.emplace_back("Content-Type", std::string(kJson));
  call->exchange->Respond(200, std::move(call->headers), MessageToJson(*reply));
}

void Gateway::CallStarted(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  calls_.insert(context);
  // gRPC cancels a call whose context was cancelled before it started.
  if (cancelling_) context->TryCancel();
}

void Gateway::CallFinished(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  calls_.erase(context);
  local_calls_.erase(context);
}

void Gateway::SetBackends(std::shared_ptr<BackendSet> backends) {
  {
    absl::MutexLock lock(&backends_mu_);
    backends_.swap(backends);
  }
  // Usually the last holder of the old set (and of its channels, but for
  // the calls running on them): it is destroyed here, outside any gRPC
  // callback and outside backends_mu_, starting the calls it held waiting.
  backends.reset();
}

void Gateway::StartOnBackend(const BackendCall& call,
                             grpc::ClientContext& context,
                             std::function<void(grpc::GenericStub&)> start) {
  std::shared_ptr<BackendSet> backends = Backends();
  // With one fixed channel gRPC's own waiting is the set's: the channel
  // reconnects to the same address, and every call waits on it.
  context.set_wait_for_ready(!backends->WaitsForCalls());
  backends->StartWhenReady(
      call.deadline(),
      // Also once shutting down: a call that reached the set after
      // CancelAll released it must not wait there past WaitIdle.
      [this, client_gone = call.client_gone()] {
        return client_gone->load() || shutting_down_.load();
      },
      [start = std::move(start)](std::shared_ptr<grpc::Channel> channel) {
        grpc::GenericStub stub(std::move(channel));
        start(stub);
      });
}

bool Gateway::Resends(const BackendCall& call, const grpc::Status& status) {
  if (!NoBackendTookCall(status) || call.client_gone()->load() ||
      call.resends() >= kMaxResends || absl::Now() >= call.deadline()) {
    return false;
  }
  absl::MutexLock lock(&mu_);
  return !cancelling_;
}

grpc::Status Gateway::ClientVisibleStatus(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::CANCELLED) return status;
  absl::MutexLock lock(&mu_);
  if (!cancelling_) return status;
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "chat-gateway is shutting down; try again");
}

bool Gateway::Ready() {
  {
    absl::MutexLock lock(&mu_);
    if (cancelling_) return false;
  }
  if (options_.ready) return options_.ready();
  return Backends()->AnyReady();
}

bool Gateway::HandleProbe(const std::shared_ptr<HttpExchange>& exchange,
                          const std::string& method, const std::string& path,
                          HttpHeaders& headers) {
  if (path != "/healthz" && path != "/readyz") return false;
  if (method != "GET") {
    headers.emplace_back("Allow", "GET, OPTIONS");
    RespondError(exchange, std::move(headers),
                 MakeHttpError(405, grpc::StatusCode::UNIMPLEMENTED,
                               absl::StrCat("method ", method,
                                            " is not allowed on ", path)));
    return true;
  }
  exchange->SetRoute(absl::StrCat("GET ", path));  // One of two paths.
  headers.emplace_back("Cache-Control", "no-store");
  if (path == "/healthz" || Ready()) {
    headers.emplace_back("Content-Type", std::string(kJson));
    exchange->Respond(200, std::move(headers), R"({"status":"ok"})");
    return true;
  }
  RespondError(exchange, std::move(headers),
               MakeHttpError(503, grpc::StatusCode::UNAVAILABLE,
                             "no backend is serving"));
  return true;
}

std::shared_ptr<BackendSet> Gateway::Backends() {
  absl::MutexLock lock(&backends_mu_);
  return backends_;
}

void Gateway::CancelAll() {
  std::vector<std::shared_ptr<LocalCancel>> local;
  {
    absl::MutexLock lock(&mu_);
    cancelling_ = true;
    for (grpc::ClientContext* context : calls_) context->TryCancel();
    for (const auto& [context, cancel] : local_calls_) local.push_back(cancel);
  }
  // Outside mu_: a local call may answer inside its cancel.
  for (const std::shared_ptr<LocalCancel>& cancel : local) {
    cancel->Cancel(LocalCancelReason::kShutdown);
  }
  shutting_down_.store(true);
  // Calls waiting for a READY backend start now, and finish CANCELLED.
  Backends()->ReleaseWaiting();
}

bool Gateway::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

}  // namespace chat::gateway
