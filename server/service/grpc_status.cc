#include "server/service/grpc_status.h"

#include <optional>
#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "server/engine/key_quotas.h"

namespace chat {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  std::string message(status.message());
  std::optional<absl::Duration> retry_after = RetryAfterOf(status);
  if (!retry_after.has_value()) return grpc::Status(code, message);
  // The standard detail, in grpc-status-details-bin, that gRPC clients read
  // to know when to retry.
  google::rpc::RetryInfo retry_info;
  const int64_t micros = absl::ToInt64Microseconds(*retry_after);
  retry_info.mutable_retry_delay()->set_seconds(micros / 1000000);
  retry_info.mutable_retry_delay()->set_nanos(
      static_cast<int32_t>((micros % 1000000) * 1000));
  google::rpc::Status details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  details.add_details()->PackFrom(retry_info);
  return grpc::Status(code, message, details.SerializeAsString());
}

}  // namespace chat
