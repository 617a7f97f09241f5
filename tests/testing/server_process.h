#ifndef CHAT_TESTS_TESTING_SERVER_PROCESS_H_
#define CHAT_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace chat::testing {

// A real server binary started as a child process on loopback, for
// integration tests. Its stderr goes to a log file; Start() waits for the
// "listening on HOST:PORT" line and reads the port from it, so tests can pass
// --listen=127.0.0.1:0 and never collide on ports.
class ServerProcess {
 public:
  ServerProcess(std::string binary, std::vector<std::string> args,
                std::map<std::string, std::string> env = {});
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  // Kills the process if it still runs.
  ~ServerProcess();

  // Runs the binary in `dir` (default: the test's working directory).
  // Call before Start().
  void set_working_dir(std::string dir) { working_dir_ = std::move(dir); }

  // Starts the binary and waits up to `timeout` for it to listen.
  absl::Status Start(absl::Duration timeout = absl::Seconds(60));
  // Sends `signal` and waits up to `timeout` for the exit; returns the exit
  // code (128 + signal number if a signal ended it).
  absl::StatusOr<int> Stop(int signal,
                           absl::Duration timeout = absl::Seconds(30));

  // "127.0.0.1:PORT" once started.
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Everything the process has logged so far.
  std::string Log() const;

 private:
  const std::string binary_;
  const std::vector<std::string> args_;
  const std::map<std::string, std::string> env_;
  std::string working_dir_;
  std::string log_path_;
  std::string address_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Waits up to `timeout` for the child `pid` to exit (polling waitpid); its
// exit code (128 + signal number if a signal ended it), or
// kDeadlineExceeded while it still runs.
absl::StatusOr<int> WaitForExit(pid_t pid, absl::Duration timeout);

// A fresh directory for one test's files.
std::string MakeTempDir();

// Runs `argv` to completion (bounded by `timeout`), returning its exit code
// and filling `output` with stdout and stderr combined.
absl::StatusOr<int> RunCommand(const std::vector<std::string>& argv,
                               std::string* output,
                               absl::Duration timeout = absl::Seconds(60));

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_SERVER_PROCESS_H_
