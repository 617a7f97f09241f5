#ifndef CHAT_CLIENTS_CLI_COMMANDS_H_
#define CHAT_CLIENTS_CLI_COMMANDS_H_

// The non-interactive work of chat-cli: one streamed message, and the
// subcommands. Each returns the process's exit code (clients/cli/exit_codes.h)
// and writes only to the streams it is given, so it runs the same against a
// terminal, a pipe or a test's temporary file.

#include <cstdio>
#include <string>

#include "clients/cli/chat_client.h"
#include "clients/cli/cli_options.h"

namespace chat::cli {

// Where a command reads and writes.
struct CommandIo {
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  // The message when none was given as an argument.
  int in_fd = 0;
  // Ctrl-C (clients/cli/interrupts.h); -1: not watched.
  int interrupt_fd = -1;
};

// A new session id, "cli-" and 8 random hex digits.
std::string NewSessionId();

// The ChatStream request for `message` with the options' session (`session`),
// model and system prompt.
chat::v1::ChatStreamRequest MakeChatRequest(const CliOptions& options,
                                            const std::string& session,
                                            const std::string& message);

// Mode::kChat: streams the reply to `io.out` as it arrives (text), or prints
// the final ChatResponse as JSON (--json). A made-up session id is reported
// on `io.err` so the conversation can be continued with -s.
int RunChat(const CliOptions& options, ChatClient& client, const CommandIo& io);

// Mode::kCommand: history, sessions, reset, delete, stats, status.
int RunCommand(const CliOptions& options, ChatClient& client,
               const CommandIo& io);

// export SESSION [--markdown], export --all, import FILE [--replace]
// (export_commands.cc).
int RunExportCommand(const CliOptions& options, ChatClient& client,
                     const CommandIo& io);

// Prints "chat-cli: CODE: message" for a failed call and returns its exit
// code.
int ReportError(const grpc::Status& status, const ChatClient& client,
                std::FILE* err);

}  // namespace chat::cli

#endif  // CHAT_CLIENTS_CLI_COMMANDS_H_
