#include "tests/testing/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace chat::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Starts argv with stdout and stderr sent to `output_path`, and the extra
// environment variables. Returns the child's pid.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env,
                            const std::string& output_path,
                            const std::string& working_dir = "") {
  int fd = open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return absl::InternalError("cannot create " + output_path);
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    // A child never outlives a crashed test runner.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    for (const auto& [name, value] : env)
      setenv(name.c_str(), value.c_str(), 1);
    if (!working_dir.empty() && chdir(working_dir.c_str()) != 0) {
      std::perror("chdir");
      _exit(127);
    }
    std::vector<char*> c_argv;
    for (const std::string& arg : argv)
      c_argv.push_back(const_cast<char*>(arg.c_str()));
    c_argv.push_back(nullptr);
    execv(c_argv[0], c_argv.data());
    std::perror("execv");
    _exit(127);
  }
  close(fd);
  return pid;
}

}  // namespace

std::string MakeTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(base != nullptr ? base : "/tmp", "/chatd-test-XXXXXX");
  char* dir = mkdtemp(pattern.data());
  return dir == nullptr ? "" : std::string(dir);
}

absl::StatusOr<int> RunCommand(const std::vector<std::string>& argv,
                               std::string* output, absl::Duration timeout) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/output";
  absl::StatusOr<pid_t> pid = Spawn(argv, {}, path);
  if (!pid.ok()) return pid.status();
  absl::StatusOr<int> code = WaitForExit(*pid, timeout);
  if (!code.ok()) {
    kill(*pid, SIGKILL);
    WaitForExit(*pid, absl::Seconds(5)).IgnoreError();
  }
  *output = ReadFile(path);
  return code;
}

ServerProcess::ServerProcess(std::string binary, std::vector<std::string> args,
                             std::map<std::string, std::string> env)
    : binary_(std::move(binary)),
      args_(std::move(args)),
      env_(std::move(env)) {}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    WaitForExit(pid_, absl::Seconds(10)).IgnoreError();
  }
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

absl::Status ServerProcess::Start(absl::Duration timeout) {
  log_path_ = MakeTempDir() + "/server.log";
  std::vector<std::string> argv = {binary_};
  argv.insert(argv.end(), args_.begin(), args_.end());
  absl::StatusOr<pid_t> pid = Spawn(argv, env_, log_path_, working_dir_);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  const absl::Time deadline = absl::Now() + timeout;
  const std::string marker = "listening on ";
  while (absl::Now() < deadline) {
    std::string log = Log();
    size_t at = log.find(marker);
    if (at != std::string::npos) {
      size_t start = at + marker.size();
      size_t end = log.find_first_of(" \n", start);
      if (end != std::string::npos) {
        address_ = log.substr(start, end - start);
        size_t colon = address_.rfind(':');
        if (colon != std::string::npos &&
            absl::SimpleAtoi(address_.substr(colon + 1), &port_)) {
          return absl::OkStatus();
        }
      }
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError("server exited at start:\n" + log);
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("server did not start listening:\n" +
                                     Log());
}

absl::StatusOr<int> ServerProcess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  kill(pid_, signal);
  absl::StatusOr<int> code = WaitForExit(pid_, timeout);
  if (code.ok()) pid_ = -1;
  return code;
}

absl::StatusOr<int> WaitForExit(pid_t pid, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (done < 0) return absl::InternalError("waitpid failed");
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid, " still runs"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace chat::testing
