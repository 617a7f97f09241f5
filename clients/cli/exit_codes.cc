#include "clients/cli/exit_codes.h"

namespace chat::cli {

int ExitCodeForStatus(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kExitInvalidArgument;
    case grpc::StatusCode::UNAUTHENTICATED:
      return kExitUnauthenticated;
    case grpc::StatusCode::PERMISSION_DENIED:
      return kExitPermissionDenied;
    case grpc::StatusCode::NOT_FOUND:
      return kExitNotFound;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return kExitResourceExhausted;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitUnavailable;
    case grpc::StatusCode::CANCELLED:
      return kExitInterrupted;
    default:
      return kExitOther;
  }
}

std::string ExitCodeTable() {
  return "  0    OK\n"
         "  1    any other error (INTERNAL, UNKNOWN, FAILED_PRECONDITION, "
         "...)\n"
         "  2    bad flags or arguments (nothing was sent)\n"
         "  3    INVALID_ARGUMENT, OUT_OF_RANGE (the request was refused)\n"
         "  4    UNAUTHENTICATED (missing or bad API key)\n"
         "  5    PERMISSION_DENIED\n"
         "  6    NOT_FOUND (e.g. history of an unknown session)\n"
         "  7    RESOURCE_EXHAUSTED (rate limit, budget or quota)\n"
         "  8    UNAVAILABLE, DEADLINE_EXCEEDED (unreachable or too slow; "
         "retry)\n"
         "  130  CANCELLED (Ctrl-C)\n";
}

}  // namespace chat::cli
