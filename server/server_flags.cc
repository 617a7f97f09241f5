#include "server/server_flags.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to serve gRPC on, host:port (port 0 picks a free one). "
          "Env: CHAT_LISTEN.");
ABSL_FLAG(std::string, store, "sqlite:./data/chat.db",
          "Where conversations live: 'sqlite:PATH' (a file, its directory "
          "created), 'postgres://USER:PASSWORD@HOST:PORT/DB' (or "
          "'postgres:KEY=VALUE ...', a libpq connection string; shared by "
          "replicas) or 'memory' (lost at exit). Env: CHAT_STORE.");
ABSL_FLAG(std::string, provider, "echo",
          "The LLM provider: 'echo' (offline, deterministic). Env: "
          "CHAT_PROVIDER.");
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
  if (!ApplyEnvironmentToFlags()) std::exit(2);
  absl::ParseCommandLine(argc, argv);
}

}  // namespace chat
