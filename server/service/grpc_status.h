#ifndef CHAT_SERVER_SERVICE_GRPC_STATUS_H_
#define CHAT_SERVER_SERVICE_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace chat {

// The one conversion from an internal status to the status a gRPC client
// sees. absl::StatusCode and grpc::StatusCode share their numbering (both
// follow google.rpc.Code), so the code passes through and the message is
// kept. A status that says when to retry (RateLimitedError) also carries
// google.rpc.RetryInfo, and one with a reason (WithErrorReason) a
// google.rpc.ErrorInfo, in the standard grpc-status-details-bin trailer.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_GRPC_STATUS_H_
