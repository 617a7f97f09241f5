// chat-cli export and import: ChatClient's three export RPCs and the
// commands that print and read their JSON. An export prints one
// SessionExport per line (proto field names), which is what import reads
// back, one line or one whole file at a time.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "clients/cli/chat_client.h"
#include "clients/cli/commands.h"
#include "clients/cli/exit_codes.h"
#include "clients/cli/output.h"
#include "google/protobuf/util/json_util.h"

namespace chat::cli {

grpc::Status ChatClient::ExportSession(
    const std::string& session, bool markdown,
    chat::v1::ExportSessionResponse* response) {
  auto context = NewContext();
  chat::v1::ExportSessionRequest request;
  request.set_session_id(session);
  if (markdown) request.set_format("markdown");
  return stub_->ExportSession(context.get(), request, response);
}

grpc::Status ChatClient::ExportSessions(
    const std::function<bool(const chat::v1::SessionExport&)>& on_session) {
  auto context = NewContext();
  auto reader = stub_->ExportSessions(context.get(), {});
  chat::v1::ExportSessionsResponse message;
  while (reader->Read(&message)) {
    if (!on_session(message.session())) {
      context->TryCancel();
      break;
    }
  }
  return reader->Finish();
}

grpc::Status ChatClient::ImportSession(
    const chat::v1::ImportSessionRequest& request,
    chat::v1::ImportSessionResponse* response) {
  auto context = NewContext();
  return stub_->ImportSession(context.get(), request, response);
}

namespace {

int Write(const CommandIo& io, absl::string_view text) {
  if (std::fwrite(text.data(), 1, text.size(), io.out) != text.size() ||
      std::fflush(io.out) != 0) {
    std::fprintf(io.err, "chat-cli: cannot write the output\n");
    return kExitOther;
  }
  return kExitOk;
}

// The whole of `path` ("-": `in_fd`) in `text`; false if it cannot be read.
bool ReadFile(const std::string& path, int in_fd, std::string* text) {
  const int fd = path == "-" ? in_fd : open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[65536];
  bool ok = true;
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      ok = false;
      break;
    }
    text->append(buffer, static_cast<size_t>(n));
  }
  if (fd != in_fd) close(fd);
  return ok;
}

// One JSON object of an import file as a request: an ExportSession or
// ImportSession body ({"session": ...}) or a bare SessionExport (what
// chat-cli export prints).
bool ParseImport(absl::string_view text, bool replace,
                 chat::v1::ImportSessionRequest* request) {
  // This protobuf takes its own StringPiece, not absl::string_view.
  const std::string json(text);
  google::protobuf::util::JsonParseOptions strict;
  request->Clear();
  if (google::protobuf::util::JsonStringToMessage(json, request, strict).ok()) {
    if (replace) request->set_replace(true);
    return request->has_session();
  }
  chat::v1::ExportSessionResponse exported;
  if (google::protobuf::util::JsonStringToMessage(json, &exported, strict)
          .ok() &&
      exported.has_session()) {
    *request->mutable_session() = exported.session();
  } else if (!google::protobuf::util::JsonStringToMessage(
                  json, request->mutable_session(), strict)
                  .ok()) {
    return false;
  }
  request->set_replace(replace);
  return true;
}

int RunImport(const CliOptions& options, ChatClient& client,
              const CommandIo& io) {
  std::string text;
  if (!ReadFile(options.command_text, io.in_fd, &text)) {
    std::fprintf(io.err, "chat-cli: import: cannot read %s\n",
                 options.command_text.c_str());
    return kExitOther;
  }
  // One export (printed on any number of lines), else JSON lines.
  std::vector<chat::v1::ImportSessionRequest> requests(1);
  if (!ParseImport(text, options.replace, &requests[0])) {
    requests.clear();
    int line_number = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_number;
      line = absl::StripAsciiWhitespace(line);
      if (line.empty()) continue;
      if (!ParseImport(line, options.replace, &requests.emplace_back())) {
        std::fprintf(io.err,
                     "chat-cli: import: %s line %d is not a session export\n",
                     options.command_text.c_str(), line_number);
        return kExitUsage;
      }
    }
  }
  // Each session is its own transaction: on a failure, the sessions before
  // it stay imported and the ones after it are not tried.
  for (const chat::v1::ImportSessionRequest& request : requests) {
    chat::v1::ImportSessionResponse response;
    grpc::Status status = client.ImportSession(request, &response);
    if (!status.ok()) {
      std::fprintf(io.err, "chat-cli: import: session %s:\n",
                   request.session().session_id().c_str());
      return ReportError(status, client, io.err);
    }
    const std::string out =
        options.json
            ? ToJsonLine(response)
            : absl::StrCat("imported ", response.session().session_id(), " (",
                           response.session().turns(), " turns)\n");
    if (int code = Write(io, out); code != kExitOk) return code;
  }
  return kExitOk;
}

}  // namespace

int RunExportCommand(const CliOptions& options, ChatClient& client,
                     const CommandIo& io) {
  if (options.command == "import") return RunImport(options, client, io);
  if (options.all) {
    int write_code = kExitOk;
    grpc::Status status =
        client.ExportSessions([&](const chat::v1::SessionExport& session) {
          write_code = Write(io, ToJsonLine(session));
          return write_code == kExitOk;
        });
    if (write_code != kExitOk) return write_code;
    if (!status.ok()) return ReportError(status, client, io.err);
    return kExitOk;
  }
  chat::v1::ExportSessionResponse response;
  grpc::Status status = client.ExportSession(options.command_session,
                                             options.markdown, &response);
  if (!status.ok()) return ReportError(status, client, io.err);
  return Write(io, options.markdown ? response.markdown()
                                    : ToJsonLine(response.session()));
}

}  // namespace chat::cli
