#include "clients/cli/commands.h"

#include <errno.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "clients/cli/exit_codes.h"
#include "clients/cli/interrupts.h"
#include "clients/cli/output.h"

namespace chat::cli {
namespace {

// Beyond any server's message limit; the server says how much it accepts.
constexpr size_t kMaxStdinMessage = 16 << 20;

// All of `fd` up to kMaxStdinMessage bytes, without one trailing newline.
bool ReadMessage(int fd, std::string* message) {
  char buffer[65536];
  while (message->size() <= kMaxStdinMessage) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    message->append(buffer, static_cast<size_t>(n));
  }
  if (!message->empty() && message->back() == '\n') message->pop_back();
  if (!message->empty() && message->back() == '\r') message->pop_back();
  return true;
}

// False (and a message on `io.err`) if `out` could not be written.
int Print(const CommandIo& io, absl::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), io.out) != text.size() ||
      std::fflush(io.out) != 0) {
    std::fprintf(io.err, "chat-cli: cannot write the output\n");
    return kExitOther;
  }
  return kExitOk;
}

}  // namespace

std::string NewSessionId() {
  std::random_device random;
  return absl::StrFormat("cli-%08x", random());
}

chat::v1::ChatStreamRequest MakeChatRequest(const CliOptions& options,
                                            const std::string& session,
                                            const std::string& message) {
  chat::v1::ChatStreamRequest request;
  request.set_message(message);
  request.set_session_id(session);
  if (options.model.has_value()) request.set_model(*options.model);
  if (options.system.has_value()) request.set_system_prompt(*options.system);
  if (options.request_id.has_value()) {
    request.set_request_id(*options.request_id);
  }
  return request;
}

int ReportError(const grpc::Status& status, const ChatClient& client,
                std::FILE* err) {
  std::fprintf(err, "chat-cli: %s\n",
               FormatError(status, client.api_key()).c_str());
  std::fflush(err);
  return ExitCodeForStatus(status.error_code());
}

namespace {

// Prints a streamed answer as it arrives (text), or its `done` event as
// JSON (--json); Ctrl-C cancels it. `start` starts the call.
int PrintStream(
    const CliOptions& options, ChatClient& client, const CommandIo& io,
    const std::function<std::unique_ptr<StreamCall>(StreamCall::DeltaFn)>&
        start) {
  bool printed = false;
  bool write_failed = false;
  StreamCall::DeltaFn on_delta = [&](const std::string& text) {
    if (options.json || write_failed) return;
    printed = true;
    if (std::fwrite(text.data(), 1, text.size(), io.out) != text.size() ||
        std::fflush(io.out) != 0) {
      write_failed = true;
    }
  };
  std::unique_ptr<StreamCall> call = start(std::move(on_delta));
  CallOutcome outcome = WaitForCall(*call, io.interrupt_fd);
  if (printed) Print(io, "\n");
  if (write_failed) {
    std::fprintf(io.err, "chat-cli: cannot write the output\n");
    return kExitOther;
  }
  if (!outcome.status.ok()) {
    if (outcome.interrupted &&
        outcome.status.error_code() == grpc::StatusCode::CANCELLED) {
      std::fprintf(io.err, "chat-cli: cancelled\n");
      return kExitInterrupted;
    }
    return ReportError(outcome.status, client, io.err);
  }
  if (options.json) return Print(io, ToJsonLine(outcome.done));
  return kExitOk;
}

}  // namespace

int RunChat(const CliOptions& options, ChatClient& client,
            const CommandIo& io) {
  std::string message;
  if (options.message.has_value()) {
    message = *options.message;
  } else if (!ReadMessage(io.in_fd, &message)) {
    std::fprintf(io.err, "chat-cli: cannot read the message from stdin\n");
    return kExitUsage;
  }
  if (message.empty()) {
    std::fprintf(io.err,
                 "chat-cli: no message: give one as an argument or on stdin "
                 "(chat-cli --help)\n");
    return kExitUsage;
  }
  std::string session = options.session;
  if (session.empty()) {
    session = NewSessionId();
    if (!options.json) {
      std::fprintf(io.err, "session: %s\n", session.c_str());
      std::fflush(io.err);
    }
  }

  return PrintStream(options, client, io, [&](StreamCall::DeltaFn on_delta) {
    return client.StartChatStream(MakeChatRequest(options, session, message),
                                  std::move(on_delta));
  });
}

namespace {

// regenerate, edit and switch: a turn id, then the RPC.
int RunBranchCommand(const CliOptions& options, ChatClient& client,
                     const CommandIo& io) {
  const std::string& command = options.command;
  const std::string& session = options.command_session;
  int turn = 0;
  if (!options.command_args.empty() &&
      (!absl::SimpleAtoi(options.command_args[0], &turn) || turn < 1)) {
    std::fprintf(io.err,
                 "chat-cli: %s: TURN must be a turn id (a number from "
                 "'chat-cli history %s'), got '%s'\n",
                 command.c_str(), session.c_str(),
                 options.command_args[0].c_str());
    return kExitUsage;
  }
  grpc::Status status;
  std::string text;
  if (command == "regenerate") {
    chat::v1::RegenerateTurnRequest request;
    request.set_session_id(session);
    if (turn > 0) request.set_turn_id(turn);
    if (options.model.has_value()) request.set_model(*options.model);
    chat::v1::RegenerateTurnResponse response;
    status = client.RegenerateTurn(request, &response);
    text = options.json ? ToJsonLine(response)
                        : absl::StrCat(response.response(), "\n");
  } else if (command == "edit") {
    chat::v1::EditMessageRequest request;
    request.set_session_id(session);
    request.set_turn_id(turn);
    request.set_message(options.command_args[1]);
    if (options.model.has_value()) request.set_model(*options.model);
    chat::v1::EditMessageResponse response;
    status = client.EditMessage(request, &response);
    text = options.json ? ToJsonLine(response)
                        : absl::StrCat(response.response(), "\n");
  } else {
    chat::v1::SwitchBranchResponse response;
    status = client.SwitchBranch(session, turn, &response);
    if (options.json) {
      text = ToJsonLine(response);
    } else {
      // The same fields as GetHistoryResponse, so the same bytes.
      chat::v1::GetHistoryResponse history;
      history.ParseFromString(response.SerializeAsString());
      text = FormatHistory(history);
    }
  }
  if (!status.ok()) return ReportError(status, client, io.err);
  return Print(io, text);
}

}  // namespace

int RunCommand(const CliOptions& options, ChatClient& client,
               const CommandIo& io) {
  const std::string& command = options.command;
  const std::string& session = options.command_session;
  grpc::Status status;
  std::string text;
  if (command == "history") {
    chat::v1::GetHistoryResponse response;
    status = client.GetHistory(session, &response);
    text = options.json ? ToJsonLine(response) : FormatHistory(response);
  } else if (command == "new") {
    chat::v1::CreateSessionRequest request;
    if (!session.empty()) request.set_session_id(session);
    if (options.system.has_value()) request.set_system_prompt(*options.system);
    if (options.title.has_value()) request.set_title(*options.title);
    chat::v1::CreateSessionResponse response;
    status = client.CreateSession(request, &response);
    // The bare id, so that scripts can take it: s=$(chat-cli new).
    text = options.json ? ToJsonLine(response)
                        : absl::StrCat(response.session().session_id(), "\n");
  } else if (command == "sessions") {
    chat::v1::ListSessionsResponse response;
    status = client.ListSessions(&response);
    text = options.json ? ToJsonLine(response) : FormatSessions(response);
  } else if (command == "reset") {
    chat::v1::ResetSessionResponse response;
    status = client.ResetSession(session, &response);
    text = options.json ? ToJsonLine(response) : FormatReset(response);
  } else if (command == "delete") {
    chat::v1::DeleteSessionResponse response;
    status = client.DeleteSession(session, &response);
    text = options.json ? ToJsonLine(response) : FormatDelete(response);
  } else if (command == "cancel") {
    chat::v1::CancelStreamResponse response;
    status = client.CancelStream(session, &response);
    text = options.json ? ToJsonLine(response)
                        : absl::StrCat(response.session_id(), ": ",
                                       response.status(), "\n");
  } else if (command == "stats") {
    chat::v1::GetStatsResponse response;
    status = client.GetStats(&response);
    text = options.json ? ToJsonLine(response) : FormatStats(response);
  } else if (command == "rename") {
    chat::v1::UpdateSessionResponse response;
    status = client.UpdateSession(session, options.command_text, &response);
    text = options.json ? ToJsonLine(response) : FormatUpdate(response);
  } else if (command == "search") {
    chat::v1::SearchMessagesResponse response;
    status = client.SearchMessages(options.command_text, &response);
    text = options.json ? ToJsonLine(response) : FormatSearch(response);
  } else if (command == "status") {
    chat::v1::GetStatusResponse response;
    status = client.GetStatus(&response);
    text = options.json ? ToJsonLine(response) : FormatStatus(response);
  } else if (command == "export" || command == "import") {
    return RunExportCommand(options, client, io);
  } else if (command == "resume") {
    const std::string after =
        options.command_args.empty() ? "" : options.command_args[0];
    return PrintStream(options, client, io, [&](StreamCall::DeltaFn on_delta) {
      return client.StartResumeStream(session, after, std::move(on_delta));
    });
  } else if (command == "regenerate" || command == "edit" ||
             command == "switch") {
    return RunBranchCommand(options, client, io);
  } else {
    std::fprintf(io.err, "chat-cli: unknown command %s\n", command.c_str());
    return kExitUsage;
  }
  if (!status.ok()) return ReportError(status, client, io.err);
  return Print(io, text);
}

}  // namespace chat::cli
