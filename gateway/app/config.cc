#include "gateway/app/config.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/flag_config.h"
#include "gateway/app/backend_channel.h"
#include "gateway/http/tls_context.h"

// Each numeric flag's help states the range GatewayConfigFromFlags accepts;
// keep the two in step.
ABSL_FLAG(std::string, listen, "127.0.0.1:8000",
          "HTTP address to serve (HOST:PORT, port 0 to 65535; 0 picks a free "
          "one, logged at start; a port in use is an error)");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus metrics on (GET /metrics, plain "
          "HTTP); empty (the default): they are served at /metrics on "
          "--listen instead");
ABSL_FLAG(std::string, backend, "127.0.0.1:50051",
          "chat-server address, or several comma-separated HOST:PORT "
          "addresses (names or IPs; round-robin over the healthy ones)");
ABSL_FLAG(int64_t, max_body_bytes, 1 << 20,
          "largest request body (1 to 1073741824); larger ones are answered "
          "413");
ABSL_FLAG(absl::Duration, request_timeout, absl::Minutes(5),
          "deadline of each gRPC call, 1ms to 24h (a shorter Grpc-Timeout "
          "header wins)");
ABSL_FLAG(absl::Duration, read_timeout, absl::Seconds(30),
          "time to receive a request's body once its head is in (1ms to 1h)");
ABSL_FLAG(absl::Duration, header_timeout, absl::Seconds(10),
          "time to receive a request's head (request line and headers): from "
          "the connection's start for its first request, from the first byte "
          "for later ones; answered 408 on expiry (1ms to 1h)");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "how long a keep-alive connection may wait for its next request "
          "before it is closed (1ms to 24h)");
ABSL_FLAG(int, max_connections, 10000,
          "most open connections; one more is accepted and closed at once "
          "(1 to 1000000)");
ABSL_FLAG(int, max_connections_per_client, 1000,
          "most open connections from one client IP address (1 to "
          "1000000); behind a proxy, set it to --max_connections");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain (leaf first): serve HTTPS instead of HTTP "
          "on --listen; needs --tls_key; re-read on SIGHUP");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key (unencrypted) of --tls_cert; re-read on SIGHUP");
ABSL_FLAG(std::string, cors_origins, "",
          "origins allowed to call from a browser: comma-separated, or *; "
          "empty: none");
ABSL_FLAG(int, io_threads, 2, "threads serving HTTP connections (1 to 256)");
ABSL_FLAG(std::string, log_format, "text",
          "log lines as text (for people) or json (one object per line)");
ABSL_FLAG(std::string, log_level, "info",
          "the least severe lines logged: debug, info, warning or error");
ABSL_FLAG(bool, access_log, false,
          "log one line per request: method, target, status, duration, "
          "request id");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "how long running requests may finish after SIGTERM (0s to 1h)");
ABSL_FLAG(std::string, web_root, "",
          "directory with web/index.html and js/chat-client.js, served at "
          "/web/ and /js/chat-client.js (e.g. the repository's clients/)");

ABSL_FLAG(std::string, backend_ca, "",
          "PEM CAs that sign chat-server's certificate; set, calls to "
          "--backend use TLS");
ABSL_FLAG(std::string, backend_client_cert, "",
          "PEM client certificate for chat-server's mutual TLS (with "
          "--backend_client_key and --backend_ca)");
ABSL_FLAG(std::string, backend_client_key, "",
          "PEM private key of --backend_client_cert");
ABSL_FLAG(std::string, backend_tls_server_name, "",
          "name to check chat-server's certificate against instead of the "
          "--backend host (needs --backend_ca)");
ABSL_FLAG(bool, allow_anonymous, false,
          "serve on a non-loopback --listen address even though chat-server "
          "answers callers without an API key (by default the gateway then "
          "refuses to start; create keys on chat-server instead)");
ABSL_FLAG(absl::Duration, backend_wait, absl::Seconds(30),
          "on a non-loopback --listen address, how long start-up waits for "
          "chat-server to say whether it requires API keys (1ms to 1h)");

namespace chat::gateway {
namespace {

constexpr int64_t kMaxBodyBytesLimit = int64_t{1} << 30;
constexpr int kMaxIoThreads = 256;
constexpr int kMaxConnectionsLimit = 1000000;

}  // namespace

const std::vector<std::string>& GatewayFlagNames() {
  static const auto* const kNames =
      new std::vector<std::string>{"listen",
                                   "metrics_listen",
                                   "backend",
                                   "max_body_bytes",
                                   "request_timeout",
                                   "read_timeout",
                                   "header_timeout",
                                   "idle_timeout",
                                   "max_connections",
                                   "max_connections_per_client",
                                   "tls_cert",
                                   "tls_key",
                                   "cors_origins",
                                   "io_threads",
                                   "web_root",
                                   "access_log",
                                   "log_format",
                                   "log_level",
                                   "shutdown_grace",
                                   "backend_ca",
                                   "backend_client_cert",
                                   "backend_client_key",
                                   "backend_tls_server_name",
                                   "allow_anonymous",
                                   "backend_wait"};
  return *kNames;
}

absl::StatusOr<GatewayConfig> GatewayConfigFromFlags(
    const FlagSources& sources) {
  FlagErrors errors(&sources);
  GatewayConfig config;

  config.listen = absl::GetFlag(FLAGS_listen);
  absl::StatusOr<HostPort> listen = ParseHostPort("listen", config.listen);
  if (errors.Check(listen.status())) config.listen_address = *listen;
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!config.metrics_listen.empty()) {
    absl::StatusOr<HostPort> metrics =
        ParseHostPort("metrics_listen", config.metrics_listen);
    if (errors.Check(metrics.status())) config.metrics_address = *metrics;
    config.gateway.serve_metrics = false;
  }

  config.backend = absl::GetFlag(FLAGS_backend);
  if (absl::StatusOr<std::vector<std::string>> targets =
          BackendTargets(config.backend);
      !targets.ok()) {
    errors.Check(absl::InvalidArgumentError(absl::StrCat(
        "--backend must be HOST:PORT or several comma-separated HOST:PORT "
        "addresses (",
        targets.status().message(), "); got '", config.backend, "'")));
  }

  BackendTlsFiles tls_files;
  tls_files.ca_path = absl::GetFlag(FLAGS_backend_ca);
  tls_files.client_cert_path = absl::GetFlag(FLAGS_backend_client_cert);
  tls_files.client_key_path = absl::GetFlag(FLAGS_backend_client_key);
  tls_files.server_name = absl::GetFlag(FLAGS_backend_tls_server_name);
  if (absl::StatusOr<BackendTlsOptions> tls = LoadBackendTls(tls_files);
      errors.Check(tls.status())) {
    config.backend_tls = *std::move(tls);
  }
  config.backend_tls_files = std::move(tls_files);

  const int64_t max_body_bytes = absl::GetFlag(FLAGS_max_body_bytes);
  if (errors.Check(CheckIntInRange("max_body_bytes", max_body_bytes, 1,
                                   kMaxBodyBytesLimit))) {
    config.http.max_body_bytes = static_cast<size_t>(max_body_bytes);
  }
  config.http.read_timeout = absl::GetFlag(FLAGS_read_timeout);
  errors.Check(CheckDurationInRange("read_timeout", config.http.read_timeout,
                                    absl::Milliseconds(1), absl::Hours(1)));
  config.http.header_timeout = absl::GetFlag(FLAGS_header_timeout);
  errors.Check(CheckDurationInRange("header_timeout",
                                    config.http.header_timeout,
                                    absl::Milliseconds(1), absl::Hours(1)));
  config.http.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  errors.Check(CheckDurationInRange("idle_timeout", config.http.idle_timeout,
                                    absl::Milliseconds(1), absl::Hours(24)));
  config.http.max_connections = absl::GetFlag(FLAGS_max_connections);
  errors.Check(CheckIntInRange("max_connections", config.http.max_connections,
                               1, kMaxConnectionsLimit));
  config.http.max_connections_per_client =
      absl::GetFlag(FLAGS_max_connections_per_client);
  errors.Check(CheckIntInRange("max_connections_per_client",
                               config.http.max_connections_per_client, 1,
                               kMaxConnectionsLimit));
  config.http.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  config.http.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  if (config.http.tls_cert_file.empty() != config.http.tls_key_file.empty()) {
    errors.Check(absl::InvalidArgumentError(
        config.http.tls_cert_file.empty()
            ? "--tls_cert must be set with --tls_key (HTTPS needs both)"
            : "--tls_key must be set with --tls_cert (HTTPS needs both)"));
  } else if (!config.http.tls_cert_file.empty()) {
    // Loaded once here so that an unreadable or mismatched pair stops the
    // start with exit 2; the server loads its own copy.
    errors.Check(LoadServerTlsContext(config.http.tls_cert_file,
                                      config.http.tls_key_file)
                     .status());
  }
  config.http.io_threads = absl::GetFlag(FLAGS_io_threads);
  errors.Check(
      CheckIntInRange("io_threads", config.http.io_threads, 1, kMaxIoThreads));
  config.http.access_log = absl::GetFlag(FLAGS_access_log);
  if (absl::StatusOr<LogFormat> format =
          ParseLogFormat(absl::GetFlag(FLAGS_log_format));
      errors.Check(format.status())) {
    config.log.format = *format;
  }
  if (absl::StatusOr<LogSeverity> level =
          ParseLogLevel(absl::GetFlag(FLAGS_log_level));
      errors.Check(level.status())) {
    config.log.level = *level;
  }

  config.gateway.request_timeout = absl::GetFlag(FLAGS_request_timeout);
  errors.Check(CheckDurationInRange("request_timeout",
                                    config.gateway.request_timeout,
                                    absl::Milliseconds(1), absl::Hours(24)));
  config.gateway.cors_origins = absl::GetFlag(FLAGS_cors_origins);
  config.gateway.web_root = absl::GetFlag(FLAGS_web_root);

  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  errors.Check(CheckDurationInRange("shutdown_grace", config.shutdown_grace,
                                    absl::ZeroDuration(), absl::Hours(1)));

  config.allow_anonymous = absl::GetFlag(FLAGS_allow_anonymous);
  config.backend_wait = absl::GetFlag(FLAGS_backend_wait);
  errors.Check(CheckDurationInRange("backend_wait", config.backend_wait,
                                    absl::Milliseconds(1), absl::Hours(1)));

  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;
  return config;
}

absl::StatusOr<GatewayConfig> ParseGatewayConfig(int argc, char** argv) {
  FlagLoadOptions options;
  options.env_prefix = kGatewayEnvPrefix;
  options.env_flags = GatewayFlagNames();
  // No .env: it holds chat-server's settings and provider keys, which the
  // gateway has no use for, and proxy variables there would reroute the
  // gateway's own channel to chat-server.
  options.dotenv_path = "";
  options.help_files = "gateway/";
  options.usage =
      "REST/JSON gateway to chat-server.\n"
      "Every flag can also be set in the environment as CHAT_GATEWAY_<FLAG "
      "NAME IN CAPITALS>\n(for example CHAT_GATEWAY_BACKEND=10.0.0.5:50051); "
      "the command line wins.\n"
      "Usage: chat-gateway [--listen=HOST:PORT] [--backend=HOST:PORT[,...]] "
      "...";
  absl::StatusOr<FlagSources> sources = LoadFlags(options, argc, argv);
  if (!sources.ok()) return sources.status();
  return GatewayConfigFromFlags(*sources);
}

}  // namespace chat::gateway
