#ifndef CHAT_CLIENTS_CLI_INTERRUPTS_H_
#define CHAT_CLIENTS_CLI_INTERRUPTS_H_

// Ctrl-C as an event on a descriptor (the self-pipe trick): the SIGINT
// handler only writes a byte to a pipe, and the code that waits (for a line
// at the prompt, for a reply) polls that pipe next to what it waits for. No
// work happens in the handler, and no thread is needed to watch for the
// signal, whichever thread the kernel delivers it to.

#include <memory>

#include "absl/status/statusor.h"
#include "chat/v1/chat.pb.h"
#include "clients/cli/chat_client.h"
#include "grpcpp/support/status.h"

namespace chat::cli {

// Owns the SIGINT handler and its pipe. At most one per process.
class InterruptPipe {
 public:
  // Installs the handler. INTERNAL if the pipe or the handler cannot be set
  // up, or if another InterruptPipe exists.
  static absl::StatusOr<std::unique_ptr<InterruptPipe>> Install();
  // Restores SIGINT's default action, then closes the pipe.
  ~InterruptPipe();
  InterruptPipe(const InterruptPipe&) = delete;
  InterruptPipe& operator=(const InterruptPipe&) = delete;

  // Readable while an interrupt is pending.
  int fd() const { return read_fd_; }

 private:
  InterruptPipe(int read_fd, int write_fd)
      : read_fd_(read_fd), write_fd_(write_fd) {}
  const int read_fd_;
  const int write_fd_;
};

// Reads every pending byte of an interrupt descriptor (non-blocking); how
// many interrupts they were.
int DrainInterrupts(int interrupt_fd);

// How a streamed call ended.
struct CallOutcome {
  grpc::Status status;
  // The `done` event (empty unless status is OK).
  chat::v1::ChatResponse done;
  // An interrupt cancelled the call.
  bool interrupted = false;
  // A second interrupt came before the call had ended: the user wants out.
  bool exit_requested = false;
};

// Waits for `call` to end. With `interrupt_fd` >= 0, the first interrupt
// cancels the call and any further one before it ends sets exit_requested.
CallOutcome WaitForCall(StreamCall& call, int interrupt_fd);

}  // namespace chat::cli

#endif  // CHAT_CLIENTS_CLI_INTERRUPTS_H_
