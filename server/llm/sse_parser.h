#ifndef CHAT_SERVER_LLM_SSE_PARSER_H_
#define CHAT_SERVER_LLM_SSE_PARSER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace chat::llm {

// One dispatched Server-Sent Event.
struct SseEvent {
  // The `event:` field; empty when the stream did not name the event (the
  // spec's default type is "message").
  std::string event;
  // The `data:` lines joined with "\n".
  std::string data;
  // The last `id:` seen so far in the stream.
  std::string id;

  bool operator==(const SseEvent& o) const {
    return event == o.event && data == o.data && id == o.id;
  }
};

// Incremental parser for the text/event-stream format (WHATWG HTML, "Server-
// sent events", section 9.2.6). Lines end in "\r\n", "\n" or "\r"; lines
// starting with ':' are comments; a field without ':' has an empty value; one
// space after the colon is dropped; an empty line dispatches the event,
// unless it has no data lines (then it is discarded, as browsers do). `retry:`
// is ignored. A pure function of its input: however the bytes are split
// across Feed calls, the same events come out. Not thread-safe.
class SseParser {
 public:
  // Consumes `bytes` and returns the events they complete, in order.
  std::vector<SseEvent> Feed(absl::string_view bytes);

  // Bytes buffered in an unfinished line (for bounding memory).
  size_t buffered_bytes() const { return line_.size() + data_.size(); }

 private:
  void ProcessLine(absl::string_view line, std::vector<SseEvent>* out);

  std::string line_;      // The unfinished line.
  bool skip_lf_ = false;  // The last byte was '\r': a '\n' next is part of it.
  bool bom_checked_ = false;  // A leading UTF-8 BOM is dropped once.
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  std::string last_id_;
};

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_SSE_PARSER_H_
