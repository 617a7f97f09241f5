#ifndef CHAT_CLIENTS_CLI_REPL_H_
#define CHAT_CLIENTS_CLI_REPL_H_

// chat-cli's interactive prompt: each line is a message (its reply streams
// back) or a /command. Plain line input from a descriptor, no line editing
// library: the terminal's own line discipline edits the line. Reading a line
// and waiting for a reply both poll the interrupt pipe too, so Ctrl-C stops a
// reply (cancelling it on the server) and Ctrl-C at the prompt, or a second
// one during a reply, leaves.

#include <cstdio>
#include <optional>
#include <string>

#include "clients/cli/chat_client.h"
#include "clients/cli/cli_options.h"

namespace chat::cli {

struct ReplIo {
  int in_fd = 0;
  std::FILE* out = stdout;
  std::FILE* err = stderr;
  // Ctrl-C (clients/cli/interrupts.h); -1: not watched.
  int interrupt_fd = -1;
};

class Repl {
 public:
  // `options` gives the first session (a new one if empty), model and system
  // prompt; the /commands change them.
  Repl(ChatClient& client, const CliOptions& options, ReplIo io);

  // Runs until /quit or end of input (exit 0) or Ctrl-C at the prompt or
  // twice during a reply (exit 130).
  int Run();

 private:
  enum class Next { kContinue, kQuit, kInterruptedQuit };
  enum class Read { kLine, kEnd, kInterrupted };

  Read ReadLine(std::string* line);
  Next HandleLine(const std::string& line);
  Next HandleCommand(const std::string& line);
  Next Send(const std::string& message);
  void ShowHistory();
  void ShowSessions();
  void Reset();
  void Say(const std::string& text);
  void Complain(const std::string& text);

  ChatClient& client_;
  const std::string server_;
  ReplIo io_;
  std::string session_;
  std::optional<std::string> model_;
  std::optional<std::string> system_;
  // Turns this prompt completed in session_, so /system knows whether the
  // session already exists (its system prompt is fixed once it does).
  int turns_here_ = 0;
  // Input read past the last line handed out.
  std::string pending_;
};

}  // namespace chat::cli

#endif  // CHAT_CLIENTS_CLI_REPL_H_
