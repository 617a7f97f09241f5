// chat-server: serves chat.v1.ChatService and chat.admin.v1.AdminService
// (with reflection and health) until SIGINT or SIGTERM, then drains running
// calls and exits 0. SIGHUP re-reads the TLS certificate, key and client CA.
// `chat-server keys ...` manages API keys on the configured store instead
// (server/app/keys_command.h).

#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flag_config.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/metrics_http_server.h"
#include "common/net_address.h"
#include "common/process_setup.h"
#include "common/thread_pool.h"
#include "gateway/app/callback_threads.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "server/app/config.h"
#include "server/app/embedded_http.h"
#include "server/app/grpc_transport.h"
#include "server/app/keys_command.h"
#include "server/engine/chat_engine.h"
#include "server/engine/engine_metrics.h"
#include "server/engine/retention_sweeper.h"
#include "server/llm/provider_factory.h"
#include "server/llm/provider_metrics.h"
#include "server/service/admin_service_impl.h"
#include "server/service/authenticator.h"
#include "server/service/chat_service_impl.h"
#include "server/service/decode_error_interceptor.h"
#include "server/service/grpc_metrics_interceptor.h"
#include "server/service/health_service.h"
#include "server/service/tls_server_credentials.h"
#include "server/store/conversation_store.h"
#include "server/store/instrumented_store.h"

namespace {

// glibc keeps memory the process freed in its arenas, so after a burst of
// calls RSS stays at the peak: an HTTP/2 rapid reset flood of 20,000 streams
// frees ~400 MB within seconds and the process would keep it for good (see
// bench/RESULTS.md). The main thread, idle in sigtimedwait, hands free pages
// back this often; a trim of an unfragmented heap takes well under a
// millisecond.
constexpr absl::Duration kMemoryTrimInterval = absl::Seconds(10);

// Each layer registers its metrics on first use; they are registered here
// first, so that a scrape before any traffic already lists them.
void RegisterMetrics() {
  chat::MetricsRegistry& registry = chat::MetricsRegistry::Default();
  chat::AddProcessMetrics(registry);
  chat::AddBuildInfo(registry, chat::BuildVersion(), "chat-server");
  chat::GrpcMetrics::Get();
  chat::EngineMetrics::Get();
  chat::llm::ProviderMetrics::Get();
}

// Serves MetricsRegistry::Default() on `address` (validated by the config).
absl::StatusOr<std::unique_ptr<chat::MetricsHttpServer>> StartMetrics(
    const std::string& address) {
  chat::MetricsRegistry& registry = chat::MetricsRegistry::Default();
  absl::StatusOr<chat::HostPort> host_port =
      chat::ParseHostPort("metrics_listen", address);
  if (!host_port.ok()) return host_port.status();
  absl::StatusOr<std::unique_ptr<chat::MetricsHttpServer>> server =
      chat::MetricsHttpServer::Start(host_port->host, host_port->port,
                                     [&registry] { return registry.Render(); });
  if (!server.ok()) return server.status();
  chat::LogInfo("metrics on http://", host_port->host, ":", (*server)->port(),
                "/metrics");
  return server;
}

// SIGHUP: new connections get the files' current contents; open ones keep
// theirs. A bad set (unreadable, key not matching) leaves the old in use.
void ReloadTls(chat::ReloadableTlsCredentials* tls) {
  if (tls == nullptr) {
    chat::LogInfo("received SIGHUP; no TLS configured, nothing to reload");
    return;
  }
  if (absl::Status status = tls->Reload(); !status.ok()) {
    chat::LogError("received SIGHUP; keeping the current TLS certificate: ",
                   status.message());
    return;
  }
  chat::LogInfo(
      "received SIGHUP; re-read the TLS certificate, key and client CA: new "
      "connections use them");
}

int Run(chat::ServerConfig config) {
  chat::ApplyLogOptions(config.log);
  sigset_t signals = chat::BlockStopSignals();
  // Blocked in every thread and taken by sigwait below, so SIGHUP never
  // stops the process.
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  chat::RateLimitProtobufLog();
  // The embedded port's in-process channel makes callback calls too, and
  // may outlive the server's own use of gRPC's callback threads.
  chat::gateway::HoldCallbackThreads();

  // Before anything else: a bad certificate is a configuration error.
  std::unique_ptr<chat::ReloadableTlsCredentials> tls;
  if (!config.transport.tls.cert_path.empty()) {
    absl::StatusOr<std::unique_ptr<chat::ReloadableTlsCredentials>> created =
        chat::ReloadableTlsCredentials::Create(config.transport.tls);
    if (!created.ok()) {
      std::fprintf(stderr, "chat-server: %s\n",
                   std::string(created.status().message()).c_str());
      return 2;
    }
    tls = *std::move(created);
  }

  absl::StatusOr<std::unique_ptr<chat::store::ConversationStore>> store =
      chat::store::OpenConversationStore(config.store_url,
                                         config.store_options);
  if (!store.ok()) {
    chat::LogError("cannot open store ",
                   chat::store::RedactStoreUrl(config.store_url), ": ",
                   store.status().ToString());
    return 1;
  }
  // Every operation timed and its failures counted (chatd_store_...).
  *store = std::make_unique<chat::store::InstrumentedConversationStore>(
      *std::move(store));

  // Blocking is fine here: nothing is served yet.
  absl::StatusOr<bool> has_active_keys =
      (*store)->keys().HasActiveKeys(absl::Now());
  if (!has_active_keys.ok()) {
    chat::LogError("cannot read API keys: ",
                   has_active_keys.status().ToString());
    return 1;
  }
  if (absl::Status safe = chat::CheckSafeDefault(config, *has_active_keys);
      !safe.ok()) {
    chat::LogError(safe.message());
    return 2;
  }
  if (absl::Status safe = chat::CheckEmbeddedHttpSafeDefault(
          config.http, config.allow_anonymous);
      !safe.ok()) {
    chat::LogError(safe.message());
    return 2;
  }

  chat::llm::ProviderConfig& provider_config = config.provider;
  chat::llm::ReadProviderEnvironment(&provider_config);
  if (absl::StatusOr<chat::llm::ProviderChoice> choice =
          chat::llm::ChooseProvider(provider_config);
      choice.ok()) {
    chat::LogInfo("provider ", choice->name, ": ", choice->reason);
  }
  absl::StatusOr<std::unique_ptr<chat::llm::LlmProvider>> provider =
      chat::llm::MakeLlmProvider(provider_config);
  if (!provider.ok()) {
    chat::LogError(provider.status().ToString());
    return 1;
  }

  auto pool = std::make_unique<chat::ThreadPool>(
      chat::StoreThreadsFor(config.store_threads, **store));
  // The echo provider's answers only repeat the message: its sessions are
  // named after their first words, without a model call.
  config.engine.titles.from_first_words = (*provider)->name() == "echo";
  auto engine = std::make_unique<chat::ChatEngine>(
      store->get(), provider->get(), pool.get(), config.engine);
  chat::AuthenticatorOptions auth_options;
  auth_options.allow_anonymous = config.allow_anonymous;
  auth_options.listener_is_loopback = config.listener_is_loopback;
  auth_options.admin_key = config.admin_key;
  auto authenticator = std::make_unique<chat::Authenticator>(
      &(*store)->keys(), pool.get(), std::move(auth_options));
  // What GET /v1/models (ListModels) offers: --allowed_models when set,
  // else the provider's default model and the fallbacks' models.
  chat::ModelCatalog models;
  {
    std::vector<std::string> configured =
        chat::llm::ConfiguredModels(provider_config);
    if (!configured.empty()) models.default_model = configured.front();
    models.models = config.engine.limits.allowed_models.empty()
                        ? std::move(configured)
                        : config.engine.limits.allowed_models;
  }
  chat::ChatServiceImpl chat_service(engine.get(), store->get(), pool.get(),
                                     authenticator.get(), std::move(models),
                                     config.streams);
  chat::AdminServiceImpl admin_service(store->get(), pool.get(),
                                       authenticator.get());
  chat::HealthService health_service;
  // NOT_SERVING while the store does not answer, so that gateways send this
  // replica's calls to one that still has its database.
  auto store_probe =
      std::make_unique<chat::StoreHealthProbe>(store->get(), &health_service);
  std::unique_ptr<chat::RetentionSweeper> sweeper;
  if (const absl::Duration ttl = config.session_ttl;
      ttl > absl::ZeroDuration()) {
    sweeper = std::make_unique<chat::RetentionSweeper>(
        store->get(), ttl, chat::RetentionSweeper::IntervalFor(ttl));
  }

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  const std::string& listen = config.listen;
  builder.AddListeningPort(
      listen,
      tls != nullptr ? tls->credentials() : grpc::InsecureServerCredentials(),
      &port);
  chat::ApplyTransportLimits(config.transport, &builder);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<chat::DecodeErrorInterceptorFactory>());
  // After the decode-error one, so it counts the status actually sent.
  interceptors.push_back(
      std::make_unique<chat::GrpcMetricsInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  // gRPC sets SO_REUSEPORT by default, which lets a second chat-server bind
  // a port this one holds and silently take half its connections. Off, a
  // busy port fails BuildAndStart below.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Leave room above the message limit for the other fields, so an
  // oversized message gets our INVALID_ARGUMENT rather than gRPC's
  // RESOURCE_EXHAUSTED.
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::max<size_t>(
      4 << 20, 2 * config.engine.limits.max_message_bytes + (1 << 20))));
  if (!config.metrics_listen.empty() || !config.http.listen.empty()) {
    RegisterMetrics();
  }
  std::unique_ptr<chat::MetricsHttpServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<chat::MetricsHttpServer>> started =
        StartMetrics(config.metrics_listen);
    if (!started.ok()) {
      chat::LogError(started.status().message());
      return 1;
    }
    metrics_server = *std::move(started);
  }
  builder.RegisterService(&chat_service);
  builder.RegisterService(&admin_service);
  builder.RegisterService(&health_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    // Not a configuration error (exit 2): the same flags may work once the
    // port is free, so a supervisor may retry.
    chat::LogError("cannot listen on ", listen,
                   " (port in use by another process, or address not local)");
    return 1;
  }
  // Before the "listening on" line, which tells scripts and tests that
  // everything is up.
  std::unique_ptr<chat::EmbeddedHttp> http;
  if (!config.http.listen.empty()) {
    chat::RaiseDescriptorLimit();
    if (!chat::IsLoopbackHost(config.http.address.host) &&
        config.allow_anonymous) {
      chat::LogWarning(
          "--http_allow_anonymous: serving callers without an API key on "
          "non-loopback --http_listen=",
          config.http.listen);
    }
    absl::StatusOr<std::unique_ptr<chat::EmbeddedHttp>> started =
        chat::EmbeddedHttp::Start(*server, &chat_service, config.http);
    if (!started.ok()) {
      // As for the gRPC port: exit 1, the flags may work once it is free.
      chat::LogError(started.status().message());
      server->Shutdown();
      return 1;
    }
    http = *std::move(started);
    const std::string& http_listen = config.http.listen;
    chat::LogInfo(
        "REST/JSON on http://", http_listen.substr(0, http_listen.rfind(':')),
        ":", http->port(), " (", http->route_count(),
        " routes, through the in-process channel; Chat, ChatStream and "
        "ResumeStream directly)");
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  chat::LogInfo("chat-server listening on ", host, ":", port,
                tls == nullptr ? "" : " with TLS",
                config.transport.tls.client_ca_path.empty()
                    ? ""
                    : " (client certificates required)",
                " (store ", chat::store::RedactStoreUrl(config.store_url),
                ", provider ", (*provider)->name(), ", authentication: ",
                config.allow_anonymous ? "API keys, anonymous allowed"
                : config.listener_is_loopback
                    ? "API keys; anonymous on loopback while no key exists"
                    : "API keys",
                config.admin_key.empty() ? "" : ", admin key set", ")");

  int signal_number = 0;
  for (;;) {
    const timespec trim_interval = absl::ToTimespec(kMemoryTrimInterval);
    signal_number = sigtimedwait(&signals, nullptr, &trim_interval);
    if (signal_number < 0) {  // Timed out (or EINTR): nothing to stop for.
      malloc_trim(0);
      continue;
    }
    if (signal_number != SIGHUP) break;
    ReloadTls(tls.get());
  }
  const absl::Duration grace = config.shutdown_grace;
  chat::LogInfo("received ", strsignal(signal_number),
                "; finishing running calls (up to ",
                absl::FormatDuration(grace), ")");
  const absl::Time deadline = absl::Now() + grace;
  health_service.SetNotServing();
  // HTTP first: its running requests need the gRPC server until they end.
  // gRPC callers meanwhile see NOT_SERVING and go elsewhere.
  if (http != nullptr) http->Shutdown(deadline);
  server->Shutdown(absl::ToChronoTime(deadline));
  server->Wait();
  // Order matters: the engine waits for its turns, whose last steps run on
  // the pool and may come from the provider; the store goes last.
  sweeper.reset();
  store_probe.reset();
  chat_service.StopStreams();  // Cancels detached answers: before the engine.
  engine.reset();
  provider->reset();
  pool.reset();  // Runs its last authentication lookups first.
  // Only now: a Chat the HTTP port answers without gRPC (ChatLocal) that
  // outlived the port's shutdown still answers into its gateway, as the
  // engine and the pool finish it; the port's threads have stopped, so
  // nothing is sent.
  http.reset();
  authenticator.reset();
  store->reset();
  metrics_server.reset();
  chat::LogInfo("chat-server stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  chat::DisableMutexDeadlockDetection();
  if (argc > 1 && std::string(argv[1]) == "keys") {
    return chat::RunKeysCommand(argc, argv);
  }
  absl::StatusOr<chat::ServerConfig> config =
      chat::ParseServerConfig(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "chat-server: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  return Run(*std::move(config));
}
