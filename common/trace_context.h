#ifndef CHAT_COMMON_TRACE_CONTEXT_H_
#define CHAT_COMMON_TRACE_CONTEXT_H_

// W3C Trace Context (https://www.w3.org/TR/trace-context/), version 00 of the
// `traceparent` header: "00-<trace id>-<parent id>-<flags>", lowercase hex.

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace chat {

struct TraceContext {
  std::string trace_id;      // 32 lowercase hex digits, not all zero.
  std::string parent_id;     // 16 lowercase hex digits, not all zero.
  std::string flags = "01";  // 2 hex digits; 01: sampled.
};

// The header's value, or nullopt if it breaks the spec: wrong length or
// separators, a non-hex or uppercase digit, an all-zero trace or parent id,
// version ff. A later version is read as 00 when it is at least as long,
// as the spec asks.
std::optional<TraceContext> ParseTraceparent(absl::string_view value);

// "00-<trace_id>-<parent_id>-<flags>".
std::string FormatTraceparent(const TraceContext& context);

// Random ids, never all zero. Thread-safe.
std::string NewTraceId();
std::string NewSpanId();

// A new trace: random trace and parent ids, sampled.
TraceContext NewTraceContext();

}  // namespace chat

#endif  // CHAT_COMMON_TRACE_CONTEXT_H_
