#ifndef CHAT_COMMON_LOGGING_H_
#define CHAT_COMMON_LOGGING_H_

// A minimal thread-safe logger: Abseil 20220623 has no absl/log. One line per
// call on stderr, written with one write(2) (no stdio buffer, nothing to
// flush), so that lines from concurrent threads never interleave.
// Two formats (SetLogFormat): text, "<UTC time> <LEVEL> <msg> key=value ...",
// for people; JSON, one object per line ({"ts","level","msg", fields...}),
// for log collectors. Messages below the minimum level (SetMinLogLevel) are
// dropped. The settings are meant to be made once in main, before threads
// log; reading them is lock-free.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace chat {

enum class LogSeverity { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// "text" or "json"; INVALID_ARGUMENT otherwise.
absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name);
// "debug", "info", "warning" (or "warn"), "error"; INVALID_ARGUMENT otherwise.
absl::StatusOr<LogSeverity> ParseLogLevel(absl::string_view name);

void SetLogFormat(LogFormat format);
void SetMinLogLevel(LogSeverity level);
bool LogEnabled(LogSeverity severity);

// One key and its value, already rendered: `quoted` says whether the value is
// a string (JSON-escaped and quoted) or a number/bool written as it is.
struct LogField {
  std::string key;
  std::string value;
  bool quoted = true;
};

// Builds a line's fields; fields with an empty string value are left out, so
// a caller can add what it may not know.
class LogFields {
 public:
  LogFields& Add(absl::string_view key, absl::string_view value);
  LogFields& Add(absl::string_view key, const char* value) {
    return Add(key, absl::string_view(value));
  }
  LogFields& Add(absl::string_view key, const std::string& value) {
    return Add(key, absl::string_view(value));
  }
  LogFields& Add(absl::string_view key, int64_t value);
  LogFields& Add(absl::string_view key, int value) {
    return Add(key, static_cast<int64_t>(value));
  }
  LogFields& Add(absl::string_view key, double value);
  LogFields& Add(absl::string_view key, bool value);
  // In milliseconds with microsecond precision, under `key` (which should
  // end in "_ms").
  LogFields& AddMillis(absl::string_view key, absl::Duration value);

  const std::vector<LogField>& fields() const { return fields_; }

 private:
  // A new field named `key`, its value empty.
  LogField& Append(absl::string_view key, bool quoted);

  std::vector<LogField> fields_;
};

// `s` as the inside of a JSON string (RFC 8259: quote, backslash and control
// characters escaped; other bytes, UTF-8 included, as they are).
std::string JsonEscape(absl::string_view s);

// The line (without its newline) that Log writes, for tests.
std::string FormatLogLine(LogFormat format, absl::Time time,
                          LogSeverity severity, absl::string_view message,
                          const std::vector<LogField>& fields);

void Log(LogSeverity severity, absl::string_view message,
         const LogFields& fields);
void Log(LogSeverity severity, absl::string_view message);

template <typename... Args>
void LogDebug(const Args&... args) {
  if (LogEnabled(LogSeverity::kDebug)) {
    Log(LogSeverity::kDebug, absl::StrCat(args...));
  }
}
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

// Whether message content (prompts, replies) may appear in logs
// (--log_content). Off unless set.
void SetLogContent(bool enabled);
bool LogContentEnabled();

// The logging flags of a binary (--log_format, --log_level, --log_content).
struct LogOptions {
  LogFormat format = LogFormat::kText;
  LogSeverity level = LogSeverity::kInfo;
  bool content = false;
};
// Makes `options` the process's settings; once, early in main.
void ApplyLogOptions(const LogOptions& options);

}  // namespace chat

#endif  // CHAT_COMMON_LOGGING_H_
