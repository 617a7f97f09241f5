#ifndef CHAT_GATEWAY_APP_GATEWAY_H_
#define CHAT_GATEWAY_APP_GATEWAY_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gateway/app/backend_set.h"
#include "gateway/app/local_method.h"
#include "gateway/app/static_files.h"
#include "gateway/http/cors.h"
#include "gateway/http/http_server.h"
#include "gateway/openai/openai_api.h"
#include "gateway/transcode/routes.h"
#include "gateway/transcode/sse_writer.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/generic_stub.h"

namespace chat::gateway {

struct GatewayOptions {
  // Deadline of a call whose request has no (shorter) Grpc-Timeout.
  absl::Duration request_timeout = absl::Minutes(5);
  // See CorsPolicy.
  std::string cors_origins;
  // Directory holding the web chat app (web/), the API docs page (docs/),
  // the JS client (js/) and the browser libraries (vendor/), served under
  // those names (see LoadStaticFiles); empty: none. Read at start-up.
  std::string web_root;
  // Answers GET /metrics with MetricsRegistry::Default() (false when
  // --metrics_listen serves them elsewhere: /metrics is then 404 here).
  bool serve_metrics = true;
  // Whether a backend can take calls (GET /readyz); empty: a backend
  // channel is READY (BackendSet::AnyReady). For a channel with no
  // connectivity state, such as chat-server's in-process one
  // (server/app/embedded_http.*).
  std::function<bool()> ready;
  // Methods answered in this process instead of through the backends (for
  // chat-server's own HTTP port); the rest of the route, its headers and
  // errors, is the same. A local unary method answers in one call: its
  // route does not gather pages.
  LocalUnaryMethods local_methods;
  // The same for server-streaming methods.
  LocalStreamMethods local_streams;
};

struct UnaryCall;

// The HTTP handler: matches a request to a route, transcodes it to the RPC,
// calls chat-server through one of the backend channels with gRPC's
// callback API (no thread waits for an answer), and transcodes the answer back.
// Routes get the standard behaviour (SSE or ndjson streams, one page per list)
// unless gateway/compat's table names them as the Python template's.
// Thread-safe; one instance serves every connection.
class Gateway final : public BackendCalls {
 public:
  // Serves `routes`. Aborts the process if gateway/compat's table of the
  // template's routes names one chat.proto does not declare.
  Gateway(std::shared_ptr<BackendSet> backends, RouteTable routes,
          GatewayOptions options);
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  void Handle(std::shared_ptr<HttpExchange> exchange);

  // Calls started from now on (the next page of a gathered list included)
  // go through `backends`. Calls already running finish on the channel they
  // started on: their ClientContext holds it, and it is closed once the
  // last of them is done; calls still waiting for a READY channel of the
  // old set start on one of its channels. For SIGHUP's re-read of the
  // backend TLS files.
  void SetBackends(std::shared_ptr<BackendSet> backends);

  // For shutdown: cancels every gRPC call in flight and every call started
  // from now on (each then finishes with CANCELLED); WaitIdle waits up to
  // `timeout` until none is in flight, true if none is. Once idle, no gRPC
  // callback touches an HttpExchange any more.
  void CancelAll();
  bool WaitIdle(absl::Duration timeout);

  // For the calls: calls `start` with a stub over the channel that `call`'s
  // attempt with `context` should use (see BackendSet::StartWhenReady).
  // Where the backend set keeps calls waiting itself (several backends, or
  // one looked up by name), the attempt does not wait inside gRPC
  // (wait_for_ready is off): a call that gRPC would queue on a channel
  // whose backend went away, behind a DNS lookup backed off for tens of
  // seconds, fails at once instead, and Resends() sends it again through
  // the set, which starts it on the backend that is up.
  void StartOnBackend(const BackendCall& call, grpc::ClientContext& context,
                      std::function<void(grpc::GenericStub&)> start) override;

  // Whether a failed attempt of `call` is made again: no backend took it
  // (NoBackendTookCall), its client is still there, its deadline has not
  // passed, the gateway is not shutting down, and it was resent fewer than
  // kMaxResends times (a bound for a backend whose health flaps).
  bool Resends(const BackendCall& call, const grpc::Status& status) override;
  static constexpr int kMaxResends = 20;

  // Bookkeeping of calls in flight, for CancelAll(). Called by the calls.
  void CallStarted(grpc::ClientContext* context) override;
  void CallFinished(grpc::ClientContext* context) override;

  // A call's final status as the HTTP client should see it: a call that
  // CancelAll() cut is UNAVAILABLE (503, try again: another gateway or this
  // one restarted will serve it), not the CANCELLED (499, "client closed
  // request") gRPC reports, since the client did nothing.
  grpc::Status ClientVisibleStatus(const grpc::Status& status) override;

  // Whether a backend can take calls: a backend channel is READY, which
  // with round_robin and health checking means at least one backend answers
  // SERVING. Asks idle channels to connect. False from CancelAll() on. What
  // GET /readyz answers.
  bool Ready();

 private:
  // Preflight and `Allow` for OPTIONS on `path`.
  void HandleOptions(const std::shared_ptr<HttpExchange>& exchange,
                     const std::string& path, const std::string& origin,
                     HttpHeaders headers);
  // Issues `call` (a unary RPC) and answers with its result, following
  // pages where the call gathers them.
  void StartUnary(std::shared_ptr<UnaryCall> call);
  // StartUnary for a method of options_.local_methods, with the call's
  // `request`.
  void StartLocal(std::shared_ptr<UnaryCall> call, LocalUnaryMethod& method,
                  const google::protobuf::Message& request);
  // A call of a method of options_.local_streams, made with `request`
  // through `exchange` (see CallBackend).
  void StartLocalStream(std::shared_ptr<BackendCall> backend,
                        std::shared_ptr<HttpExchange> exchange,
                        StreamFormat format, HttpHeaders headers,
                        const google::protobuf::Message& request,
                        LocalStreamMethod& method);
  // Counts a call answered in this process (with `context` standing for it)
  // in flight, its `cancel` for CancelAll. Returns the status it ends with
  // instead of starting, as gRPC fails such a call before it starts: once
  // CancelAll came, or past its `deadline`. CallFinished ends it either way.
  std::optional<grpc::Status> LocalCallStarted(
      grpc::ClientContext* context, std::shared_ptr<LocalCancel> cancel,
      absl::Time deadline);
  // The completion of one of StartUnary's calls: sends it again (Resends),
  // or AnswerUnary.
  void FinishUnary(const std::shared_ptr<UnaryCall>& call, grpc::Status status);
  // Answers, or asks for the next page.
  void AnswerUnary(const std::shared_ptr<UnaryCall>& call, grpc::Status status);
  // Calls the route's RPC with `message` and answers with its result.
  void CallBackend(const std::shared_ptr<HttpExchange>& exchange,
                   const Route& route, const google::protobuf::Message& message,
                   const std::string& request_id, HttpHeaders headers);

  // GET /healthz and /readyz: liveness and readiness probes, open without
  // keys. False if `path` is neither.
  bool HandleProbe(const std::shared_ptr<HttpExchange>& exchange,
                   const std::string& method, const std::string& path,
                   HttpHeaders& headers);

  // The current backends; a call takes a reference while it picks one.
  std::shared_ptr<BackendSet> Backends();

  absl::Mutex backends_mu_;
  std::shared_ptr<BackendSet> backends_ ABSL_GUARDED_BY(backends_mu_);
  const RouteTable routes_;
  const GatewayOptions options_;
  const CorsPolicy cors_;
  const std::string openapi_json_;
  const StaticFiles static_files_;
  // OpenAI's routes (gateway/openai), answered before the proto's.
  OpenAiApi openai_;
  absl::Mutex mu_;
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
  // The cancels of the calls in calls_ answered locally (LocalCallStarted),
  // keyed by the context that stands for the call there.
  absl::flat_hash_map<grpc::ClientContext*, std::shared_ptr<LocalCancel>>
      local_calls_ ABSL_GUARDED_BY(mu_);
  // Set by CancelAll: a call started afterwards (the next page of a gathered
  // list) is cancelled at once.
  bool cancelling_ ABSL_GUARDED_BY(mu_) = false;
  // cancelling_, for the backend set's `abandoned` check, which runs under
  // the set's own lock.
  std::atomic<bool> shutting_down_{false};
};

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_GATEWAY_H_
