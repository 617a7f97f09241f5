#include "server/app/embedded_http.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "chat/admin/v1/admin.pb.h"
#include "chat/v1/chat.grpc.pb.h"
#include "chat/v1/chat.pb.h"
#include "common/net_address.h"
#include "gateway/app/backend_channel.h"
#include "gateway/app/backend_set.h"
#include "gateway/http/http_metrics.h"
#include "gateway/transcode/routes.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/client_callback.h"
#include "server/service/chat_service_impl.h"
#include "server/service/grpc_status.h"

namespace chat {

// Whether chat.v1.ChatService is SERVING, kept current by a
// grpc.health.v1.Health/Watch on the in-process channel: what GET /readyz
// answers. chat-gateway reads the same from its channel's state, which its
// health checks drive; an in-process channel has no state to ask (gRPC logs
// an error and answers SHUTDOWN). The watch ends when the health service
// goes NOT_SERVING for shutdown, or on destruction.
class HealthWatch final
    : public grpc::ClientReadReactor<grpc::health::v1::HealthCheckResponse> {
 public:
  explicit HealthWatch(const std::shared_ptr<grpc::Channel>& channel)
      : stub_(grpc::health::v1::Health::NewStub(channel)) {
    request_.set_service("chat.v1.ChatService");
    stub_->async()->Watch(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  HealthWatch(const HealthWatch&) = delete;
  HealthWatch& operator=(const HealthWatch&) = delete;
  ~HealthWatch() override {
    context_.TryCancel();
    done_.WaitForNotification();
  }

  bool serving() const { return serving_.load(std::memory_order_acquire); }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows.
    serving_.store(
        response_.status() == grpc::health::v1::HealthCheckResponse::SERVING,
        std::memory_order_release);
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& /*status*/) override {
    serving_.store(false, std::memory_order_release);
    done_.Notify();
  }

 private:
  std::unique_ptr<grpc::health::v1::Health::Stub> stub_;
  grpc::ClientContext context_;
  grpc::health::v1::HealthCheckRequest request_;
  grpc::health::v1::HealthCheckResponse response_;
  std::atomic<bool> serving_{false};
  absl::Notification done_;
};

namespace {

// `message` as a `Proto`. The routes are made of this binary's descriptors,
// and the gateway builds requests from the generated factory, so the request
// of a method is its generated input type: a plain copy (CopyFrom aborts on
// another type, which would be a bug here).
template <typename Proto>
Proto CopyAs(const google::protobuf::Message& message) {
  Proto copy;
  copy.CopyFrom(message);
  return copy;
}

// Chat answered by the service itself rather than through the in-process
// channel: the route of every /chat. The request and the answer pass as
// messages, never serialized; the status and metadata are the RPC's.
class LocalChat final : public gateway::LocalUnaryMethod {
 public:
  explicit LocalChat(ChatServiceImpl* service) : service_(service) {}

  gateway::LocalCallCancel Start(
      const google::protobuf::Message& request,
      const gateway::BackendCall::Metadata& metadata, absl::Time deadline,
      std::function<void(gateway::LocalAnswer)> done) override {
    // Whatever the reason, the turn ends unanswered.
    std::function<void()> cancel = service_->ChatLocal(
        CopyAs<chat::v1::ChatRequest>(request), metadata, deadline,
        [done = std::move(done)](LocalTurnAnswer turn) {
          gateway::LocalAnswer answer;
          answer.status = ToGrpcStatus(turn.status);
          if (answer.status.ok()) {
            answer.response = std::make_unique<chat::v1::ChatResponse>(
                std::move(turn.response));
          }
          answer.initial_metadata = std::move(turn.initial_metadata);
          answer.trailing_metadata = std::move(turn.trailing_metadata);
          done(std::move(answer));
        });
    return
        [cancel = std::move(cancel)](gateway::LocalCancelReason) { cancel(); };
  }

 private:
  ChatServiceImpl* const service_;
};

// A stream's events and end as the service hands them to a local call's
// receiver, passed to the gateway as they are.
class SinkReceiver final : public LocalStreamReceiver {
 public:
  explicit SinkReceiver(std::shared_ptr<gateway::LocalStreamSink> sink)
      : sink_(std::move(sink)) {}

  void Write(const chat::v1::ChatStreamResponse& event,
             const MetadataPairs& initial_metadata,
             std::function<void(bool)> written) override {
    sink_->Write(event, initial_metadata, std::move(written));
  }
  void Finish(const absl::Status& status, const MetadataPairs& initial_metadata,
              const MetadataPairs& trailing_metadata) override {
    sink_->Finish(ToGrpcStatus(status), initial_metadata, trailing_metadata);
  }

 private:
  const std::shared_ptr<gateway::LocalStreamSink> sink_;
};

// The gateway's cancel of a local stream, from the service's: a client that
// leaves (or a shutdown) detaches from the answer, which runs on for a
// resume; the deadline ends an answer the call started (a resume's only
// detaches, see StreamAttachment::Expire).
gateway::LocalCallCancel StreamCancel(std::function<void(bool)> cancel) {
  return [cancel = std::move(cancel)](gateway::LocalCancelReason reason) {
    cancel(/*expired=*/reason == gateway::LocalCancelReason::kDeadline);
  };
}

// ChatStream answered by the service itself, as LocalChat answers Chat: the
// route of every streamed /chat. The request and the events pass as
// messages, never serialized.
class LocalChatStream final : public gateway::LocalStreamMethod {
 public:
  explicit LocalChatStream(ChatServiceImpl* service) : service_(service) {}

  gateway::LocalCallCancel Start(
      const google::protobuf::Message& request,
      const gateway::BackendCall::Metadata& metadata, absl::Time deadline,
      std::shared_ptr<gateway::LocalStreamSink> sink) override {
    return StreamCancel(service_->ChatStreamLocal(
        CopyAs<chat::v1::ChatStreamRequest>(request), metadata, deadline,
        std::make_shared<SinkReceiver>(std::move(sink))));
  }

 private:
  ChatServiceImpl* const service_;
};

// ResumeStream answered by the service itself: the route a page reconnects
// to after its stream dropped (GET /v1/sessions/{id}/stream).
class LocalResumeStream final : public gateway::LocalStreamMethod {
 public:
  explicit LocalResumeStream(ChatServiceImpl* service) : service_(service) {}

  gateway::LocalCallCancel Start(
      const google::protobuf::Message& request,
      const gateway::BackendCall::Metadata& metadata, absl::Time /*deadline*/,
      std::shared_ptr<gateway::LocalStreamSink> sink) override {
    return StreamCancel(service_->ResumeStreamLocal(
        CopyAs<chat::v1::ResumeStreamRequest>(request), metadata,
        std::make_shared<SinkReceiver>(std::move(sink))));
  }

 private:
  ChatServiceImpl* const service_;
};

}  // namespace

absl::Status CheckEmbeddedHttpSafeDefault(const EmbeddedHttpOptions& http,
                                          bool anonymous_remote_allowed) {
  if (http.listen.empty() || IsLoopbackHost(http.address.host) ||
      !anonymous_remote_allowed || http.allow_anonymous) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to serve HTTP on --http_listen=", http.listen,
      " (not loopback): --allow_anonymous serves callers without an API key "
      "from any host, so anyone who reaches this port could use it. Do one "
      "of: drop --allow_anonymous and create a key with 'chat-server keys "
      "create --tenant=NAME --name=NAME' (or POST /v1/admin/keys with the "
      "admin key); or pass --http_allow_anonymous "
      "(CHAT_HTTP_ALLOW_ANONYMOUS=true) to serve without keys on purpose"));
}

absl::StatusOr<std::unique_ptr<EmbeddedHttp>> EmbeddedHttp::Start(
    grpc::Server& server, ChatServiceImpl* chat_service,
    EmbeddedHttpOptions options) {
  absl::StatusOr<gateway::RouteTable> routes =
      gateway::RouteTable::FromServices(
          {chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
               "ChatService"),
           chat::admin::v1::CreateKeyRequest::descriptor()
               ->file()
               ->FindServiceByName("AdminService")});
  if (!routes.ok()) return absl::InternalError(routes.status().ToString());

  grpc::ChannelArguments args;
  // As chat-gateway's channel (gateway/app/backend_channel.cc): a gathered
  // history may be larger than gRPC's default 4 MiB.
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel = server.InProcessChannel(args);

  // Not make_unique: the constructor is private.
  std::unique_ptr<EmbeddedHttp> http(new EmbeddedHttp());
  http->route_count_ = static_cast<int>(routes->routes().size());
  http->health_ = std::make_unique<HealthWatch>(channel);
  options.gateway.ready = [health = http->health_.get()] {
    return health->serving();
  };
  options.gateway.local_methods.emplace(
      absl::StrCat(chat::v1::ChatService::service_full_name(), ".Chat"),
      std::make_shared<LocalChat>(chat_service));
  options.gateway.local_streams.emplace(
      absl::StrCat(chat::v1::ChatService::service_full_name(), ".ChatStream"),
      std::make_shared<LocalChatStream>(chat_service));
  options.gateway.local_streams.emplace(
      absl::StrCat(chat::v1::ChatService::service_full_name(), ".ResumeStream"),
      std::make_shared<LocalResumeStream>(chat_service));
  gateway::GatewayHttpMetrics::Get();  // Listed before any traffic.
  // One channel: every call starts on it at once (BackendSet never waits for
  // a READY state, which an in-process channel does not have).
  http->gateway_ = std::make_unique<gateway::Gateway>(
      std::make_shared<gateway::BackendSet>(
          std::vector<gateway::BackendChannel>{gateway::BackendChannel{
              "in-process", std::move(channel), {}, /*connects=*/false}}),
      *std::move(routes), std::move(options.gateway));
  http->server_ = std::make_unique<gateway::HttpServer>(
      options.http, [gateway = http->gateway_.get()](
                        std::shared_ptr<gateway::HttpExchange> exchange) {
        gateway->Handle(std::move(exchange));
      });
  absl::StatusOr<int> bound =
      http->server_->Start(options.address.host, options.address.port);
  if (!bound.ok()) {
    http->Shutdown(absl::Now());
    return absl::UnavailableError(absl::StrCat("--http_listen=", options.listen,
                                               ": ", bound.status().message()));
  }
  http->port_ = *bound;
  return http;
}

EmbeddedHttp::~EmbeddedHttp() { Shutdown(absl::Now()); }

void EmbeddedHttp::Shutdown(absl::Time deadline) {
  if (stopped_) return;
  stopped_ = true;
  // chat-gateway's order (gateway/app/main.cc): no gRPC callback may reach an
  // exchange once the I/O threads stop.
  server_->StopAccepting();
  server_->WaitIdle(std::max(deadline - absl::Now(), absl::ZeroDuration()));
  gateway_->CancelAll();
  gateway_->WaitIdle(absl::Seconds(10));
  server_->WaitIdle(absl::Seconds(1));  // Lets the last answers be written.
  server_->Stop();
}

}  // namespace chat
