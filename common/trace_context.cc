#include "common/trace_context.h"

#include <cstdint>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace chat {
namespace {

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(absl::string_view s) {
  return s.find_first_not_of('0') == absl::string_view::npos;
}

// Random hex digits, never all zero. One generator per thread, so no lock.
std::string RandomHex(int digits) {
  thread_local std::mt19937_64 random(std::random_device{}());
  std::string out;
  do {
    out.clear();
    while (static_cast<int>(out.size()) < digits) {
      absl::StrAppendFormat(&out, "%016x", random());
    }
    out.resize(digits);
  } while (AllZero(out));
  return out;
}

}  // namespace

std::optional<TraceContext> ParseTraceparent(absl::string_view value) {
  // version(2) - trace id(32) - parent id(16) - flags(2)
  constexpr size_t kLength = 55;
  if (value.size() < kLength) return std::nullopt;
  absl::string_view version = value.substr(0, 2);
  if (!IsLowerHex(version) || version == "ff") return std::nullopt;
  // Version 00 has exactly this length; a later one may append fields
  // after a '-'.
  if (version == "00" ? value.size() != kLength
                      : value.size() > kLength && value[kLength] != '-') {
    return std::nullopt;
  }
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return std::nullopt;
  }
  TraceContext context;
  absl::string_view trace_id = value.substr(3, 32);
  absl::string_view parent_id = value.substr(36, 16);
  absl::string_view flags = value.substr(53, 2);
  if (!IsLowerHex(trace_id) || AllZero(trace_id) || !IsLowerHex(parent_id) ||
      AllZero(parent_id) || !IsLowerHex(flags)) {
    return std::nullopt;
  }
  context.trace_id = std::string(trace_id);
  context.parent_id = std::string(parent_id);
  context.flags = std::string(flags);
  return context;
}

std::string FormatTraceparent(const TraceContext& context) {
  return absl::StrCat("00-", context.trace_id, "-", context.parent_id, "-",
                      context.flags);
}

std::string NewTraceId() { return RandomHex(32); }
std::string NewSpanId() { return RandomHex(16); }

TraceContext NewTraceContext() {
  TraceContext context;
  context.trace_id = NewTraceId();
  context.parent_id = NewSpanId();
  context.flags = "01";
  return context;
}

}  // namespace chat
