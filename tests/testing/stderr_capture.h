#ifndef CHAT_TESTS_TESTING_STDERR_CAPTURE_H_
#define CHAT_TESTS_TESTING_STDERR_CAPTURE_H_

// StderrCapture: lets an in-process test wait for a log line, the one sign
// some states give (e.g. "retrying in" when a provider call starts waiting
// out a retry-after). chat::Log writes and flushes one line at a time, so the
// file always holds whole lines.

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"

namespace chat::testing {

// While alive, file descriptor 2 writes to a temporary file. On destruction
// stderr is restored and what was captured is copied to it, so the test's
// log output is not lost. Not thread-safe; one at a time per process.
class StderrCapture {
 public:
  StderrCapture() {
    std::fflush(stderr);
    char path[] = "/tmp/chatd-stderr-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return;
    path_ = path;
    saved_fd_ = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    close(fd);
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  ~StderrCapture() {
    if (saved_fd_ < 0) return;
    std::fflush(stderr);
    dup2(saved_fd_, STDERR_FILENO);
    close(saved_fd_);
    const std::string text = Text();
    std::fwrite(text.data(), 1, text.size(), stderr);
    unlink(path_.c_str());
  }

  // Everything written to stderr since construction.
  std::string Text() const {
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  bool Contains(const std::string& part) const {
    return absl::StrContains(Text(), part);
  }

 private:
  std::string path_;
  int saved_fd_ = -1;
};

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_STDERR_CAPTURE_H_
