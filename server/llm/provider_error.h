#ifndef CHAT_SERVER_LLM_PROVIDER_ERROR_H_
#define CHAT_SERVER_LLM_PROVIDER_ERROR_H_

#include <curl/curl.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace chat::llm {

// Converts an upstream HTTP error response into our Status: the one place
// where provider answers become gRPC codes (ARCHITECTURE.md, "Status
// mapping"), split 4xx/5xx like google-cloud-cpp's MapHttpCodeToStatus:
//   400, 413, 422 -> kInvalidArgument (the request was refused as is)
//   401, 403      -> kInternal, naming the provider's credentials
//   404           -> kFailedPrecondition (a wrong model or base URL)
//   408           -> kDeadlineExceeded
//   429           -> kResourceExhausted
//   500, 502, 503, 529 and other 5xx -> kUnavailable; 504 -> kDeadlineExceeded
//   other codes   -> kUnknown
// `provider` ("anthropic", "openai") and `http_status` are named in the
// message, with `error_type` (the provider's error type, e.g.
// "overloaded_error") when known. `detail` (the provider's own message) is
// added only for 400-class errors about the request, where it tells the
// caller what to fix; it is never added for credential errors, whose
// messages may quote part of the key. The key and the request body are never
// part of the result.
absl::Status MapProviderHttpError(absl::string_view provider, int http_status,
                                  absl::string_view error_type = "",
                                  absl::string_view detail = "");

// The HTTP status a provider's error `type` stands for (Anthropic's
// "overloaded_error" is 529, OpenAI's "rate_limit_exceeded" is 429, ...), for
// errors that arrive inside a 200 stream. 500 for types we do not know.
int HttpStatusForErrorType(absl::string_view error_type);

// A transfer that ended without a usable HTTP response.
struct TransportFailure {
  CURLcode code = CURLE_OK;
  // curl's message (never holds request headers or the body).
  std::string message;
  // Response headers had arrived.
  bool got_response = false;
  // Our first-byte or idle timer ended it.
  bool stalled = false;
  // The caller's deadline had passed when it ended.
  bool deadline_passed = false;
};

// Converts a transport failure into a Status: a connect timeout (a timeout
// with no response, no stall and time left) is kUnavailable like any
// connection failure; other timeouts (first byte, idle, the deadline) are
// kDeadlineExceeded; everything else kUnavailable.
absl::Status MapTransportError(absl::string_view provider,
                               const TransportFailure& failure);

// Whether a transport failure may be retried: connection failures only
// (refused, unresolved, TLS handshake, a kept-alive connection found closed,
// the connect timeout), never once a response had started.
bool IsRetryableTransportFailure(const TransportFailure& failure);

// Whether an HTTP error that came before any byte reached the client may be
// retried: 429, 500, 502, 503, 529.
bool IsRetryableHttpStatus(int http_status);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_PROVIDER_ERROR_H_
