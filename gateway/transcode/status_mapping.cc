#include "gateway/transcode/status_mapping.h"

#include "absl/strings/match.h"
#include "common/logging.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "nlohmann/json.hpp"

namespace chat::gateway {

int HttpStatusFromGrpc(int code) {
  // Source: envoyproxy/envoy source/common/grpc/status.cc (grpcToHttpStatus),
  // the same table as grpc-gateway's HTTPStatusFromCode and
  // docs/ARCHITECTURE.md.
  switch (code) {
    case static_cast<int>(grpc::StatusCode::OK):
      return 200;
    case static_cast<int>(grpc::StatusCode::CANCELLED):
      return 499;  // Client Closed Request (nginx's convention).
    case static_cast<int>(grpc::StatusCode::UNKNOWN):
      return 500;
    case static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT):
      return 400;
    case static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED):
      return 504;
    case static_cast<int>(grpc::StatusCode::NOT_FOUND):
      return 404;
    case static_cast<int>(grpc::StatusCode::ALREADY_EXISTS):
      return 409;
    case static_cast<int>(grpc::StatusCode::PERMISSION_DENIED):
      return 403;
    case static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED):
      return 429;
    case static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION):
      return 400;
    case static_cast<int>(grpc::StatusCode::ABORTED):
      return 409;
    case static_cast<int>(grpc::StatusCode::OUT_OF_RANGE):
      return 400;
    case static_cast<int>(grpc::StatusCode::UNIMPLEMENTED):
      return 501;
    case static_cast<int>(grpc::StatusCode::INTERNAL):
      return 500;
    case static_cast<int>(grpc::StatusCode::UNAVAILABLE):
      return 503;
    case static_cast<int>(grpc::StatusCode::DATA_LOSS):
      return 500;
    case static_cast<int>(grpc::StatusCode::UNAUTHENTICATED):
      return 401;
    default:
      return 500;  // A code gRPC does not define.
  }
}

bool IsChannelFailure(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  // Raised by the gRPC channel itself, not by chat-server: they name the
  // backends' internal addresses and socket errors.
  // (gRPC core's wording: chat-server's own messages never start so.)
  for (const char* phrase :
       {"connections to all backends failing",
        "failed to connect to all addresses", "Socket closed"}) {
    if (absl::StrContains(status.error_message(), phrase)) return true;
  }
  return false;
}

HttpError ToHttpError(const grpc::Status& status) {
  HttpError error;
  error.http_status = HttpStatusFromGrpc(static_cast<int>(status.error_code()));
  error.grpc_code = static_cast<int>(status.error_code());
  error.message = status.error_message();
  google::rpc::Status details;
  if (!status.error_details().empty() &&
      details.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& detail : details.details()) {
      google::rpc::ErrorInfo info;
      if (!detail.UnpackTo(&info)) continue;
      error.reason = info.reason();
      error.domain = info.domain();
      break;
    }
  }
  if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION &&
      error.reason == kIdempotencyKeyReusedReason) {
    error.http_status = 409;
  }
  if (IsChannelFailure(status)) {
    // The details stay in the gateway's log, not in a client's hands.
    LogWarning("backend unreachable: ", status.error_message());
    error.message = "chat-server is unavailable; retry later";
  }
  return error;
}

HttpError MakeHttpError(int http_status, grpc::StatusCode code,
                        std::string message) {
  HttpError error;
  error.http_status = http_status;
  error.grpc_code = static_cast<int>(code);
  error.message = std::move(message);
  return error;
}

std::string ErrorBody(const HttpError& error) {
  nlohmann::ordered_json body;
  body["code"] = error.grpc_code;
  body["message"] = error.message;
  body["details"] = nlohmann::ordered_json::array();
  if (!error.reason.empty()) {
    // google.rpc.ErrorInfo in its proto3 JSON form, as grpc-gateway shows it.
    nlohmann::ordered_json info;
    info["@type"] = "type.googleapis.com/google.rpc.ErrorInfo";
    info["reason"] = error.reason;
    info["domain"] = error.domain;
    body["details"].push_back(std::move(info));
  }
  // `replace` keeps invalid UTF-8 from a backend message from throwing.
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpHeaders ErrorHeaders(const HttpError& error) {
  if (error.http_status == 401) return {{"WWW-Authenticate", "Bearer"}};
  return {};
}

}  // namespace chat::gateway
