#include "gateway/transcode/sse_writer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace chat::gateway {

absl::string_view StreamContentType(StreamFormat format) {
  switch (format) {
    case StreamFormat::kRawText:
      return "text/plain; charset=utf-8";
    case StreamFormat::kSse:
      return "text/event-stream";
    case StreamFormat::kNdjson:
      return "application/x-ndjson";
  }
  return "application/octet-stream";
}

std::string SseEvent(absl::string_view event, absl::string_view data,
                     absl::string_view id) {
  std::string out = absl::StrCat("event: ", event, "\n");
  // A newline inside data would end the field; the format continues it on
  // another data: line, which the reader joins back with '\n'.
  for (absl::string_view line : absl::StrSplit(data, '\n')) {
    absl::StrAppend(&out, "data: ", line, "\n");
  }
  // An id with a line break (never chat-server's) would end the field.
  if (!id.empty() && id.find_first_of("\r\n") == absl::string_view::npos) {
    absl::StrAppend(&out, "id: ", id, "\n");
  }
  out.push_back('\n');
  return out;
}

std::string NdjsonResult(absl::string_view message_json) {
  return absl::StrCat("{\"result\":", message_json, "}\n");
}

std::string NdjsonError(const HttpError& error) {
  return absl::StrCat("{\"error\":", ErrorBody(error), "}\n");
}

std::string RawTextError(const HttpError& error) {
  return absl::StrCat("\nError: ", error.message);
}

}  // namespace chat::gateway
