#ifndef CHAT_COMMON_TIME_FORMAT_H_
#define CHAT_COMMON_TIME_FORMAT_H_

#include <string>

#include "absl/time/time.h"

namespace chat {

// RFC 3339 / ISO-8601 in UTC with microseconds, e.g.
// "2026-11-26T09:30:00.123456Z": the `timestamp` fields of the API.
std::string FormatTimestamp(absl::Time t);

}  // namespace chat

#endif  // CHAT_COMMON_TIME_FORMAT_H_
