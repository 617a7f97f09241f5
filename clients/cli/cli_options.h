#ifndef CHAT_CLIENTS_CLI_CLI_OPTIONS_H_
#define CHAT_CLIENTS_CLI_CLI_OPTIONS_H_

// chat-cli's command line: flags, the environment (CHAT_SERVER,
// CHAT_API_KEY), positional arguments and what they ask for. A pure function
// of its inputs, so it is tested without a process; main prints its error and
// exits 2.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace chat::cli {

// What the invocation asks for.
enum class Mode {
  kHelp,     // --help: print the usage and exit 0.
  kChat,     // A message (an argument, or stdin when it is not a terminal).
  kRepl,     // No message and stdin a terminal: the interactive prompt.
  kCommand,  // A subcommand: history, sessions, reset, delete, stats, status.
};

struct CliOptions {
  Mode mode = Mode::kChat;

  // Connection.
  std::string server = "localhost:50051";
  // Sent as `authorization: Bearer KEY`; empty: no key. Never printed.
  std::string api_key;
  bool tls = false;
  std::string ca_file;      // PEM roots instead of the system's.
  std::string client_cert;  // PEM chain for mutual TLS (with client_key).
  std::string client_key;   // PEM key of client_cert. Never printed.
  std::string server_name;  // Name to verify in the server's certificate.
  // Deadline of each call; zero: none.
  absl::Duration timeout = absl::Minutes(5);

  // Chat.
  std::optional<std::string> model;
  // --request_id: the one-shot message's ChatRequest.request_id.
  std::optional<std::string> request_id;
  std::optional<std::string> system;
  // --title: the title `new` gives the session.
  std::optional<std::string> title;
  // -s / --session; empty: a new session id is made up.
  std::string session;

  // Output.
  bool json = false;

  // kChat: the message, if given as an argument (else read from stdin).
  std::optional<std::string> message;
  // kCommand: the subcommand and its session argument (history, reset,
  // delete).
  std::string command;
  std::string command_session;
  // rename: the new title; search: the query.
  std::string command_text;
  // The arguments after SESSION (regenerate [TURN], edit TURN MESSAGE,
  // switch TURN).
  std::vector<std::string> command_args;
  // export: --markdown (the active branch as Markdown), --all (every
  // session, one JSON line each). import: --replace (overwrite a session
  // with the same id).
  bool markdown = false;
  bool all = false;
  bool replace = false;
};

// The environment variables that are read, by name ("CHAT_SERVER",
// "CHAT_API_KEY"); a map so tests need not touch the process's environment.
using Environment = std::map<std::string, std::string>;

// Reads CHAT_SERVER and CHAT_API_KEY from the process's environment.
Environment ReadEnvironment();

// Parses `args` (without the program name). Flags take `--name=value`,
// `--name value` or, for the session, `-s VALUE`; boolean flags also
// `--name=true|false` and `--noname`; `--` ends the flags. The environment
// gives defaults the command line overrides. `stdin_is_terminal` picks the
// REPL when no message is given. INVALID_ARGUMENT with a message naming the
// flag or argument at fault (never the value of --api_key).
absl::StatusOr<CliOptions> ParseCliOptions(const std::vector<std::string>& args,
                                           const Environment& env,
                                           bool stdin_is_terminal);

// The text of --help, exit codes included.
std::string UsageText();

}  // namespace chat::cli

#endif  // CHAT_CLIENTS_CLI_CLI_OPTIONS_H_
