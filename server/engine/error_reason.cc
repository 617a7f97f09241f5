#include "server/engine/error_reason.h"

#include "absl/strings/cord.h"

namespace chat {
namespace {

// Not google.rpc.ErrorInfo's type URL: the payload is the bare reason, not a
// serialized ErrorInfo.
constexpr absl::string_view kReasonPayload = "chatd/error-reason";

}  // namespace

absl::Status WithErrorReason(absl::Status status, absl::string_view reason) {
  status.SetPayload(kReasonPayload, absl::Cord(reason));
  return status;
}

std::optional<std::string> ErrorReasonOf(const absl::Status& status) {
  auto payload = status.GetPayload(kReasonPayload);
  if (!payload.has_value()) return std::nullopt;
  return std::string(*payload);
}

}  // namespace chat
