#include "common/logging.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace chat {
namespace {

std::atomic<LogFormat> log_format{LogFormat::kText};
std::atomic<LogSeverity> min_level{LogSeverity::kInfo};
std::atomic<bool> log_content{false};

absl::string_view TextTag(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kDebug:
      return "DEBUG";
    case LogSeverity::kInfo:
      return "INFO";
    case LogSeverity::kWarning:
      return "WARN";
    case LogSeverity::kError:
      return "ERROR";
  }
  return "INFO";
}

absl::string_view JsonLevel(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kDebug:
      return "debug";
    case LogSeverity::kInfo:
      return "info";
    case LogSeverity::kWarning:
      return "warning";
    case LogSeverity::kError:
      return "error";
  }
  return "info";
}

// Text values are quoted only when a reader could not tell where they end.
bool NeedsQuotes(absl::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' ||
        static_cast<unsigned char>(c) < 0x20) {
      return true;
    }
  }
  return false;
}

// Fields most lines carry (a turn's line has about 17): reserved on the
// first Add so that building a line reallocates nothing.
constexpr size_t kTypicalFieldCount = 20;

// Appends `s` JSON-escaped (see JsonEscape), without a temporary string.
void AppendJsonEscaped(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          const unsigned char u = static_cast<unsigned char>(c);
          const char escaped[6] = {'\\', 'u',          '0',
                                   '0',  kHex[u >> 4], kHex[u & 0xf]};
          out->append(escaped, sizeof(escaped));
        } else {
          out->push_back(c);
        }
    }
  }
}

// Appends `value` as `width` decimal digits, zero-padded.
void AppendDigits(std::string* out, int64_t value, int width) {
  char digits[20];
  for (int i = width - 1; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out->append(digits, static_cast<size_t>(width));
}

// Appends `time` as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC, milliseconds truncated),
// what absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ") writes, without its format
// parser and time zone lookup: every log line pays for this.
void AppendTimestamp(std::string* out, absl::Time time) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::CivilSecond civil = absl::ToCivilSecond(time, utc);
  if (civil.year() < 0 || civil.year() > 9999) {
    out->append(
        absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone()));
    return;
  }
  const int64_t millis =
      absl::ToInt64Milliseconds(time - absl::FromCivil(civil, utc));
  AppendDigits(out, civil.year(), 4);
  out->push_back('-');
  AppendDigits(out, civil.month(), 2);
  out->push_back('-');
  AppendDigits(out, civil.day(), 2);
  out->push_back('T');
  AppendDigits(out, civil.hour(), 2);
  out->push_back(':');
  AppendDigits(out, civil.minute(), 2);
  out->push_back(':');
  AppendDigits(out, civil.second(), 2);
  out->push_back('.');
  AppendDigits(out, millis, 3);
  out->push_back('Z');
}

// Writes all of `line` to standard error with as few write(2) calls as the
// kernel allows (one, short of a signal or a full pipe), so concurrent
// lines do not interleave; no stdio lock, no flush.
void WriteToStderr(absl::string_view line) {
  const char* data = line.data();
  size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDERR_FILENO, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere to report it.
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace

absl::StatusOr<LogFormat> ParseLogFormat(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "text") return LogFormat::kText;
  if (lower == "json") return LogFormat::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log_format must be json or text; got \"", name, "\""));
}

absl::StatusOr<LogSeverity> ParseLogLevel(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (lower == "debug") return LogSeverity::kDebug;
  if (lower == "info") return LogSeverity::kInfo;
  if (lower == "warning" || lower == "warn") return LogSeverity::kWarning;
  if (lower == "error") return LogSeverity::kError;
  return absl::InvalidArgumentError(absl::StrCat(
      "--log_level must be debug, info, warning or error; got \"", name, "\""));
}

void SetLogFormat(LogFormat format) { log_format.store(format); }
void SetMinLogLevel(LogSeverity level) { min_level.store(level); }
bool LogEnabled(LogSeverity severity) {
  return static_cast<int>(severity) >=
         static_cast<int>(min_level.load(std::memory_order_relaxed));
}
void SetLogContent(bool enabled) { log_content.store(enabled); }
bool LogContentEnabled() { return log_content.load(std::memory_order_relaxed); }

void ApplyLogOptions(const LogOptions& options) {
  SetLogFormat(options.format);
  SetMinLogLevel(options.level);
  SetLogContent(options.content);
}

LogField& LogFields::Append(absl::string_view key, bool quoted) {
  if (fields_.capacity() == 0) fields_.reserve(kTypicalFieldCount);
  LogField& field = fields_.emplace_back();
  field.key.assign(key.data(), key.size());
  field.quoted = quoted;
  return field;
}

LogFields& LogFields::Add(absl::string_view key, absl::string_view value) {
  if (!value.empty())
    Append(key, true).value.assign(value.data(), value.size());
  return *this;
}

LogFields& LogFields::Add(absl::string_view key, int64_t value) {
  absl::StrAppend(&Append(key, false).value, value);
  return *this;
}

LogFields& LogFields::Add(absl::string_view key, double value) {
  // JSON has no NaN or infinity.
  if (!std::isfinite(value)) return *this;
  Append(key, false).value = absl::StrFormat("%.6g", value);
  return *this;
}

LogFields& LogFields::Add(absl::string_view key, bool value) {
  Append(key, false).value = value ? "true" : "false";
  return *this;
}

LogFields& LogFields::AddMillis(absl::string_view key, absl::Duration value) {
  // What "%.3f" of the milliseconds writes, from the microseconds rounded
  // to the nearest, without printf's floating-point path.
  std::string& out = Append(key, false).value;
  int64_t nanos = absl::ToInt64Nanoseconds(value);
  if (nanos < 0) {
    out.push_back('-');
    nanos = nanos == INT64_MIN ? INT64_MAX : -nanos;
  }
  const int64_t micros = nanos / 1000 + (nanos % 1000 >= 500 ? 1 : 0);
  absl::StrAppend(&out, micros / 1000);
  out.push_back('.');
  AppendDigits(&out, micros % 1000, 3);
  return *this;
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  AppendJsonEscaped(&out, s);
  return out;
}

namespace {

// Appends the line FormatLogLine returns to `line`.
void AppendLogLine(std::string* line, LogFormat format, absl::Time time,
                   LogSeverity severity, absl::string_view message,
                   const std::vector<LogField>& fields) {
  // One allocation for the whole line: escaping rarely grows it much.
  size_t size = 64 + message.size();
  for (const LogField& f : fields) size += f.key.size() + f.value.size() + 8;
  line->reserve(line->size() + size);
  if (format == LogFormat::kJson) {
    line->append("{\"ts\":\"");
    AppendTimestamp(line, time);
    line->append("\",\"level\":\"");
    line->append(JsonLevel(severity).data(), JsonLevel(severity).size());
    line->append("\",\"msg\":\"");
    AppendJsonEscaped(line, message);
    line->push_back('"');
    for (const LogField& f : fields) {
      line->append(",\"");
      AppendJsonEscaped(line, f.key);
      line->append("\":");
      if (f.quoted) {
        line->push_back('"');
        AppendJsonEscaped(line, f.value);
        line->push_back('"');
      } else {
        line->append(f.value);
      }
    }
    line->push_back('}');
    return;
  }
  AppendTimestamp(line, time);
  line->push_back(' ');
  line->append(TextTag(severity).data(), TextTag(severity).size());
  line->push_back(' ');
  line->append(message.data(), message.size());
  for (const LogField& f : fields) {
    line->push_back(' ');
    line->append(f.key);
    line->push_back('=');
    if (f.quoted && NeedsQuotes(f.value)) {
      line->push_back('"');
      AppendJsonEscaped(line, f.value);
      line->push_back('"');
    } else {
      line->append(f.value);
    }
  }
}

}  // namespace

std::string FormatLogLine(LogFormat format, absl::Time time,
                          LogSeverity severity, absl::string_view message,
                          const std::vector<LogField>& fields) {
  std::string line;
  AppendLogLine(&line, format, time, severity, message, fields);
  return line;
}

void Log(LogSeverity severity, absl::string_view message,
         const LogFields& fields) {
  if (!LogEnabled(severity)) return;
  std::string line;
  AppendLogLine(&line, log_format.load(std::memory_order_relaxed), absl::Now(),
                severity, message, fields.fields());
  line.push_back('\n');
  WriteToStderr(line);
}

void Log(LogSeverity severity, absl::string_view message) {
  Log(severity, message, LogFields());
}

}  // namespace chat
