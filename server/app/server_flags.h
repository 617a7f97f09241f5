#ifndef CHAT_SERVER_APP_SERVER_FLAGS_H_
#define CHAT_SERVER_APP_SERVER_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/time/time.h"

ABSL_DECLARE_FLAG(std::string, listen);
ABSL_DECLARE_FLAG(std::string, store);
ABSL_DECLARE_FLAG(std::string, provider);
ABSL_DECLARE_FLAG(std::string, default_system_prompt);
ABSL_DECLARE_FLAG(int64_t, max_message_bytes);
ABSL_DECLARE_FLAG(absl::Duration, echo_delay);
ABSL_DECLARE_FLAG(absl::Duration, shutdown_grace);
ABSL_DECLARE_FLAG(int, store_threads);
ABSL_DECLARE_FLAG(int, store_connections);
ABSL_DECLARE_FLAG(absl::Duration, session_ttl);
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
ABSL_DECLARE_FLAG(int64_t, max_context_tokens);

namespace chat {

// The flags chat-server reads; each can also be set in the environment as
// CHAT_<NAME> (CHAT_LISTEN, CHAT_STORE, ...). The command line wins.
inline constexpr const char* kServerFlagNames[] = {
    "listen",         "store",          "provider",     "default_system_prompt",
    "max_message_bytes", "echo_delay", "shutdown_grace", "store_threads",
    "store_connections", "session_ttl", "max_sessions_per_tenant",
    "max_turns_per_session", "model", "max_tokens", "max_tokens_ceiling",
    "allowed_models",
    "provider_retries", "provider_retry_delay", "connect_timeout",
    "first_byte_timeout", "idle_timeout", "max_context_tokens",
    "provider_ca_file"};

// Sets each flag in `kServerFlagNames` whose CHAT_<NAME> variable is present.
// Returns false (after printing why) if a value does not parse.
bool ApplyEnvironmentToFlags();

// Loads ./.env (variables the environment lacks, python-dotenv style), then
// parses the command line (after the environment), with --help explaining
// every flag and its variable. Exits on a bad flag.
void ParseServerFlags(int argc, char** argv);

}  // namespace chat

#endif  // CHAT_SERVER_APP_SERVER_FLAGS_H_
