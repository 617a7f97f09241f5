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

  // Consumes `bytes`, handing each event they complete to `on_event`
  // (bool(const SseEvent&), the event valid during the call only), in
  // order, without copying it. `on_event` returns false to stop: FeedEach
  // then returns false and the rest of `bytes` is dropped.
  template <typename OnEvent>
  bool FeedEach(absl::string_view bytes, OnEvent&& on_event);

  // Bytes buffered in an unfinished line (for bounding memory).
  size_t buffered_bytes() const { return line_.size() + event_.data.size(); }

 private:
  // Takes one line; true if it completed the event in event_.
  bool ProcessLine(absl::string_view line);
  // Empties event_ for the next one, keeping its buffers.
  void ResetEvent() {
    event_.event.clear();
    event_.data.clear();
    has_data_ = false;
  }

  std::string line_;      // The unfinished line.
  bool skip_lf_ = false;  // The last byte was '\r': a '\n' next is part of it.
  bool bom_checked_ = false;  // A leading UTF-8 BOM is dropped once.
  SseEvent event_;            // The event being read.
  bool has_data_ = false;
  std::string last_id_;
};

template <typename OnEvent>
bool SseParser::FeedEach(absl::string_view bytes, OnEvent&& on_event) {
  auto dispatch = [&] {
    bool go_on = on_event(static_cast<const SseEvent&>(event_));
    ResetEvent();
    return go_on;
  };
  size_t i = 0;
  while (i < bytes.size()) {
    const char c = bytes[i];
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') {
        ++i;
        continue;
      }
    }
    if (c == '\r' || c == '\n') {
      skip_lf_ = c == '\r';
      ++i;
      const bool ready = ProcessLine(line_);
      line_.clear();
      if (ready && !dispatch()) return false;
      continue;
    }
    // Take runs of ordinary bytes at once rather than byte by byte (a plain
    // loop: string_view::find_first_of builds a lookup table per call).
    size_t end = i + 1;
    while (end < bytes.size() && bytes[end] != '\n' && bytes[end] != '\r')
      ++end;
    if (end < bytes.size() && line_.empty()) {
      // A whole line within `bytes`: read in place, not copied.
      skip_lf_ = bytes[end] == '\r';
      const bool ready = ProcessLine(bytes.substr(i, end - i));
      i = end + 1;
      if (ready && !dispatch()) return false;
      continue;
    }
    line_.append(bytes.data() + i, end - i);
    i = end;
  }
  return true;
}

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_SSE_PARSER_H_
