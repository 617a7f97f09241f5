#include "server/service/grpc_status.h"

#include <optional>
#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/engine/error_reason.h"
#include "server/engine/key_quotas.h"

namespace chat {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  // The standard details, in grpc-status-details-bin, that gRPC clients read:
  // when to retry, and why a call was refused when the code alone does not
  // say (the gateway picks the HTTP status by it).
  google::rpc::Status details;
  if (std::optional<absl::Duration> retry_after = RetryAfterOf(status)) {
    google::rpc::RetryInfo retry_info;
    const int64_t micros = absl::ToInt64Microseconds(*retry_after);
    retry_info.mutable_retry_delay()->set_seconds(micros / 1000000);
    retry_info.mutable_retry_delay()->set_nanos(
        static_cast<int32_t>((micros % 1000000) * 1000));
    details.add_details()->PackFrom(retry_info);
  }
  if (std::optional<std::string> reason = ErrorReasonOf(status)) {
    google::rpc::ErrorInfo error_info;
    error_info.set_reason(*reason);
    error_info.set_domain(std::string(kErrorDomain));
    details.add_details()->PackFrom(error_info);
  }
  if (details.details().empty()) return grpc::Status(code, message);
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  return grpc::Status(code, message, details.SerializeAsString());
}

}  // namespace chat
