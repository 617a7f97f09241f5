#ifndef CHAT_GATEWAY_TRANSCODE_STATUS_MAPPING_H_
#define CHAT_GATEWAY_TRANSCODE_STATUS_MAPPING_H_

#include <string>

#include "absl/strings/string_view.h"
#include "gateway/http/http_server.h"
#include "grpcpp/support/status.h"

namespace chat::gateway {

// An error as the gateway answers it: the HTTP status and a JSON body shaped
// like google.rpc.Status, {"code": <grpc code>, "message": str, "details": []}.
struct HttpError {
  int http_status = 500;
  int grpc_code = 2;
  std::string message;
  // chat-server's google.rpc.ErrorInfo, when it sent one: shown in
  // "details" as {"@type": ".../google.rpc.ErrorInfo", "reason", "domain"}.
  std::string reason;
  std::string domain;
};

// The ErrorInfo reason of a request id (REST: Idempotency-Key) reused for
// another request: FAILED_PRECONDITION for gRPC clients, answered 409
// Conflict over REST (docs/API.md, "Idempotent turns") rather than the 400 of
// that code's row: the request conflicts with what the key already names, as
// the rows that answer 409 (ABORTED, ALREADY_EXISTS) do.
inline constexpr absl::string_view kIdempotencyKeyReusedReason =
    "IDEMPOTENCY_KEY_REUSED";

// The HTTP status for a gRPC status code: the table grpc-gateway and Google
// APIs use (envoyproxy/envoy source/common/grpc/status.cc, grpcToHttpStatus;
// googleapis google/rpc/code.proto). The one place the gateway maps codes.
// `code` is an int because a peer may send any grpc-status; codes outside
// the table answer 500.
int HttpStatusFromGrpc(int code);

// Whether `status` comes from the gRPC channel failing to reach chat-server
// (rather than from chat-server itself).
bool IsChannelFailure(const grpc::Status& status);

// The gateway's answer for a failed call. A channel failure's message, which
// names internal addresses, is replaced by a generic one (and logged). An
// ErrorInfo in the status details is kept; its reason may choose the HTTP
// status where the code's row is too coarse (kIdempotencyKeyReusedReason).
HttpError ToHttpError(const grpc::Status& status);

// An error the gateway itself raises (bad JSON, unknown route...): the HTTP
// status given, with the gRPC code that means the same.
HttpError MakeHttpError(int http_status, grpc::StatusCode code,
                        std::string message);

// {"code":..,"message":..,"details":[]}.
std::string ErrorBody(const HttpError& error);

// The headers an error answer carries besides its body's: a 401 (an API key
// missing, unknown, revoked or expired) says how to authenticate,
// `WWW-Authenticate: Bearer` (RFC 6750 section 3; RFC 9110 section 15.5.2
// requires the header on a 401), and names no key.
HttpHeaders ErrorHeaders(const HttpError& error);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_STATUS_MAPPING_H_
