// chat-cli: a terminal client of chat.v1.ChatService on the generated stubs.
// One message streamed to stdout, the subcommands (with --json for scripts),
// or, with no message on a terminal, an interactive prompt. Exit codes:
// clients/cli/exit_codes.h (and --help).

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "clients/cli/chat_client.h"
#include "clients/cli/cli_options.h"
#include "clients/cli/commands.h"
#include "clients/cli/exit_codes.h"
#include "clients/cli/interrupts.h"
#include "clients/cli/repl.h"
#include "grpc/support/log.h"

namespace {

// gRPC logs its own account of a failed connection on stderr (the TLS
// handshake's error, the channel arguments of a subchannel it could not
// make), around the one line chat-cli prints for the call's status, which
// already says it. GRPC_VERBOSITY set in the environment keeps them.
void DropGrpcLog(gpr_log_func_args* /*args*/) {}

}  // namespace

int main(int argc, char** argv) {
  using namespace chat::cli;  // NOLINT(build/namespaces): main only.
  if (std::getenv("GRPC_VERBOSITY") == nullptr) {
    gpr_set_log_function(DropGrpcLog);
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<CliOptions> options =
      ParseCliOptions(args, ReadEnvironment(), isatty(STDIN_FILENO) == 1);
  if (!options.ok()) {
    std::fprintf(stderr, "chat-cli: %s\n",
                 std::string(options.status().message()).c_str());
    return kExitUsage;
  }
  if (options->mode == Mode::kHelp) {
    std::fputs(UsageText().c_str(), stdout);
    return kExitOk;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(*options);
  if (!channel.ok()) {
    std::fprintf(stderr, "chat-cli: %s\n",
                 std::string(channel.status().message()).c_str());
    return kExitUsage;
  }
  ChatClient client(*channel, options->api_key, options->timeout);

  if (options->mode == Mode::kCommand) {
    // Nothing to cancel gracefully: Ctrl-C keeps its default action.
    return RunCommand(*options, client, CommandIo());
  }
  absl::StatusOr<std::unique_ptr<InterruptPipe>> interrupts =
      InterruptPipe::Install();
  if (!interrupts.ok()) {
    std::fprintf(stderr, "chat-cli: %s\n",
                 std::string(interrupts.status().message()).c_str());
    return kExitOther;
  }
  const int interrupt_fd = (*interrupts)->fd();
  if (options->mode == Mode::kRepl) {
    ReplIo io;
    io.interrupt_fd = interrupt_fd;
    return Repl(client, *options, io).Run();
  }
  CommandIo io;
  io.interrupt_fd = interrupt_fd;
  return RunChat(*options, client, io);
}
