#include "server/llm/sse_parser.h"

namespace chat::llm {

std::vector<SseEvent> SseParser::Feed(absl::string_view bytes) {
  std::vector<SseEvent> events;
  size_t i = 0;
  while (i < bytes.size()) {
    char c = bytes[i];
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n') {
        ++i;
        continue;
      }
    }
    if (c == '\r' || c == '\n') {
      skip_lf_ = c == '\r';
      ProcessLine(line_, &events);
      line_.clear();
      ++i;
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
      ProcessLine(bytes.substr(i, end - i), &events);
      i = end + 1;
      continue;
    }
    line_.append(bytes.data() + i, end - i);
    i = end;
  }
  return events;
}

void SseParser::ProcessLine(absl::string_view line,
                            std::vector<SseEvent>* out) {
  if (!bom_checked_) {
    bom_checked_ = true;
    if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
  }
  if (line.empty()) {
    if (has_data_) {
      out->push_back(SseEvent{std::move(event_), std::move(data_), last_id_});
    }
    event_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // A comment (keep-alives, OpenRouter).
  absl::string_view field = line;
  absl::string_view value;
  if (size_t colon = line.find(':'); colon != absl::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  } else if (field == "id") {
    if (value.find('\0') == absl::string_view::npos)
      last_id_ = std::string(value);
  }
  // "retry" and unknown fields are ignored.
}

}  // namespace chat::llm
