#include "tests/clients/cli/cli_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "tests/testing/server_process.h"

namespace chat::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return static_cast<bool>(out);
}

[[noreturn]] void ExecChild(const std::string& binary,
                            const std::vector<std::string>& args,
                            const std::map<std::string, std::string>& env) {
  // A child never outlives a crashed test runner.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  unsetenv("CHAT_SERVER");
  unsetenv("CHAT_API_KEY");
  for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
  std::vector<char*> argv = {const_cast<char*>(binary.c_str())};
  for (const std::string& arg : args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  execv(argv[0], argv.data());
  std::perror("execv");
  _exit(127);
}

}  // namespace

absl::StatusOr<CliResult> RunCli(const std::string& binary,
                                 const std::vector<std::string>& args,
                                 const std::map<std::string, std::string>& env,
                                 const std::string& stdin_text,
                                 absl::Duration timeout) {
  const std::string dir = MakeTempDir();
  const std::string in_path = dir + "/stdin";
  const std::string out_path = dir + "/stdout";
  const std::string err_path = dir + "/stderr";
  if (!WriteFile(in_path, stdin_text)) {
    return absl::InternalError("cannot write " + in_path);
  }
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int in = open(in_path.c_str(), O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    ExecChild(binary, args, env);
  }
  absl::StatusOr<int> code = chat::testing::WaitForExit(pid, timeout);
  if (!code.ok()) {
    kill(pid, SIGKILL);
    chat::testing::WaitForExit(pid, absl::Seconds(5)).IgnoreError();
    return code.status();
  }
  CliResult result;
  result.exit_code = *code;
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

PtyProcess::~PtyProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    chat::testing::WaitForExit(pid_, absl::Seconds(10)).IgnoreError();
  }
  if (master_ >= 0) close(master_);
}

absl::Status PtyProcess::Start(const std::string& binary,
                               const std::vector<std::string>& args) {
  struct winsize size = {};
  size.ws_row = 40;
  size.ws_col = 200;
  pid_t pid = forkpty(&master_, nullptr, nullptr, &size);
  if (pid < 0) return absl::InternalError("forkpty failed");
  if (pid == 0) ExecChild(binary, args, {});
  pid_ = pid;
  fcntl(master_, F_SETFD, FD_CLOEXEC);
  return absl::OkStatus();
}

absl::Status PtyProcess::Type(const std::string& text) {
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = write(master_, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::InternalError("cannot write to the terminal");
    written += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

int PtyProcess::ReadSome(absl::Duration timeout) {
  pollfd fd = {master_, POLLIN, 0};
  int ready =
      poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready == 0 || (ready < 0 && errno == EINTR)) return 0;
  char buffer[4096];
  ssize_t n = read(master_, buffer, sizeof(buffer));
  if (n < 0 && errno == EINTR) return 0;
  // EIO: the slave side closed, the process has gone.
  if (n <= 0) return -1;
  output_.append(buffer, static_cast<size_t>(n));
  return static_cast<int>(n);
}

absl::StatusOr<std::string> PtyProcess::WaitFor(const std::string& text,
                                                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    size_t at = output_.find(text, cursor_);
    if (at != std::string::npos) {
      std::string seen = output_.substr(cursor_, at + text.size() - cursor_);
      cursor_ = at + text.size();
      return seen;
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() ||
        ReadSome(std::min(left, absl::Milliseconds(200))) < 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("'", text, "' not seen; the terminal showed:\n",
                       output_.substr(cursor_)));
    }
  }
}

absl::StatusOr<int> PtyProcess::WaitForExit(absl::Duration timeout) {
  // Keep reading so that a process writing to a full terminal is not stuck.
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<int> code =
        chat::testing::WaitForExit(pid_, absl::ZeroDuration());
    if (code.ok()) {
      pid_ = -1;
      // What it wrote before exiting is still in the terminal.
      while (ReadSome(absl::Milliseconds(50)) > 0) {
      }
      return code;
    }
    ReadSome(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError("chat-cli did not exit; it showed:\n" +
                                     output_.substr(cursor_));
}

bool LoggedTurn(const ServerProcess& server, const std::string& session,
                const std::string& status) {
  for (absl::string_view line : absl::StrSplit(server.Log(), '\n')) {
    if (absl::StrContains(line, " turn ") &&
        absl::StrContains(line, absl::StrCat("session=", session, " ")) &&
        absl::StrContains(line, absl::StrCat("status=", status))) {
      return true;
    }
  }
  return false;
}

}  // namespace chat::testing
