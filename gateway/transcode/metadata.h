#ifndef CHAT_GATEWAY_TRANSCODE_METADATA_H_
#define CHAT_GATEWAY_TRANSCODE_METADATA_H_

// Which HTTP headers travel to chat-server as gRPC metadata, and the
// deadline a request asks for.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gateway/http/http_server.h"

namespace chat::gateway {

// The metadata for a request: `authorization` and `x-request-id`
// (`request_id`, the client's or one the gateway made), and each
// `Grpc-Metadata-<name>` header as `<name>` (grpc-gateway's convention).
// Keys are lowercase, as gRPC requires; a header gRPC could not carry (a
// reserved `grpc-` key, a binary `-bin` key, a value with control
// characters) is left out rather than failing the call.
std::vector<std::pair<std::string, std::string>> ForwardedMetadata(
    const HttpRequest& request, absl::string_view request_id);

// Parses a Grpc-Timeout value (gRPC over HTTP/2 spec: 1-8 digits and a
// unit, H M S m u n). INVALID_ARGUMENT if malformed.
absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value);

// The client's x-request-id when it is a sane token (1-128 printable
// ASCII characters), else a new random one (32 hex digits).
std::string RequestIdFor(const HttpRequest& request);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_METADATA_H_
