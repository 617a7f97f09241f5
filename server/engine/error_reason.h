#ifndef CHAT_SERVER_ENGINE_ERROR_REASON_H_
#define CHAT_SERVER_ENGINE_ERROR_REASON_H_

// A machine-readable reason carried by a status, for a refusal a client must
// tell apart from others of the same code. The gRPC edge sends it as the
// standard google.rpc.ErrorInfo detail (domain kErrorDomain); the gateway
// reads it there. The engine stays free of protobuf: the reason travels as an
// absl::Status payload.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace chat {

// google.rpc.ErrorInfo.domain of every reason chatd gives.
inline constexpr absl::string_view kErrorDomain = "chatd";

// `status` with `reason` attached (UPPER_SNAKE_CASE, as ErrorInfo asks).
// An OK status is returned as it is: it has no room for a payload.
absl::Status WithErrorReason(absl::Status status, absl::string_view reason);

// The reason attached by WithErrorReason; nullopt if none.
std::optional<std::string> ErrorReasonOf(const absl::Status& status);

}  // namespace chat

#endif  // CHAT_SERVER_ENGINE_ERROR_REASON_H_
