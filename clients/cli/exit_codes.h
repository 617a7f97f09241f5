#ifndef CHAT_CLIENTS_CLI_EXIT_CODES_H_
#define CHAT_CLIENTS_CLI_EXIT_CODES_H_

// chat-cli's exit status: one fixed code per class of gRPC status, so a
// script can tell "fix the key" from "try again later" without parsing
// messages. docs/CLI.md and --help print the same table (ExitCodeTable).

#include <string>

#include "grpcpp/support/status.h"

namespace chat::cli {

inline constexpr int kExitOk = 0;
// Any status without a class of its own (INTERNAL, UNKNOWN, ABORTED,
// FAILED_PRECONDITION, UNIMPLEMENTED, ...), and local failures such as a
// broken stdout.
inline constexpr int kExitOther = 1;
// Bad flags or arguments, an unreadable --ca_file: nothing was sent.
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInvalidArgument =
    3;  // INVALID_ARGUMENT, OUT_OF_RANGE
inline constexpr int kExitUnauthenticated = 4;    // UNAUTHENTICATED
inline constexpr int kExitPermissionDenied = 5;   // PERMISSION_DENIED
inline constexpr int kExitNotFound = 6;           // NOT_FOUND
inline constexpr int kExitResourceExhausted = 7;  // RESOURCE_EXHAUSTED
// UNAVAILABLE, DEADLINE_EXCEEDED: the server is unreachable or slow; retry.
inline constexpr int kExitUnavailable = 8;
// CANCELLED: Ctrl-C stopped the call (128 + SIGINT, as a shell reports it).
inline constexpr int kExitInterrupted = 130;

// The exit code for a call that ended with `code`.
int ExitCodeForStatus(grpc::StatusCode code);

// The table above as text, one "  CODE  MEANING" line per code, for --help.
std::string ExitCodeTable();

}  // namespace chat::cli

#endif  // CHAT_CLIENTS_CLI_EXIT_CODES_H_
