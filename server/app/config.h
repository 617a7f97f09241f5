#ifndef CHAT_SERVER_APP_CONFIG_H_
#define CHAT_SERVER_APP_CONFIG_H_

// chat-server's configuration: its flags (each also settable as CHAT_<NAME>,
// or in ./.env), read and validated into one ServerConfig.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/flag_config.h"
#include "common/logging.h"
#include "server/app/embedded_http.h"
#include "server/app/grpc_transport.h"
#include "server/engine/chat_engine.h"
#include "server/engine/resumable_streams.h"
#include "server/llm/provider_factory.h"
#include "server/store/conversation_store.h"

ABSL_DECLARE_FLAG(std::string, log_format);
ABSL_DECLARE_FLAG(std::string, log_level);
ABSL_DECLARE_FLAG(bool, log_content);
ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(bool, session_titles);
ABSL_DECLARE_FLAG(std::string, title_model);
ABSL_DECLARE_FLAG(std::string, metrics_listen);
ABSL_DECLARE_FLAG(std::string, store);
ABSL_DECLARE_FLAG(std::string, provider);
ABSL_DECLARE_FLAG(std::string, default_system_prompt);
ABSL_DECLARE_FLAG(int64_t, max_message_bytes);
ABSL_DECLARE_FLAG(absl::Duration, echo_delay);
ABSL_DECLARE_FLAG(absl::Duration, shutdown_grace);
ABSL_DECLARE_FLAG(int, store_threads);
ABSL_DECLARE_FLAG(int, store_connections);
ABSL_DECLARE_FLAG(absl::Duration, session_ttl);
ABSL_DECLARE_FLAG(absl::Duration, idempotency_ttl);
ABSL_DECLARE_FLAG(absl::Duration, detached_stream_ttl);
ABSL_DECLARE_FLAG(int64_t, max_sessions_per_tenant);
ABSL_DECLARE_FLAG(int, max_turns_per_session);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(int, max_tokens);
ABSL_DECLARE_FLAG(int, max_tokens_ceiling);
ABSL_DECLARE_FLAG(std::vector<std::string>, allowed_models);
ABSL_DECLARE_FLAG(int, provider_retries);
ABSL_DECLARE_FLAG(absl::Duration, provider_retry_delay);
ABSL_DECLARE_FLAG(absl::Duration, connect_timeout);
ABSL_DECLARE_FLAG(absl::Duration, first_byte_timeout);
ABSL_DECLARE_FLAG(absl::Duration, idle_timeout);
ABSL_DECLARE_FLAG(std::string, provider_ca_file);
ABSL_DECLARE_FLAG(std::vector<std::string>, fallback);
ABSL_DECLARE_FLAG(absl::Duration, fallback_cooldown);
ABSL_DECLARE_FLAG(int64_t, max_context_tokens);
ABSL_DECLARE_FLAG(std::string, prices_file);
ABSL_DECLARE_FLAG(std::string, admin_key_file);
ABSL_DECLARE_FLAG(bool, allow_anonymous);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_client_ca);
ABSL_DECLARE_FLAG(int64_t, grpc_max_memory_mb);
ABSL_DECLARE_FLAG(int, max_concurrent_streams);
ABSL_DECLARE_FLAG(absl::Duration, max_connection_idle);
ABSL_DECLARE_FLAG(std::string, http_listen);
ABSL_DECLARE_FLAG(std::string, http_web_root);
ABSL_DECLARE_FLAG(std::string, http_cors_origins);
ABSL_DECLARE_FLAG(bool, http_access_log);
ABSL_DECLARE_FLAG(int, http_io_threads);
ABSL_DECLARE_FLAG(int, http_max_connections);
ABSL_DECLARE_FLAG(int, http_max_connections_per_client);
ABSL_DECLARE_FLAG(bool, http_allow_anonymous);

namespace chat {

// The environment prefix of chat-server's flags: CHAT_LISTEN, CHAT_STORE, ...
inline constexpr char kServerEnvPrefix[] = "CHAT_";

// The flags chat-server reads; each can also be set in the environment as
// CHAT_<NAME>. The command line wins.
const std::vector<std::string>& ServerFlagNames();

// Everything chat-server's main needs, validated.
struct ServerConfig {
  // HOST:PORT for gRPC, as given (port 0: the OS picks one).
  std::string listen;
  // HOST:PORT for GET /metrics; empty: not served.
  std::string metrics_listen;
  std::string store_url;
  LogOptions log;
  store::StoreOptions store_options;
  // The flag-controlled part; main adds keys and base URLs from the
  // environment (llm::ReadProviderEnvironment).
  llm::ProviderConfig provider;
  ChatEngineOptions engine;
  // Resumable streams (--detached_stream_ttl).
  ResumableStreamOptions streams;
  // 0: chosen by the store (StoreThreadsFor).
  int store_threads = 0;
  // 0: sessions are kept forever.
  absl::Duration session_ttl = absl::ZeroDuration();
  absl::Duration shutdown_grace = absl::Seconds(10);
  // The admin key (from --admin_key_file, else CHAT_ADMIN_KEY); empty: none,
  // and AdminService answers only GetAuthPolicy.
  std::string admin_key;
  // Serve calls without an API key from anywhere, as tenant "default".
  bool allow_anonymous = false;
  // --listen names a loopback address (127.x, ::1, localhost).
  bool listener_is_loopback = false;
  // TLS and transport limits of the gRPC port.
  GrpcTransportOptions transport;
  // The REST/JSON port served in this process (--http_*); http.listen
  // empty: none.
  EmbeddedHttpOptions http;
};

// The store pool's size: `flag_value` when set, else 4 for a store whose
// calls never block (memory) and 64 for one whose calls do (SQLite,
// PostgreSQL). A blocking store's commit holds a pool thread until its
// group commit is durable, so the pool bounds how many turns one commit can
// carry: at 64 connections, 4 threads gave SQLite 1,350 turns/s and 64 gave
// 2,600 (bench/RESULTS.md). For the memory store more threads only add
// wake-ups and cost CPU.
int StoreThreadsFor(int flag_value, const store::ConversationStore& store);

// The shortest admin key accepted.
inline constexpr size_t kMinAdminKeyLength = 24;

// The environment variable holding the admin key itself.
inline constexpr char kAdminKeyVariable[] = "CHAT_ADMIN_KEY";

// The safe default: a server reachable from other hosts must authenticate.
// FAILED_PRECONDITION, saying what to do, if `config` listens off loopback
// with no admin key and no --allow_anonymous while the store holds no active
// API key (`has_active_keys`).
absl::Status CheckSafeDefault(const ServerConfig& config, bool has_active_keys);

// Validates the current flag values. INVALID_ARGUMENT naming every bad flag
// and the range it accepts (with the CHAT_ variable that set it, if
// `sources` records one). Reads flags only, so tests can absl::SetFlag and
// call it.
absl::StatusOr<ServerConfig> ServerConfigFromFlags(
    const FlagSources& sources = FlagSources());

// The whole path for main: ./.env, CHAT_<NAME> variables, the command line
// (see LoadFlags), then ServerConfigFromFlags. --help prints usage and exits.
absl::StatusOr<ServerConfig> ParseServerConfig(int argc, char** argv);

}  // namespace chat

#endif  // CHAT_SERVER_APP_CONFIG_H_
