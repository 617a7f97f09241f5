#include "server/app/server_flags.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/dotenv.h"
#include "common/logging.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve gRPC on, host:port (port 0 picks a free one). "
          "Env: CHAT_LISTEN.");
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
          "System prompt of sessions created without one. Env: "
          "CHAT_DEFAULT_SYSTEM_PROMPT.");
ABSL_FLAG(int64_t, max_message_bytes, 64 * 1024,
          "Largest user message accepted, in bytes; larger ones answer "
          "INVALID_ARGUMENT. Env: CHAT_MAX_MESSAGE_BYTES.");
ABSL_FLAG(absl::Duration, echo_delay, absl::Milliseconds(20),
          "Pause between the echo provider's deltas, e.g. '20ms', '0s'. Env: "
          "CHAT_ECHO_DELAY.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "On SIGINT/SIGTERM, how long running calls may take to finish "
          "before they are cancelled. Env: CHAT_SHUTDOWN_GRACE.");
ABSL_FLAG(int, store_threads, 4,
          "Threads doing store I/O (no call holds one while it waits for the "
          "provider). Env: CHAT_STORE_THREADS.");

ABSL_FLAG(int, store_connections, 8,
          "Most PostgreSQL connections this replica opens. Env: "
          "CHAT_STORE_CONNECTIONS.");
ABSL_FLAG(absl::Duration, session_ttl, absl::ZeroDuration(),
          "Delete sessions idle longer than this (e.g. '720h'), swept in the "
          "background; 0 keeps them forever. Env: CHAT_SESSION_TTL.");
ABSL_FLAG(int64_t, max_sessions_per_tenant, 0,
          "Most sessions one tenant may have; a turn that would create one "
          "more fails with RESOURCE_EXHAUSTED. 0: unlimited. Env: "
          "CHAT_MAX_SESSIONS_PER_TENANT.");
ABSL_FLAG(int, max_turns_per_session, 0,
          "Most turns one session may hold; further turns fail with "
          "RESOURCE_EXHAUSTED until it is reset. 0: unlimited. Env: "
          "CHAT_MAX_TURNS_PER_SESSION.");

ABSL_FLAG(std::string, model, "",
          "Default model ('' picks the provider's: claude-sonnet-4-6, "
          "gpt-4o-mini); a request's `model` overrides it. Env: CHAT_MODEL.");
ABSL_FLAG(int, max_tokens, 1024,
          "Default reply length limit in tokens; a request's `max_tokens` "
          "overrides it. Env: CHAT_MAX_TOKENS.");
ABSL_FLAG(int, max_tokens_ceiling, 65536,
          "Largest `max_tokens` a request may ask for (INVALID_ARGUMENT "
          "above). Env: CHAT_MAX_TOKENS_CEILING.");
ABSL_FLAG(std::vector<std::string>, allowed_models, {},
          "Comma-separated models a request may name in `model` (empty: "
          "any). Env: CHAT_ALLOWED_MODELS.");
ABSL_FLAG(int, provider_retries, 2,
          "Retries of a provider call that failed before any text was "
          "streamed (connection errors, HTTP 429/500/502/503/529). Env: "
          "CHAT_PROVIDER_RETRIES.");
ABSL_FLAG(absl::Duration, provider_retry_delay, absl::Milliseconds(500),
          "First retry backoff; doubles per retry, with jitter, at least the "
          "provider's retry-after. Env: CHAT_PROVIDER_RETRY_DELAY.");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(10),
          "Longest wait to connect to the provider. Env: "
          "CHAT_CONNECT_TIMEOUT.");
ABSL_FLAG(absl::Duration, first_byte_timeout, absl::Seconds(60),
          "Longest wait from sending a request to the provider's first byte. "
          "Env: CHAT_FIRST_BYTE_TIMEOUT.");
ABSL_FLAG(absl::Duration, idle_timeout, absl::Seconds(60),
          "Longest silence between two bytes of a provider's stream. Env: "
          "CHAT_IDLE_TIMEOUT.");
ABSL_FLAG(std::string, provider_ca_file, "",
          "PEM file of CAs to trust for the provider's TLS certificate "
          "instead of the system's (a private CA in front of a self-hosted "
          "model). Env: CHAT_PROVIDER_CA_FILE.");
ABSL_FLAG(int64_t, max_context_tokens, 100000,
          "Prompt budget in estimated tokens (bytes/4): the oldest turns are "
          "left out of the prompt to fit (never out of the store); 0 means "
          "no limit. Env: CHAT_MAX_CONTEXT_TOKENS.");

namespace chat {

bool ApplyEnvironmentToFlags() {
  bool ok = true;
  for (const char* name : kServerFlagNames) {
    std::string variable = absl::StrCat("CHAT_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "chat-server: bad value in %s: %s\n",
                   variable.c_str(), error.c_str());
      ok = false;
    }
  }
  return ok;
}

void ParseServerFlags(int argc, char** argv) {
  absl::FlagsUsageConfig config;
  // --help lists this binary's own flags, not those of linked libraries.
  config.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "server/");
  };
  absl::SetFlagsUsageConfig(config);
  absl::SetProgramUsageMessage(
      "serves chat.v1.ChatService over gRPC.\n"
      "Every flag can also be set in the environment as CHAT_<FLAG NAME IN "
      "CAPITALS>\n(for example CHAT_STORE=memory); the command line wins.\n"
      "Usage: chat-server [--listen=HOST:PORT] [--store=sqlite:PATH|memory] "
      "...");
  // Like the Python template (python-dotenv): a .env in the working
  // directory supplies variables the environment lacks. Only names are
  // logged: values may be keys.
  if (absl::StatusOr<std::vector<std::string>> loaded = LoadDotEnvFile(".env");
      loaded.ok() && !loaded->empty()) {
    LogInfo("loaded ", absl::StrJoin(*loaded, ", "), " from ./.env");
  }
  if (!ApplyEnvironmentToFlags()) std::exit(2);
  absl::ParseCommandLine(argc, argv);
}

}  // namespace chat
