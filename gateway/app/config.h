#ifndef CHAT_GATEWAY_APP_CONFIG_H_
#define CHAT_GATEWAY_APP_CONFIG_H_

// chat-gateway's configuration: its flags (each also settable as
// CHAT_GATEWAY_<NAME>, or in ./.env), read and validated into one
// GatewayConfig.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/flag_config.h"
#include "common/logging.h"
#include "gateway/app/backend_channel.h"
#include "gateway/app/gateway.h"
#include "gateway/http/http_server.h"

ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(std::string, backend);
ABSL_DECLARE_FLAG(int64_t, max_body_bytes);
ABSL_DECLARE_FLAG(absl::Duration, request_timeout);
ABSL_DECLARE_FLAG(absl::Duration, read_timeout);
ABSL_DECLARE_FLAG(absl::Duration, header_timeout);
ABSL_DECLARE_FLAG(absl::Duration, idle_timeout);
ABSL_DECLARE_FLAG(int, max_connections);
ABSL_DECLARE_FLAG(int, max_connections_per_client);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, cors_origins);
ABSL_DECLARE_FLAG(int, io_threads);
ABSL_DECLARE_FLAG(bool, access_log);
ABSL_DECLARE_FLAG(std::string, log_format);
ABSL_DECLARE_FLAG(std::string, log_level);
ABSL_DECLARE_FLAG(absl::Duration, shutdown_grace);
ABSL_DECLARE_FLAG(std::string, web_root);
ABSL_DECLARE_FLAG(std::string, backend_ca);
ABSL_DECLARE_FLAG(std::string, backend_client_cert);
ABSL_DECLARE_FLAG(std::string, backend_client_key);
ABSL_DECLARE_FLAG(std::string, backend_tls_server_name);
ABSL_DECLARE_FLAG(bool, allow_anonymous);
ABSL_DECLARE_FLAG(std::string, metrics_listen);
ABSL_DECLARE_FLAG(absl::Duration, backend_wait);

namespace chat::gateway {

// Not CHAT_<NAME>: chat-server reads those, and both often share a shell.
inline constexpr char kGatewayEnvPrefix[] = "CHAT_GATEWAY_";

// The flags chat-gateway reads; each can also be set in the environment as
// CHAT_GATEWAY_<NAME>. The command line wins.
const std::vector<std::string>& GatewayFlagNames();

// Everything chat-gateway's main needs, validated.
struct GatewayConfig {
  // --listen as given (for the log) and split (for the acceptor).
  std::string listen;
  HostPort listen_address;
  // --metrics_listen: empty, /metrics is served on --listen.
  std::string metrics_listen;
  HostPort metrics_address;
  // chat-server: one address or several comma-separated IP:PORT.
  std::string backend;
  // TLS to chat-server (the files' contents, read at start) and where the
  // files are, to re-read them on SIGHUP.
  BackendTlsOptions backend_tls;
  BackendTlsFiles backend_tls_files;
  GatewayOptions gateway;
  HttpServerOptions http;
  LogOptions log;
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Serve on a non-loopback address even if chat-server would answer
  // callers that carry no API key (see CheckBackendAuthPolicy).
  bool allow_anonymous = false;
  // How long start-up waits for chat-server to answer GetAuthPolicy.
  absl::Duration backend_wait = absl::Seconds(30);
};

// Validates the current flag values. INVALID_ARGUMENT naming every bad flag
// and the range it accepts (with the CHAT_GATEWAY_ variable that set it, if
// `sources` records one). Reads flags only, so tests can absl::SetFlag and
// call it.
absl::StatusOr<GatewayConfig> GatewayConfigFromFlags(
    const FlagSources& sources = FlagSources());

// The whole path for main: ./.env, CHAT_GATEWAY_<NAME> variables, the command
// line (see LoadFlags), then GatewayConfigFromFlags. --help prints usage and
// exits.
absl::StatusOr<GatewayConfig> ParseGatewayConfig(int argc, char** argv);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_APP_CONFIG_H_
