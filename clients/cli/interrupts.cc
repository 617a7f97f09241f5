#include "clients/cli/interrupts.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>

namespace chat::cli {
namespace {

// The pipe's write end for the handler; -1 while no InterruptPipe exists.
std::atomic<int> g_interrupt_write_fd{-1};

extern "C" void OnSigint(int) {
  const int saved_errno = errno;
  const int fd = g_interrupt_write_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    const char byte = 'i';
    // Non-blocking: a full pipe already says "interrupted".
    (void)!write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

absl::StatusOr<std::unique_ptr<InterruptPipe>> InterruptPipe::Install() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError("cannot create the interrupt pipe");
  }
  int expected = -1;
  if (!g_interrupt_write_fd.compare_exchange_strong(expected, fds[1])) {
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError("an interrupt pipe is already installed");
  }
  struct sigaction action = {};
  action.sa_handler = OnSigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGINT, &action, nullptr) != 0) {
    g_interrupt_write_fd.store(-1);
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError("cannot install the SIGINT handler");
  }
  return std::unique_ptr<InterruptPipe>(new InterruptPipe(fds[0], fds[1]));
}

InterruptPipe::~InterruptPipe() {
  signal(SIGINT, SIG_DFL);
  g_interrupt_write_fd.store(-1);
  close(read_fd_);
  close(write_fd_);
}

int DrainInterrupts(int interrupt_fd) {
  if (interrupt_fd < 0) return 0;
  int count = 0;
  char buffer[64];
  while (true) {
    ssize_t n = read(interrupt_fd, buffer, sizeof(buffer));
    if (n > 0) {
      count += static_cast<int>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return count;  // EAGAIN: drained.
  }
}

CallOutcome WaitForCall(StreamCall& call, int interrupt_fd) {
  CallOutcome outcome;
  while (true) {
    pollfd fds[2] = {{call.done_fd(), POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
    const int count = interrupt_fd >= 0 ? 2 : 1;
    if (poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      break;  // Cannot wait on descriptors: fall back to the blocking Await.
    }
    if (count == 2 && (fds[1].revents & POLLIN) != 0) {
      int interrupts = DrainInterrupts(interrupt_fd);
      if (!outcome.interrupted && interrupts > 0) {
        outcome.interrupted = true;
        call.Cancel();
        --interrupts;
      }
      if (interrupts > 0) outcome.exit_requested = true;
    }
    if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) break;
  }
  outcome.status = call.Await(&outcome.done);
  return outcome;
}

}  // namespace chat::cli
