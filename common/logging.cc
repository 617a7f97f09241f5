#include "common/logging.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <string>

#include "absl/strings/ascii.h"
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

LogFields& LogFields::Add(absl::string_view key, absl::string_view value) {
  if (!value.empty()) {
    fields_.push_back({std::string(key), std::string(value), true});
  }
  return *this;
}

LogFields& LogFields::Add(absl::string_view key, int64_t value) {
  fields_.push_back({std::string(key), absl::StrCat(value), false});
  return *this;
}

LogFields& LogFields::Add(absl::string_view key, double value) {
  // JSON has no NaN or infinity.
  if (!std::isfinite(value)) return *this;
  fields_.push_back({std::string(key), absl::StrFormat("%.6g", value), false});
  return *this;
}

LogFields& LogFields::Add(absl::string_view key, bool value) {
  fields_.push_back({std::string(key), value ? "true" : "false", false});
  return *this;
}

LogFields& LogFields::AddMillis(absl::string_view key, absl::Duration value) {
  fields_.push_back({std::string(key),
                     absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(value)),
                     false});
  return *this;
}

std::string JsonEscape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string FormatLogLine(LogFormat format, absl::Time time,
                          LogSeverity severity, absl::string_view message,
                          const std::vector<LogField>& fields) {
  const std::string ts =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
  std::string line;
  if (format == LogFormat::kJson) {
    line =
        absl::StrCat("{\"ts\":\"", ts, "\",\"level\":\"", JsonLevel(severity),
                     "\",\"msg\":\"", JsonEscape(message), "\"");
    for (const LogField& f : fields) {
      absl::StrAppend(&line, ",\"", JsonEscape(f.key), "\":");
      if (f.quoted) {
        absl::StrAppend(&line, "\"", JsonEscape(f.value), "\"");
      } else {
        absl::StrAppend(&line, f.value);
      }
    }
    line += "}";
    return line;
  }
  line = absl::StrCat(ts, " ", TextTag(severity), " ", message);
  for (const LogField& f : fields) {
    absl::StrAppend(&line, " ", f.key, "=");
    if (f.quoted && NeedsQuotes(f.value)) {
      absl::StrAppend(&line, "\"", JsonEscape(f.value), "\"");
    } else {
      absl::StrAppend(&line, f.value);
    }
  }
  return line;
}

void Log(LogSeverity severity, absl::string_view message,
         const LogFields& fields) {
  if (!LogEnabled(severity)) return;
  std::string line =
      FormatLogLine(log_format.load(std::memory_order_relaxed), absl::Now(),
                    severity, message, fields.fields());
  line += '\n';
  // One fwrite per line: stdio locks the stream, so lines stay whole.
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

void Log(LogSeverity severity, absl::string_view message) {
  Log(severity, message, LogFields());
}

}  // namespace chat
