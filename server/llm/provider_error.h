#ifndef CHAT_SERVER_LLM_PROVIDER_ERROR_H_
#define CHAT_SERVER_LLM_PROVIDER_ERROR_H_

#include <curl/curl.h>

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

// Converts a transport failure (no usable HTTP response) into a Status:
// timeouts are kDeadlineExceeded, everything else kUnavailable.
absl::Status MapTransportError(absl::string_view provider, CURLcode code,
                               absl::string_view curl_message);

// Whether a failure that happened before any byte reached the client may be
// retried: connection failures and HTTP 429, 500, 502, 503, 529.
bool IsRetryableHttpStatus(int http_status);
bool IsRetryableTransportError(CURLcode code);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_PROVIDER_ERROR_H_
