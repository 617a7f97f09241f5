#include "clients/cli/repl.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "clients/cli/commands.h"
#include "clients/cli/exit_codes.h"
#include "clients/cli/interrupts.h"
#include "clients/cli/output.h"

namespace chat::cli {
namespace {

constexpr char kPrompt[] = "> ";

constexpr char kHelp[] =
    "Type a message and press Enter; the reply streams back.\n"
    "  /history       this session's stored messages\n"
    "  /reset         drop this session's messages (keeps its system prompt)\n"
    "  /sessions      your sessions, most recent first\n"
    "  /session [ID]  show the session, or switch to ID\n"
    "  /model [NAME]  show the model, or ask NAME from now on ('-': the "
    "server's)\n"
    "  /system TEXT   system prompt; a session that has turns moves to a new "
    "one\n"
    "  /help          this text\n"
    "  /quit          leave (or Ctrl-D)\n"
    "Ctrl-C stops a reply; Ctrl-C at the prompt leaves.\n";

}  // namespace

Repl::Repl(ChatClient& client, const CliOptions& options, ReplIo io)
    : client_(client),
      server_(options.server),
      io_(io),
      session_(options.session.empty() ? NewSessionId() : options.session),
      model_(options.model),
      system_(options.system) {}

void Repl::Say(const std::string& text) {
  std::fputs(text.c_str(), io_.out);
  std::fflush(io_.out);
}

void Repl::Complain(const std::string& text) {
  std::fputs(text.c_str(), io_.err);
  std::fflush(io_.err);
}

Repl::Read Repl::ReadLine(std::string* line) {
  while (true) {
    size_t newline = pending_.find('\n');
    if (newline != std::string::npos) {
      *line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      if (!line->empty() && line->back() == '\r') line->pop_back();
      return Read::kLine;
    }
    pollfd fds[2] = {{io_.in_fd, POLLIN, 0}, {io_.interrupt_fd, POLLIN, 0}};
    const int count = io_.interrupt_fd >= 0 ? 2 : 1;
    if (poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      return Read::kEnd;
    }
    if (count == 2 && (fds[1].revents & POLLIN) != 0 &&
        DrainInterrupts(io_.interrupt_fd) > 0) {
      return Read::kInterrupted;
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    char buffer[4096];
    ssize_t n = read(io_.in_fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // End of input: a last line without its newline still counts.
      if (pending_.empty()) return Read::kEnd;
      *line = std::move(pending_);
      pending_.clear();
      return Read::kLine;
    }
    pending_.append(buffer, static_cast<size_t>(n));
  }
}

int Repl::Run() {
  Say(absl::StrCat("chat-cli: session ", session_, " on ", server_,
                   ". /help lists commands; Ctrl-C stops a reply, Ctrl-C at "
                   "the prompt or Ctrl-D leaves.\n"));
  while (true) {
    Say(kPrompt);
    std::string line;
    switch (ReadLine(&line)) {
      case Read::kEnd:
        Say("\n");
        return kExitOk;
      case Read::kInterrupted:
        Say("\n");
        return kExitInterrupted;
      case Read::kLine:
        break;
    }
    switch (HandleLine(line)) {
      case Next::kContinue:
        break;
      case Next::kQuit:
        return kExitOk;
      case Next::kInterruptedQuit:
        return kExitInterrupted;
    }
  }
}

Repl::Next Repl::HandleLine(const std::string& line) {
  absl::string_view trimmed = absl::StripAsciiWhitespace(line);
  if (trimmed.empty()) return Next::kContinue;
  if (trimmed[0] == '/') return HandleCommand(std::string(trimmed));
  return Send(line);
}

Repl::Next Repl::HandleCommand(const std::string& line) {
  absl::string_view rest = line;
  const size_t space = rest.find(' ');
  const std::string name(rest.substr(0, space));
  const std::string argument(
      space == absl::string_view::npos
          ? ""
          : absl::StripAsciiWhitespace(rest.substr(space + 1)));
  if (name == "/quit" || name == "/exit") return Next::kQuit;
  if (name == "/help") {
    Say(kHelp);
  } else if (name == "/history") {
    ShowHistory();
  } else if (name == "/sessions") {
    ShowSessions();
  } else if (name == "/reset") {
    Reset();
  } else if (name == "/session") {
    if (!argument.empty()) {
      session_ = argument;
      turns_here_ = 0;
    }
    Say(absl::StrCat("session: ", session_, "\n"));
  } else if (name == "/model") {
    if (argument == "-") {
      model_.reset();
    } else if (!argument.empty()) {
      model_ = argument;
    }
    Say(absl::StrCat("model: ", model_.value_or("the server's default"), "\n"));
  } else if (name == "/system") {
    if (argument.empty()) {
      Say(absl::StrCat(
          "system prompt: ", system_.value_or("the server's default"), "\n"));
      return Next::kContinue;
    }
    system_ = argument;
    if (turns_here_ > 0) {
      // A session's system prompt is fixed when it is created.
      session_ = NewSessionId();
      turns_here_ = 0;
      Say(absl::StrCat("system prompt set; new session ", session_, "\n"));
    } else {
      Say("system prompt set\n");
    }
  } else {
    Complain(absl::StrCat("unknown command ", name, "; /help lists them\n"));
  }
  return Next::kContinue;
}

Repl::Next Repl::Send(const std::string& message) {
  bool printed = false;
  StreamCall::DeltaFn on_delta = [&](const std::string& text) {
    printed = true;
    std::fwrite(text.data(), 1, text.size(), io_.out);
    std::fflush(io_.out);
  };
  CliOptions request_options;
  request_options.model = model_;
  request_options.system = system_;
  std::unique_ptr<StreamCall> call = client_.StartChatStream(
      MakeChatRequest(request_options, session_, message), std::move(on_delta));
  CallOutcome outcome = WaitForCall(*call, io_.interrupt_fd);
  if (printed) Say("\n");
  if (outcome.status.ok()) {
    ++turns_here_;
  } else if (outcome.interrupted &&
             outcome.status.error_code() == grpc::StatusCode::CANCELLED) {
    Say("[cancelled]\n");
  } else {
    Complain(absl::StrCat(
        "error: ", FormatError(outcome.status, client_.api_key()), "\n"));
  }
  return outcome.exit_requested ? Next::kInterruptedQuit : Next::kContinue;
}

void Repl::ShowHistory() {
  chat::v1::GetHistoryResponse history;
  grpc::Status status = client_.GetHistory(session_, &history);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    Say(absl::StrCat("session ", session_, " has no turns yet\n"));
  } else if (!status.ok()) {
    Complain(
        absl::StrCat("error: ", FormatError(status, client_.api_key()), "\n"));
  } else {
    Say(FormatHistory(history));
  }
}

void Repl::ShowSessions() {
  chat::v1::ListSessionsResponse sessions;
  grpc::Status status = client_.ListSessions(&sessions);
  if (!status.ok()) {
    Complain(
        absl::StrCat("error: ", FormatError(status, client_.api_key()), "\n"));
    return;
  }
  Say(FormatSessions(sessions));
}

void Repl::Reset() {
  chat::v1::ResetSessionResponse reset;
  grpc::Status status = client_.ResetSession(session_, &reset);
  if (!status.ok()) {
    Complain(
        absl::StrCat("error: ", FormatError(status, client_.api_key()), "\n"));
    return;
  }
  Say(FormatReset(reset));
}

}  // namespace chat::cli
