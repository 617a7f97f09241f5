// chat-gateway: REST/JSON in front of chat-server. Serves the routes of the
// proto's google.api.http annotations (chat.v1.ChatService and
// chat.admin.v1.AdminService) over HTTP/1.1 (or HTTPS), transcoded to gRPC
// calls on chat-server, until SIGINT or SIGTERM. SIGHUP re-reads the TLS
// certificate and key, and the files of TLS to chat-server (--backend_ca,
// --backend_client_cert, --backend_client_key).

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "chat/admin/v1/admin.pb.h"
#include "chat/v1/chat.pb.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/metrics_http_server.h"
#include "common/net_address.h"
#include "common/process_setup.h"
#include "gateway/app/auth_policy.h"
#include "gateway/app/backend_channel.h"
#include "gateway/app/backend_set.h"
#include "gateway/app/callback_threads.h"
#include "gateway/app/config.h"
#include "gateway/app/gateway.h"
#include "gateway/http/http_metrics.h"
#include "gateway/http/http_server.h"
#include "gateway/transcode/routes.h"

namespace {

// Whether one of `stop_signals` (blocked, so only pending) has arrived.
bool StopSignalPending(const sigset_t& stop_signals) {
  sigset_t pending;
  if (sigpending(&pending) != 0) return false;
  for (int signal_number : {SIGINT, SIGTERM}) {
    if (sigismember(&stop_signals, signal_number) == 1 &&
        sigismember(&pending, signal_number) == 1) {
      return true;
    }
  }
  return false;
}

// Re-reads --backend_ca and the client certificate and key; if they are
// good, calls started from now on go through a new channel built with them,
// and calls already running finish on the old one. A bad set is logged (the
// message names files, never a key's contents) and the current channel kept.
void ReloadBackendTls(const chat::gateway::GatewayConfig& config,
                      chat::gateway::Gateway& gateway) {
  absl::StatusOr<chat::gateway::BackendTlsOptions> tls =
      chat::gateway::LoadBackendTls(config.backend_tls_files);
  using Backends = std::vector<chat::gateway::BackendChannel>;
  absl::StatusOr<Backends> channels =
      tls.ok() ? chat::gateway::MakeBackends(config.backend, *tls)
               : absl::StatusOr<Backends>(tls.status());
  if (!channels.ok()) {
    chat::LogError(
        "SIGHUP: backend TLS reload failed, keeping the current channel to "
        "chat-server: ",
        channels.status().message());
    return;
  }
  // The set connects (and starts the health watches) now rather than on
  // the first call, so that call does not wait for the handshake.
  gateway.SetBackends(
      std::make_shared<chat::gateway::BackendSet>(*std::move(channels)));
  chat::LogInfo("SIGHUP: reloaded backend TLS files; new calls to ",
                config.backend, " use ",
                chat::gateway::DescribeBackendTls(*tls));
}

// Exit codes of main: 2 for a configuration that must change (bad flags, or
// no authentication in front of a network), 1 for a failure that may pass.
constexpr int kExitFailure = 1;
constexpr int kExitBadConfiguration = 2;

int Run(const chat::gateway::GatewayConfig& config) {
  chat::ApplyLogOptions(config.log);
  const sigset_t stop_signals = chat::BlockStopSignals();
  sigset_t signals = stop_signals;
  // SIGHUP re-reads the certificates; its default action (ending the
  // process) must never run, nor may an inherited "ignore" swallow it. Like
  // the stop signals it is blocked before any thread starts and taken by
  // sigwait below.
  signal(SIGHUP, SIG_DFL);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  chat::RaiseDescriptorLimit();
  // Before the first channel: a SIGHUP's replaced channel may be released
  // in its last call's callback.
  chat::gateway::HoldCallbackThreads();

  absl::StatusOr<chat::gateway::RouteTable> routes =
      chat::gateway::RouteTable::FromServices(
          {chat::v1::ChatRequest::descriptor()->file()->FindServiceByName(
               "ChatService"),
           chat::admin::v1::CreateKeyRequest::descriptor()
               ->file()
               ->FindServiceByName("AdminService")});
  if (!routes.ok()) {
    chat::LogError(routes.status().ToString());
    return kExitFailure;
  }
  const std::string& backend = config.backend;
  absl::StatusOr<std::vector<chat::gateway::BackendChannel>> channels =
      chat::gateway::MakeBackends(backend, config.backend_tls);
  if (!channels.ok()) {
    chat::LogError(channels.status().ToString());
    return kExitFailure;
  }
  auto backends =
      std::make_shared<chat::gateway::BackendSet>(*std::move(channels));
  const size_t route_count = routes->routes().size();
  if (chat::gateway::KeysCrossNetworkInClear(
          backend, !config.backend_tls.root_certs.empty())) {
    chat::LogWarning(
        "--backend=", backend,
        " is not loopback and --backend_ca is not set: API keys and "
        "conversations cross the network to chat-server unencrypted; set "
        "--backend_ca (CHAT_GATEWAY_BACKEND_CA) to use TLS");
  }

  // The safe default: on a network, only in front of a chat-server that
  // requires API keys (or when told so). Asked before binding, so a refused
  // gateway never accepts a connection.
  if (!chat::IsLoopbackHost(config.listen_address.host)) {
    if (config.allow_anonymous) {
      chat::LogWarning(
          "--allow_anonymous: not checking whether chat-server requires API "
          "keys on non-loopback --listen=",
          config.listen);
    } else {
      chat::LogInfo("--listen=", config.listen,
                    " is not loopback: asking chat-server at ", backend,
                    " whether it requires API keys (waiting up to ",
                    absl::FormatDuration(config.backend_wait), ")");
      absl::Status policy = chat::gateway::CheckBackendAuthPolicy(
          *backends, config.backend_wait,
          [&stop_signals] { return StopSignalPending(stop_signals); });
      if (absl::IsCancelled(policy)) {
        chat::LogInfo("chat-gateway stopped before it started");
        return 0;
      }
      if (!policy.ok()) {
        chat::LogError(policy.message());
        return absl::IsFailedPrecondition(policy) ? kExitBadConfiguration
                                                  : kExitFailure;
      }
    }
  }

  chat::MetricsRegistry& registry = chat::MetricsRegistry::Default();
  chat::AddProcessMetrics(registry);
  chat::AddBuildInfo(registry, chat::BuildVersion(), "chat-gateway");
  chat::gateway::GatewayHttpMetrics::Get();  // Listed before any traffic.
  std::unique_ptr<chat::MetricsHttpServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<chat::MetricsHttpServer>> started =
        chat::MetricsHttpServer::Start(
            config.metrics_address.host, config.metrics_address.port,
            [&registry] { return registry.Render(); });
    if (!started.ok()) {
      chat::LogError(started.status().message());
      return kExitFailure;
    }
    metrics_server = *std::move(started);
    chat::LogInfo("metrics on http://", config.metrics_address.host, ":",
                  metrics_server->port(), "/metrics");
  }

  chat::gateway::Gateway gateway(backends, *std::move(routes), config.gateway);
  backends.reset();  // The gateway holds the set (SIGHUP replaces it).

  chat::gateway::HttpServer server(
      config.http, [&gateway](std::shared_ptr<chat::gateway::HttpExchange> e) {
        gateway.Handle(std::move(e));
      });
  // The acceptor sets SO_REUSEADDR only (not SO_REUSEPORT), so a port another
  // process listens on fails here. Exit 1, not 2: the flags are valid and
  // may work once the port is free.
  absl::StatusOr<int> bound =
      server.Start(config.listen_address.host, config.listen_address.port);
  if (!bound.ok()) {
    chat::LogError(bound.status().ToString());
    return kExitFailure;
  }
  const std::string& listen = config.listen;
  chat::LogInfo("chat-gateway listening on ",
                listen.substr(0, listen.rfind(':')), ":", *bound, " (",
                server.serves_tls() ? "HTTPS" : "HTTP", ", backend ", backend,
                ", ", route_count, " routes)");
  if (server.serves_tls()) {
    chat::LogInfo("TLS certificate ", server.DescribeTls());
  }

  const bool backend_tls = !config.backend_tls.root_certs.empty();
  if (backend_tls) {
    chat::LogInfo("backend ",
                  chat::gateway::DescribeBackendTls(config.backend_tls));
  }

  int signal_number = 0;
  for (;;) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) break;
    if (!server.serves_tls() && !backend_tls) {
      chat::LogInfo("SIGHUP: not serving HTTPS, nothing to reload");
      continue;
    }
    if (server.serves_tls()) {
      // New connections get the new certificate; open ones keep theirs.
      absl::StatusOr<std::string> reloaded = server.ReloadTls();
      if (reloaded.ok()) {
        chat::LogInfo("SIGHUP: reloaded TLS certificate ", *reloaded);
      } else {
        chat::LogError(
            "SIGHUP: TLS reload failed, keeping the current "
            "certificate: ",
            reloaded.status().message());
      }
    }
    if (backend_tls) ReloadBackendTls(config, gateway);
  }
  const absl::Duration grace = config.shutdown_grace;
  // Running requests (streams included) get the grace period; then the
  // rest are cancelled. The I/O threads stop only once no gRPC callback can
  // reach them any more. Logged once new requests are refused, so that a
  // reader of the log knows they are.
  server.StopAccepting();
  chat::LogInfo("received ", strsignal(signal_number),
                "; finishing running requests (up to ",
                absl::FormatDuration(grace), ")");
  if (!server.WaitIdle(grace)) {
    chat::LogInfo("cancelling the requests still running");
  }
  gateway.CancelAll();
  gateway.WaitIdle(absl::Seconds(10));
  server.WaitIdle(absl::Seconds(1));  // Lets the last answers be written.
  server.Stop();
  chat::LogInfo("chat-gateway stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  chat::gateway::PollBackendConnectionsOften();
  chat::DisableMutexDeadlockDetection();
  absl::StatusOr<chat::gateway::GatewayConfig> config =
      chat::gateway::ParseGatewayConfig(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "chat-gateway: %s\n",
                 std::string(config.status().message()).c_str());
    return kExitBadConfiguration;
  }
  return Run(*config);
}
