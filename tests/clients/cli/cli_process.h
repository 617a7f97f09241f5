#ifndef CHAT_TESTS_CLIENTS_CLI_CLI_PROCESS_H_
#define CHAT_TESTS_CLIENTS_CLI_CLI_PROCESS_H_

// Running the real chat-cli binary from a test: once with pipes (stdout and
// stderr apart, stdin from a string), or on a pseudo-terminal (forkpty) that
// the test types into and reads from, as a person at a terminal would.

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/server_process.h"

namespace chat::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `binary args...` to completion (bounded by `timeout`, then killed)
// with `stdin_text` as its stdin, CHAT_SERVER and CHAT_API_KEY removed from
// its environment and then `env` added.
absl::StatusOr<CliResult> RunCli(
    const std::string& binary, const std::vector<std::string>& args,
    const std::map<std::string, std::string>& env = {},
    const std::string& stdin_text = "",
    absl::Duration timeout = absl::Seconds(60));

// chat-cli on a pseudo-terminal: its stdin, stdout and stderr are the pty's
// slave side, it is the terminal's foreground process, so writing "\x03" to
// the master makes the line discipline send it SIGINT.
class PtyProcess {
 public:
  PtyProcess() = default;
  PtyProcess(const PtyProcess&) = delete;
  PtyProcess& operator=(const PtyProcess&) = delete;
  // Kills the process if it still runs.
  ~PtyProcess();

  absl::Status Start(const std::string& binary,
                     const std::vector<std::string>& args);
  // Writes `text` to the terminal, as typed.
  absl::Status Type(const std::string& text);
  // Reads the terminal until `text` appears after the last match (the
  // cursor), then moves the cursor past it and returns everything from the
  // old cursor to the end of the match. DEADLINE_EXCEEDED (with what was
  // read) after `timeout`.
  absl::StatusOr<std::string> WaitFor(
      const std::string& text, absl::Duration timeout = absl::Seconds(60));
  // Waits for the process to exit and returns its exit code (128 + signal
  // if a signal ended it).
  absl::StatusOr<int> WaitForExit(absl::Duration timeout = absl::Seconds(60));
  // Everything read from the terminal so far.
  const std::string& output() const { return output_; }

 private:
  // Reads what arrives within `timeout`: the bytes read, 0 if none came, -1
  // at the end of the output (the process has gone).
  int ReadSome(absl::Duration timeout);

  pid_t pid_ = -1;
  int master_ = -1;
  std::string output_;
  size_t cursor_ = 0;
};

// Whether `server` logged a turn line for `session` with `status` (OK,
// CANCELLED, ...).
bool LoggedTurn(const ServerProcess& server, const std::string& session,
                const std::string& status);

}  // namespace chat::testing

#endif  // CHAT_TESTS_CLIENTS_CLI_CLI_PROCESS_H_
