#ifndef CHAT_GATEWAY_TRANSCODE_METADATA_H_
#define CHAT_GATEWAY_TRANSCODE_METADATA_H_

// Which HTTP headers travel to chat-server as gRPC metadata, which gRPC
// metadata come back as HTTP headers, and the deadline a request asks for.

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/trace_context.h"
#include "gateway/http/http_server.h"
#include "grpcpp/support/string_ref.h"

namespace chat::gateway {

// The metadata for a request:
// - `authorization` and `x-api-key`, the caller's credentials, as sent
//   (chat-server decides who the caller is; the gateway only forwards);
// - `idempotency-key`: the Idempotency-Key header, as sent (chat-server
//   takes it as the turn's request_id);
// - `last-event-id`: the Last-Event-ID header, as sent (ResumeStream resumes
//   after it);
// - `x-request-id`: `request_id`, the client's or one the gateway made;
// - `traceparent`: `traceparent` if not empty (GatewayTraceFor's);
// - `x-forwarded-for`: `client_address`, the peer of the HTTP connection, or
//   "unknown" if the socket could not tell. Whatever the client sent as
//   X-Forwarded-For (or Grpc-Metadata-X-Forwarded-For) is dropped: chat-server
//   lets anonymous callers in from loopback only, so a client must not be
//   able to claim to be 127.0.0.1;
// - each `Grpc-Metadata-<name>` header as `<name>` (grpc-gateway's
//   convention), except the keys above, which only their own header sets.
// Keys are lowercase, as gRPC requires; a header gRPC could not carry (a
// reserved `grpc-` key, a binary `-bin` key, a value with control
// characters) is left out rather than failing the call.
std::vector<std::pair<std::string, std::string>> ForwardedMetadata(
    const HttpRequest& request, absl::string_view request_id,
    absl::string_view client_address, absl::string_view traceparent = "");

// The response metadata chat-server sends that the gateway passes on as
// HTTP headers, by lowercase key: OpenAI's rate-limit headers
// (`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`) and
// `retry-after`. Everything else stays between chat-server and the gateway.
absl::Span<const absl::string_view> ResponseHeaderAllowList();

using GrpcMetadata = std::multimap<grpc::string_ref, grpc::string_ref>;

// The HTTP headers for an answer from the call's initial and trailing
// metadata: the allow-listed keys (ResponseHeaderAllowList), each once (the
// initial metadata's value wins over the trailing one's), with a value of
// printable ASCII only; named as OpenAI names them (`retry-after` as
// `Retry-After`). Either map may be null (not received).
HttpHeaders ResponseHeadersFromMetadata(const GrpcMetadata* initial,
                                        const GrpcMetadata* trailing);
// The same from a call answered without gRPC (gateway/app/local_method.h).
HttpHeaders ResponseHeadersFromMetadata(
    const std::vector<std::pair<std::string, std::string>>& initial,
    const std::vector<std::pair<std::string, std::string>>& trailing);

// Parses a Grpc-Timeout value (gRPC over HTTP/2 spec: 1-8 digits and a
// unit, H M S m u n). INVALID_ARGUMENT if malformed.
absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value);

// The client's x-request-id when it is a sane token (1-128 printable
// ASCII characters), else a new random one (32 hex digits).
std::string RequestIdFor(const HttpRequest& request);

// The request's trace: the client's `traceparent` when it is one valid
// header (W3C Trace Context), else a new trace; either way with a new span
// id for the gateway's part as parent_id, which is what chat-server gets.
TraceContext GatewayTraceFor(const HttpRequest& request);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_METADATA_H_
