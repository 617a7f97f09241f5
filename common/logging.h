#ifndef CHAT_COMMON_LOGGING_H_
#define CHAT_COMMON_LOGGING_H_

// A minimal thread-safe logger: Abseil 20220623 has no absl/log. One line per
// call on stderr, prefixed with a UTC timestamp and the severity, so that
// lines from concurrent threads never interleave.

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace chat {

enum class LogSeverity { kInfo, kWarning, kError };

void Log(LogSeverity severity, absl::string_view message);

template <typename... Args>
void LogInfo(const Args&... args) {
  Log(LogSeverity::kInfo, absl::StrCat(args...));
}
template <typename... Args>
void LogWarning(const Args&... args) {
  Log(LogSeverity::kWarning, absl::StrCat(args...));
}
template <typename... Args>
void LogError(const Args&... args) {
  Log(LogSeverity::kError, absl::StrCat(args...));
}

}  // namespace chat

#endif  // CHAT_COMMON_LOGGING_H_
