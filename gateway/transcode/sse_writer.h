#ifndef CHAT_GATEWAY_TRANSCODE_SSE_WRITER_H_
#define CHAT_GATEWAY_TRANSCODE_SSE_WRITER_H_

// The wire formats of a streamed answer, as pure functions so the framing is
// tested apart from any socket.

#include <string>

#include "absl/strings/string_view.h"
#include "gateway/transcode/status_mapping.h"

namespace chat::gateway {

// How a server-streaming route answers.
enum class StreamFormat {
  kRawText,  // The template's /chat-stream: text/plain, the deltas' text only.
  kSse,      // text/event-stream: `event: <name>` + `data: <json>` per event.
  kNdjson,   // application/x-ndjson, grpc-gateway's {"result": ...} lines.
};

// The Content-Type header of `format`.
absl::string_view StreamContentType(StreamFormat format);

// One Server-Sent Event (WHATWG HTML "event stream" format): an `event:`
// line, one `data:` line per line of `data`, an `id:` line when `id` is not
// empty (what the client's Last-Event-ID then says), and the blank line that
// ends it.
std::string SseEvent(absl::string_view event, absl::string_view data,
                     absl::string_view id = "");

// grpc-gateway's line for a stream message: {"result":<message json>}\n.
std::string NdjsonResult(absl::string_view message_json);

// grpc-gateway's last line on failure:
// {"error":{"code","message","details"}}\n.
std::string NdjsonError(const HttpError& error);

// The template's in-band error after the first byte: "\nError: <message>".
std::string RawTextError(const HttpError& error);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_SSE_WRITER_H_
