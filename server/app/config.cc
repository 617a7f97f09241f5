#include "server/app/config.h"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/flag_config.h"
#include "common/net_address.h"
#include "server/engine/price_table.h"
#include "server/service/authenticator.h"

// Each numeric flag's help states the range ServerConfigFromFlags accepts;
// keep the two in step.
ABSL_FLAG(std::string, log_format, "text",
          "log lines as text (for people) or json (one object per line)");
ABSL_FLAG(std::string, log_level, "info",
          "the least severe lines logged: debug, info, warning or error");
ABSL_FLAG(bool, log_content, false,
          "put message content (prompts and replies) in the per-turn log "
          "line; off, content never reaches the logs");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve gRPC on, HOST:PORT with a port from 0 to 65535 "
          "(0 picks a free one); a port in use is an error. Env: CHAT_LISTEN.");
ABSL_FLAG(std::string, metrics_listen, "",
          "Address to serve Prometheus metrics on (GET /metrics over plain "
          "HTTP), HOST:PORT like --listen; empty (the default): no metrics "
          "listener. Env: CHAT_METRICS_LISTEN.");
ABSL_FLAG(std::string, store, "sqlite:./data/chat.db",
          "Where conversations live: 'sqlite:PATH' (a file, its directory "
          "created), 'postgres://USER:PASSWORD@HOST:PORT/DB' (or "
          "'postgres:KEY=VALUE ...', a libpq connection string; shared by "
          "replicas) or 'memory' (lost at exit). Env: CHAT_STORE.");
ABSL_FLAG(std::string, provider, "auto",
          "The LLM provider: 'anthropic' (ANTHROPIC_API_KEY, "
          "ANTHROPIC_BASE_URL), 'openai' (any OpenAI-compatible server: "
          "OPENAI_API_KEY, OPENAI_BASE_URL), 'echo' (offline, deterministic) "
          "or 'auto' (anthropic if its key is set, else openai if its key is "
          "set, else echo). Env: CHAT_PROVIDER.");
ABSL_FLAG(std::string, default_system_prompt, "You are a helpful AI assistant.",
          "System prompt of sessions created without one (at most 16384 "
          "bytes). Env: CHAT_DEFAULT_SYSTEM_PROMPT.");
ABSL_FLAG(int64_t, max_message_bytes, 64 * 1024,
          "Largest user message accepted, in bytes (1 to 16777216); larger "
          "ones answer INVALID_ARGUMENT. Env: CHAT_MAX_MESSAGE_BYTES.");
ABSL_FLAG(absl::Duration, echo_delay, absl::Milliseconds(20),
          "Pause between the echo provider's deltas, e.g. '20ms', '0s' (0s to "
          "10s). Env: CHAT_ECHO_DELAY.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "On SIGINT/SIGTERM, how long running calls may take to finish "
          "before they are cancelled (0s to 1h). Env: CHAT_SHUTDOWN_GRACE.");
ABSL_FLAG(int, store_threads, 0,
          "Threads doing store I/O (no call holds one while it waits for the "
          "provider); 1 to 256, or 0: 4 for the memory store, 64 for SQLite "
          "and PostgreSQL. Env: CHAT_STORE_THREADS.");

ABSL_FLAG(int, store_connections, 8,
          "Most PostgreSQL connections this replica opens (1 to 1000). Env: "
          "CHAT_STORE_CONNECTIONS.");
ABSL_FLAG(absl::Duration, session_ttl, absl::ZeroDuration(),
          "Delete sessions idle longer than this (e.g. '720h'), swept in the "
          "background (at most 87600h); 0 keeps them forever. Env: "
          "CHAT_SESSION_TTL.");
ABSL_FLAG(absl::Duration, idempotency_ttl, absl::Hours(24),
          "How long a turn's request_id (REST: Idempotency-Key) is kept per "
          "tenant: a repeat within it gets the stored answer. More than 0, "
          "at most 87600h. Env: CHAT_IDEMPOTENCY_TTL.");
ABSL_FLAG(absl::Duration, detached_stream_ttl, absl::Seconds(60),
          "How long a streamed answer runs on with no client attached (the "
          "client may resume it, on any replica) before it is cancelled "
          "upstream; an ended answer stays resumable as long. More than 0, "
          "at most 24h. Env: CHAT_DETACHED_STREAM_TTL.");
ABSL_FLAG(int64_t, max_sessions_per_tenant, 0,
          "Most sessions one tenant may have; a turn, CreateSession or "
          "ImportSession that would create one more fails with "
          "RESOURCE_EXHAUSTED. 0 to 1000000000; 0: unlimited. "
          "Env: CHAT_MAX_SESSIONS_PER_TENANT.");
ABSL_FLAG(int, max_turns_per_session, 0,
          "Most turns one session may hold; further turns fail with "
          "RESOURCE_EXHAUSTED until it is reset. 0 to 1000000; 0: unlimited. "
          "Env: CHAT_MAX_TURNS_PER_SESSION.");

ABSL_FLAG(std::string, model, "",
          "Default model ('' picks the provider's: claude-sonnet-4-6, "
          "gpt-4o-mini); a request's `model` overrides it. Env: CHAT_MODEL.");
ABSL_FLAG(bool, session_titles, true,
          "Give each session a short title after its first turn (see "
          "--title_model); false: sessions stay untitled until a user "
          "renames them, and no title call is made. Env: "
          "CHAT_SESSION_TITLES.");
ABSL_FLAG(std::string, title_model, "",
          "Model asked for a session's title after its first turn (a short "
          "call, off the turn's path; '' uses the default --model). With "
          "the echo provider titles are the first words of the first "
          "message. Env: CHAT_TITLE_MODEL.");
ABSL_FLAG(int, max_tokens, 1024,
          "Default reply length limit in tokens; a request's `max_tokens` "
          "overrides it. 1 to 1000000. Env: CHAT_MAX_TOKENS.");
ABSL_FLAG(int, max_tokens_ceiling, 65536,
          "Largest `max_tokens` a request may ask for (INVALID_ARGUMENT "
          "above); 1 to 1000000. Env: CHAT_MAX_TOKENS_CEILING.");
ABSL_FLAG(std::vector<std::string>, allowed_models, {},
          "Comma-separated models a request may name in `model` (empty: "
          "any). Env: CHAT_ALLOWED_MODELS.");
ABSL_FLAG(int, provider_retries, 2,
          "Retries of a provider call that failed before any text was "
          "streamed (connection errors, HTTP 429/500/502/503/529); 0 to 10. "
          "Env: CHAT_PROVIDER_RETRIES.");
ABSL_FLAG(absl::Duration, provider_retry_delay, absl::Milliseconds(500),
          "First retry backoff; doubles per retry, with jitter, at least the "
          "provider's retry-after; 0s to 1m. Env: CHAT_PROVIDER_RETRY_DELAY.");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(10),
          "Longest wait to connect to the provider (1ms to 10m). Env: "
          "CHAT_CONNECT_TIMEOUT.");
ABSL_FLAG(absl::Duration, first_byte_timeout, absl::Seconds(60),
          "Longest wait from sending a request to the provider's first byte "
          "(1ms to 1h). Env: CHAT_FIRST_BYTE_TIMEOUT.");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "Longest silence between two bytes of a provider's stream (1ms to "
          "1h). Env: CHAT_IDLE_TIMEOUT.");
ABSL_FLAG(std::string, provider_ca_file, "",
          "PEM file of CAs to trust for the provider's TLS certificate "
          "instead of the system's (a private CA in front of a self-hosted "
          "model). Env: CHAT_PROVIDER_CA_FILE.");
ABSL_FLAG(std::vector<std::string>, fallback, {},
          "Comma-separated PROVIDER:MODEL list (e.g. 'openai:gpt-4o-mini') "
          "tried in order when the provider fails before its first byte with "
          "an outage, an overload or a 429 after its retries; each needs its "
          "provider's key. Env: CHAT_FALLBACK.");
ABSL_FLAG(absl::Duration, fallback_cooldown, absl::Seconds(30),
          "With --fallback: how long a provider that failed 3 calls in a row "
          "is skipped before one call probes it (0s to 24h). Env: "
          "CHAT_FALLBACK_COOLDOWN.");
ABSL_FLAG(int64_t, max_context_tokens, 100000,
          "Prompt budget in estimated tokens (bytes/4): the oldest turns are "
          "left out of the prompt to fit (never out of the store); 0 means "
          "no limit; at most 1000000000. Env: CHAT_MAX_CONTEXT_TOKENS.");
ABSL_FLAG(std::string, prices_file, "",
          "JSON file of model prices in USD per million tokens, "
          "{\"MODEL\": {\"input\": 3.0, \"output\": 15.0}, ...}, added to "
          "(or replacing) the built-in prices; answers of a model without a "
          "price carry no cost. Env: CHAT_PRICES_FILE.");

ABSL_FLAG(std::string, admin_key_file, "",
          "File holding the admin key that AdminService calls must present "
          "(trailing whitespace is ignored; at least 24 characters). "
          "CHAT_ADMIN_KEY may hold the key itself instead; the file wins. "
          "Env: CHAT_ADMIN_KEY_FILE.");
ABSL_FLAG(bool, allow_anonymous, false,
          "Serve calls that carry no API key, from any host, as tenant "
          "'default'. Without it, such calls are served only while the store "
          "holds no active key and both the listener and the caller are on "
          "loopback. Env: CHAT_ALLOW_ANONYMOUS.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain to serve gRPC over TLS (with --tls_key; "
          "both or neither; re-read on SIGHUP). Env: CHAT_TLS_CERT.");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key of --tls_cert (unencrypted; re-read on SIGHUP). "
          "Env: CHAT_TLS_KEY.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CAs for mutual TLS: clients must present a certificate they "
          "signed (needs --tls_cert; re-read on SIGHUP). Env: "
          "CHAT_TLS_CLIENT_CA.");
ABSL_FLAG(int64_t, grpc_max_memory_mb, 1024,
          "Cap on the memory gRPC's transport may use for connections and "
          "calls (a grpc::ResourceQuota), in MiB (16 to 1048576; 0: no cap). "
          "Env: CHAT_GRPC_MAX_MEMORY_MB.");
ABSL_FLAG(int, max_concurrent_streams, 0,
          "Most concurrent calls per client connection (HTTP/2 "
          "MAX_CONCURRENT_STREAMS), 0 to 1000000; 0: no limit. Env: "
          "CHAT_MAX_CONCURRENT_STREAMS.");
ABSL_FLAG(absl::Duration, max_connection_idle, absl::Minutes(30),
          "Close client connections that had no call for this long (0s: "
          "never; at most 87600h). Env: CHAT_MAX_CONNECTION_IDLE.");

// The REST/JSON port in this process. The rest of chat-gateway's settings
// keep its defaults; HTTPS, backend TLS and the other limits need the
// separate chat-gateway. The connection caps are here because one process
// serving many streams from one address (a proxy, a load test) needs them
// raised, as chat-gateway's are.
ABSL_FLAG(std::string, http_listen, "",
          "HOST:PORT to serve the REST/JSON API on (chat-gateway's routes, "
          "in this process, calling it through gRPC's in-process channel; "
          "plain HTTP: HTTPS needs chat-gateway); port 0 picks a free one; "
          "empty (the default): none. Env: CHAT_HTTP_LISTEN.");
ABSL_FLAG(std::string, http_web_root, "",
          "With --http_listen: directory with web/index.html and "
          "js/chat-client.js, served at /web/ and /js/chat-client.js (e.g. "
          "the repository's clients/). Env: CHAT_HTTP_WEB_ROOT.");
ABSL_FLAG(std::string, http_cors_origins, "",
          "With --http_listen: origins allowed to call from a browser, "
          "comma-separated, or *; empty: none. Env: CHAT_HTTP_CORS_ORIGINS.");
ABSL_FLAG(bool, http_access_log, false,
          "With --http_listen: log one line per HTTP request (method, target, "
          "status, duration, request id). Env: CHAT_HTTP_ACCESS_LOG.");
ABSL_FLAG(int, http_io_threads, 2,
          "With --http_listen: threads serving HTTP connections (1 to 256). "
          "Env: CHAT_HTTP_IO_THREADS.");
ABSL_FLAG(int, http_max_connections, 10000,
          "With --http_listen: most open HTTP connections; one more is "
          "accepted and closed at once (1 to 1000000). Env: "
          "CHAT_HTTP_MAX_CONNECTIONS.");
ABSL_FLAG(int, http_max_connections_per_client, 1000,
          "With --http_listen: most open HTTP connections from one client IP "
          "address, an IPv6 client counted by its /64 (1 to 1000000); behind "
          "a proxy, set it to --http_max_connections. Env: "
          "CHAT_HTTP_MAX_CONNECTIONS_PER_CLIENT.");
ABSL_FLAG(bool, http_allow_anonymous, false,
          "Serve a non-loopback --http_listen even though --allow_anonymous "
          "answers callers without an API key from any host (by default "
          "chat-server then refuses to start, as chat-gateway does). Env: "
          "CHAT_HTTP_ALLOW_ANONYMOUS.");

namespace chat {
namespace {

// Accepted ranges. Wide enough for any deployment we know of, narrow enough
// that a typo (an extra zero, a negative number) is caught at start-up.
constexpr int64_t kMaxMessageBytesLimit = 16 << 20;
constexpr int kMaxStoreThreads = 256;
constexpr int kMaxStoreConnections = 1000;
constexpr int64_t kMaxSessionsPerTenantLimit = 1000000000;
constexpr int kMaxTurnsPerSessionLimit = 1000000;
constexpr int kMaxTokensLimit = 1000000;
constexpr int kMaxProviderRetries = 10;
constexpr int64_t kMaxContextTokensLimit = 1000000000;
constexpr int64_t kMaxGrpcMemoryMb = 1 << 20;
constexpr int kMaxConcurrentStreamsLimit = 1000000;
constexpr int kMaxHttpIoThreads = 256;
// chat-gateway's range for --max_connections*.
constexpr int kMaxHttpConnectionsLimit = 1000000;

// The TLS and transport flags, into config->transport.
void ReadTransportFlags(FlagErrors& errors, ServerConfig* config) {
  GrpcTransportOptions& transport = config->transport;
  transport.tls.cert_path = absl::GetFlag(FLAGS_tls_cert);
  transport.tls.key_path = absl::GetFlag(FLAGS_tls_key);
  transport.tls.client_ca_path = absl::GetFlag(FLAGS_tls_client_ca);
  if (transport.tls.cert_path.empty() != transport.tls.key_path.empty()) {
    errors.Check(absl::InvalidArgumentError(
        transport.tls.cert_path.empty()
            ? "--tls_key needs --tls_cert (give both or neither)"
            : "--tls_cert needs --tls_key (give both or neither)"));
  } else if (transport.tls.cert_path.empty() &&
             !transport.tls.client_ca_path.empty()) {
    errors.Check(absl::InvalidArgumentError(
        "--tls_client_ca needs --tls_cert and --tls_key"));
  }
  const int64_t memory_mb = absl::GetFlag(FLAGS_grpc_max_memory_mb);
  if (memory_mb != 0 &&
      errors.Check(CheckIntInRange("grpc_max_memory_mb", memory_mb, 16,
                                   kMaxGrpcMemoryMb))) {
    transport.max_memory_bytes = memory_mb << 20;
  }
  transport.max_concurrent_streams =
      absl::GetFlag(FLAGS_max_concurrent_streams);
  errors.Check(CheckIntInRange("max_concurrent_streams",
                               transport.max_concurrent_streams, 0,
                               kMaxConcurrentStreamsLimit));
  transport.max_connection_idle = absl::GetFlag(FLAGS_max_connection_idle);
  errors.Check(CheckDurationInRange("max_connection_idle",
                                    transport.max_connection_idle,
                                    absl::ZeroDuration(), absl::Hours(87600)));
}

// The --http_* flags, into config->http. Reads --metrics_listen too: as on
// chat-gateway, /metrics is served on the HTTP port unless it has its own.
void ReadHttpFlags(FlagErrors& errors, ServerConfig* config) {
  EmbeddedHttpOptions& http = config->http;
  http.listen = absl::GetFlag(FLAGS_http_listen);
  if (!http.listen.empty()) {
    absl::StatusOr<HostPort> address =
        ParseHostPort("http_listen", http.listen);
    if (errors.Check(address.status())) http.address = *address;
  }
  http.http.io_threads = absl::GetFlag(FLAGS_http_io_threads);
  errors.Check(CheckIntInRange("http_io_threads", http.http.io_threads, 1,
                               kMaxHttpIoThreads));
  http.http.connection_flag_prefix = "--http_";
  http.http.max_connections = absl::GetFlag(FLAGS_http_max_connections);
  errors.Check(CheckIntInRange("http_max_connections",
                               http.http.max_connections, 1,
                               kMaxHttpConnectionsLimit));
  http.http.max_connections_per_client =
      absl::GetFlag(FLAGS_http_max_connections_per_client);
  errors.Check(CheckIntInRange("http_max_connections_per_client",
                               http.http.max_connections_per_client, 1,
                               kMaxHttpConnectionsLimit));
  http.http.access_log = absl::GetFlag(FLAGS_http_access_log);
  http.gateway.web_root = absl::GetFlag(FLAGS_http_web_root);
  http.gateway.cors_origins = absl::GetFlag(FLAGS_http_cors_origins);
  http.gateway.serve_metrics = config->metrics_listen.empty();
  http.allow_anonymous = absl::GetFlag(FLAGS_http_allow_anonymous);
}

// --fallback and --fallback_cooldown, into `provider`. A fallback whose
// provider has no key is refused here, at start-up, rather than on the first
// outage it was meant to cover.
void ReadFallbackFlags(FlagErrors& errors, llm::ProviderConfig* provider) {
  bool parsed = true;
  for (const std::string& spec : absl::GetFlag(FLAGS_fallback)) {
    absl::StatusOr<llm::FallbackTarget> target = llm::ParseFallbackTarget(spec);
    if (!errors.Check(target.status())) {
      parsed = false;
      continue;
    }
    provider->fallbacks.push_back(*std::move(target));
  }
  if (parsed) {
    llm::ProviderConfig with_keys = *provider;
    llm::ReadProviderEnvironment(&with_keys);
    errors.Check(llm::CheckFallbackCredentials(with_keys));
  }
  provider->fallback_cooldown = absl::GetFlag(FLAGS_fallback_cooldown);
  errors.Check(CheckDurationInRange("fallback_cooldown",
                                    provider->fallback_cooldown,
                                    absl::ZeroDuration(), absl::Hours(24)));
}

// Reads the admin key from --admin_key_file, else CHAT_ADMIN_KEY, trimming
// trailing whitespace (a file's final newline). Errors never quote the key.
absl::Status ReadAdminKey(std::string* admin_key) {
  const std::string path = absl::GetFlag(FLAGS_admin_key_file);
  std::string source;
  if (!path.empty()) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream contents;
    if (file) contents << file.rdbuf();
    if (!file || file.bad()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--admin_key_file cannot be read: '", path, "'"));
    }
    *admin_key = contents.str();
    source = "--admin_key_file";
  } else if (const char* value = std::getenv(kAdminKeyVariable);
             value != nullptr && value[0] != '\0') {
    *admin_key = value;
    source = absl::StrCat(kAdminKeyVariable, " (or --admin_key_file)");
  } else {
    admin_key->clear();
    return absl::OkStatus();
  }
  // Both sides, as a presented Bearer token is stripped: a key that kept
  // leading whitespace would match no request.
  absl::StripAsciiWhitespace(admin_key);
  if (admin_key->size() < kMinAdminKeyLength) {
    const size_t length = admin_key->size();
    admin_key->clear();
    return absl::InvalidArgumentError(
        absl::StrCat(source, " must hold an admin key of at least ",
                     kMinAdminKeyLength, " characters; got ", length));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<std::string>& ServerFlagNames() {
  static const auto* const kNames = new std::vector<std::string>{
      "listen",
      "metrics_listen",
      "log_format",
      "log_level",
      "log_content",
      "store",
      "provider",
      "default_system_prompt",
      "max_message_bytes",
      "echo_delay",
      "shutdown_grace",
      "store_threads",
      "store_connections",
      "session_ttl",
      "idempotency_ttl",
      "detached_stream_ttl",
      "max_sessions_per_tenant",
      "max_turns_per_session",
      "model",
      "session_titles",
      "title_model",
      "max_tokens",
      "max_tokens_ceiling",
      "allowed_models",
      "provider_retries",
      "provider_retry_delay",
      "connect_timeout",
      "first_byte_timeout",
      "idle_timeout",
      "max_context_tokens",
      "provider_ca_file",
      "fallback",
      "fallback_cooldown",
      "prices_file",
      "admin_key_file",
      "allow_anonymous",
      "tls_cert",
      "tls_key",
      "tls_client_ca",
      "grpc_max_memory_mb",
      "max_concurrent_streams",
      "max_connection_idle",
      "http_listen",
      "http_web_root",
      "http_cors_origins",
      "http_access_log",
      "http_io_threads",
      "http_max_connections",
      "http_max_connections_per_client",
      "http_allow_anonymous",
  };
  return *kNames;
}

int StoreThreadsFor(int flag_value, const store::ConversationStore& store) {
  if (flag_value > 0) return flag_value;
  return store.MayBlock() ? 64 : 4;
}

absl::StatusOr<ServerConfig> ServerConfigFromFlags(const FlagSources& sources) {
  FlagErrors errors(&sources);
  ServerConfig config;

  config.listen = absl::GetFlag(FLAGS_listen);
  errors.Check(ParseHostPort("listen", config.listen).status());
  config.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!config.metrics_listen.empty()) {
    errors.Check(
        ParseHostPort("metrics_listen", config.metrics_listen).status());
  }
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
  config.log.content = absl::GetFlag(FLAGS_log_content);
  config.store_url = absl::GetFlag(FLAGS_store);
  // The scheme is checked where it is understood: OpenConversationStore
  // names the accepted forms ("cannot open store", exit 1).
  errors.Check(CheckNotEmpty("store", config.store_url));
  config.store_options.max_connections = absl::GetFlag(FLAGS_store_connections);
  errors.Check(CheckIntInRange("store_connections",
                               config.store_options.max_connections, 1,
                               kMaxStoreConnections));
  config.store_threads = absl::GetFlag(FLAGS_store_threads);
  errors.Check(CheckIntInRange("store_threads", config.store_threads, 0,
                               kMaxStoreThreads));
  config.session_ttl = absl::GetFlag(FLAGS_session_ttl);
  errors.Check(CheckDurationInRange("session_ttl", config.session_ttl,
                                    absl::ZeroDuration(), absl::Hours(87600)));
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  errors.Check(CheckDurationInRange("shutdown_grace", config.shutdown_grace,
                                    absl::ZeroDuration(), absl::Hours(1)));
  ReadTransportFlags(errors, &config);
  ReadHttpFlags(errors, &config);

  llm::ProviderConfig& provider = config.provider;
  provider.name = absl::GetFlag(FLAGS_provider);
  errors.Check(CheckOneOf("provider", provider.name,
                          {"auto", "anthropic", "openai", "echo"}));
  provider.echo_delay = absl::GetFlag(FLAGS_echo_delay);
  errors.Check(CheckDurationInRange("echo_delay", provider.echo_delay,
                                    absl::ZeroDuration(), absl::Seconds(10)));
  provider.model = absl::GetFlag(FLAGS_model);
  provider.max_tokens = absl::GetFlag(FLAGS_max_tokens);
  errors.Check(
      CheckIntInRange("max_tokens", provider.max_tokens, 1, kMaxTokensLimit));
  provider.http.max_retries = absl::GetFlag(FLAGS_provider_retries);
  errors.Check(CheckIntInRange("provider_retries", provider.http.max_retries, 0,
                               kMaxProviderRetries));
  provider.http.retry_base_delay = absl::GetFlag(FLAGS_provider_retry_delay);
  errors.Check(CheckDurationInRange("provider_retry_delay",
                                    provider.http.retry_base_delay,
                                    absl::ZeroDuration(), absl::Minutes(1)));
  provider.http.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  errors.Check(CheckDurationInRange("connect_timeout",
                                    provider.http.connect_timeout,
                                    absl::Milliseconds(1), absl::Minutes(10)));
  provider.http.first_byte_timeout = absl::GetFlag(FLAGS_first_byte_timeout);
  errors.Check(CheckDurationInRange("first_byte_timeout",
                                    provider.http.first_byte_timeout,
                                    absl::Milliseconds(1), absl::Hours(1)));
  provider.http.idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  errors.Check(CheckDurationInRange("idle_timeout", provider.http.idle_timeout,
                                    absl::Milliseconds(1), absl::Hours(1)));
  provider.http.ca_file = absl::GetFlag(FLAGS_provider_ca_file);
  ReadFallbackFlags(errors, &provider);

  ChatEngineOptions& engine = config.engine;
  engine.titles.enabled = absl::GetFlag(FLAGS_session_titles);
  engine.titles.model = absl::GetFlag(FLAGS_title_model);
  if (engine.titles.model.size() > 256 ||
      absl::c_any_of(engine.titles.model, [](char c) {
        return static_cast<unsigned char>(c) < 0x20;
      })) {
    errors.Check(absl::InvalidArgumentError(
        "--title_model must be a model name: at most 256 bytes, no control "
        "characters"));
  }
  engine.idempotency.ttl = absl::GetFlag(FLAGS_idempotency_ttl);
  errors.Check(CheckDurationInRange("idempotency_ttl", engine.idempotency.ttl,
                                    absl::Microseconds(1), absl::Hours(87600)));
  config.streams.detached_ttl = absl::GetFlag(FLAGS_detached_stream_ttl);
  errors.Check(CheckDurationInRange("detached_stream_ttl",
                                    config.streams.detached_ttl,
                                    absl::Microseconds(1), absl::Hours(24)));
  engine.default_system_prompt = absl::GetFlag(FLAGS_default_system_prompt);
  if (engine.default_system_prompt.size() >
      engine.limits.max_system_prompt_bytes) {
    // Requests' own prompts are held to the same limit.
    errors.Check(absl::InvalidArgumentError(
        absl::StrCat("--default_system_prompt must be at most ",
                     engine.limits.max_system_prompt_bytes, " bytes; got ",
                     engine.default_system_prompt.size())));
  }
  const int64_t max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  if (errors.Check(CheckIntInRange("max_message_bytes", max_message_bytes, 1,
                                   kMaxMessageBytesLimit))) {
    engine.limits.max_message_bytes = static_cast<size_t>(max_message_bytes);
  }
  engine.limits.max_tokens_ceiling = absl::GetFlag(FLAGS_max_tokens_ceiling);
  engine.default_max_tokens = absl::GetFlag(FLAGS_max_tokens);
  errors.Check(CheckIntInRange("max_tokens_ceiling",
                               engine.limits.max_tokens_ceiling, 1,
                               kMaxTokensLimit));
  engine.limits.allowed_models = absl::GetFlag(FLAGS_allowed_models);
  for (const std::string& model : engine.limits.allowed_models) {
    if (!errors.Check(CheckNotEmpty("allowed_models", model))) break;
  }
  engine.max_turns_per_session = absl::GetFlag(FLAGS_max_turns_per_session);
  errors.Check(CheckIntInRange("max_turns_per_session",
                               engine.max_turns_per_session, 0,
                               kMaxTurnsPerSessionLimit));
  engine.max_sessions_per_tenant = absl::GetFlag(FLAGS_max_sessions_per_tenant);
  errors.Check(CheckIntInRange("max_sessions_per_tenant",
                               engine.max_sessions_per_tenant, 0,
                               kMaxSessionsPerTenantLimit));
  engine.max_context_tokens = absl::GetFlag(FLAGS_max_context_tokens);
  errors.Check(CheckIntInRange("max_context_tokens", engine.max_context_tokens,
                               0, kMaxContextTokensLimit));
  if (const std::string prices_file = absl::GetFlag(FLAGS_prices_file);
      prices_file.empty()) {
    engine.prices = std::make_shared<const PriceTable>(PriceTable::BuiltIn());
  } else if (absl::StatusOr<PriceTable> prices =
                 PriceTable::BuiltInWithFile(prices_file);
             prices.ok()) {
    engine.prices = std::make_shared<const PriceTable>(*std::move(prices));
  } else {
    errors.Check(absl::InvalidArgumentError(
        absl::StrCat("--prices_file: ", prices.status().message())));
  }

  config.allow_anonymous = absl::GetFlag(FLAGS_allow_anonymous);
  if (absl::StatusOr<HostPort> listen = ParseHostPort("listen", config.listen);
      listen.ok()) {
    config.listener_is_loopback = IsLoopbackHost(listen->host);
  }
  errors.Check(ReadAdminKey(&config.admin_key));

  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;
  return config;
}

absl::Status CheckSafeDefault(const ServerConfig& config,
                              bool has_active_keys) {
  if (config.listener_is_loopback || config.allow_anonymous ||
      !config.admin_key.empty() || has_active_keys) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to listen on ", config.listen,
      " (not loopback) with no authentication: the store holds no active API "
      "key and no admin key is set. Do one of: create a key with "
      "'chat-server keys create --tenant=NAME --name=NAME' (same --store); "
      "set an admin key with --admin_key_file (or CHAT_ADMIN_KEY) and create "
      "keys through AdminService; or pass --allow_anonymous to serve every "
      "caller without a key as tenant 'default'"));
}

absl::StatusOr<ServerConfig> ParseServerConfig(int argc, char** argv) {
  FlagLoadOptions options;
  options.env_prefix = kServerEnvPrefix;
  options.env_flags = ServerFlagNames();
  options.help_files = "server/";
  options.usage =
      "serves chat.v1.ChatService over gRPC.\n"
      "Every flag can also be set in the environment as CHAT_<FLAG NAME IN "
      "CAPITALS>\n(for example CHAT_STORE=memory); the command line wins.\n"
      "Usage: chat-server [--listen=HOST:PORT] [--store=sqlite:PATH|memory] "
      "...";
  absl::StatusOr<FlagSources> sources = LoadFlags(options, argc, argv);
  if (!sources.ok()) return sources.status();
  return ServerConfigFromFlags(*sources);
}

}  // namespace chat
