#include "server/llm/sse_parser.h"

namespace chat::llm {

std::vector<SseEvent> SseParser::Feed(absl::string_view bytes) {
  std::vector<SseEvent> events;
  FeedEach(bytes, [&](const SseEvent& event) {
    events.push_back(event);
    return true;
  });
  return events;
}

bool SseParser::ProcessLine(absl::string_view line) {
  if (!bom_checked_) {
    bom_checked_ = true;
    if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
  }
  if (line.empty()) {
    if (has_data_) {
      event_.id = last_id_;
      return true;
    }
    ResetEvent();
    return false;
  }
  if (line.front() == ':')
    return false;  // A comment (keep-alives, OpenRouter).
  absl::string_view field = line;
  absl::string_view value;
  if (size_t colon = line.find(':'); colon != absl::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) event_.data.push_back('\n');
    event_.data.append(value.data(), value.size());
    has_data_ = true;
  } else if (field == "event") {
    event_.event.assign(value.data(), value.size());
  } else if (field == "id") {
    if (value.find('\0') == absl::string_view::npos)
      last_id_.assign(value.data(), value.size());
  }
  // "retry" and unknown fields are ignored.
  return false;
}

}  // namespace chat::llm
