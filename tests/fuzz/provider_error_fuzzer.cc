// The provider error parsers on arbitrary bytes: ParseErrorBody (an error
// response's JSON body), its mapping to a Status for the statuses that
// matter, and ParseRetryAfter on the same bytes as a header value. Checks
// the mapping's promises: never OK, and a credential error never carries
// the provider's message (it may quote the key).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/llm/http_streaming_provider.h"
#include "server/llm/provider_error.h"
#include "tests/fuzz/fuzz_check.h"

using chat::llm::HttpProviderOptions;
using chat::llm::HttpStatusForErrorType;
using chat::llm::MapProviderHttpError;
using chat::llm::ParseErrorBody;
using chat::llm::ParseRetryAfter;
using chat::llm::RetryDelay;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view body(reinterpret_cast<const char*>(data), size);

  std::string type, message;
  ParseErrorBody(body, &type, &message);

  const int from_type = HttpStatusForErrorType(type);
  FUZZ_CHECK(from_type >= 400 && from_type <= 599,
             "error type mapped outside 4xx/5xx");
  for (absl::string_view provider : {"anthropic", "openai"}) {
    for (int http_status :
         {from_type, 400, 401, 403, 404, 408, 413, 429, 500, 503, 529, 302}) {
      absl::Status status =
          MapProviderHttpError(provider, http_status, type, message);
      FUZZ_CHECK(!status.ok(), "an HTTP error mapped to OK");
      if (http_status == 401 || http_status == 403) {
        FUZZ_CHECK(
            status == MapProviderHttpError(provider, http_status, type, ""),
            "a credential error quotes the provider's message");
      }
    }
  }

  // The same bytes as retry-after headers: a wait is never negative.
  for (const char* header : {"retry-after", "retry-after-ms"}) {
    std::map<std::string, std::string> headers = {{header, std::string(body)}};
    std::optional<absl::Duration> wait = ParseRetryAfter(headers);
    if (wait.has_value()) {
      FUZZ_CHECK(*wait >= absl::ZeroDuration(), "a negative retry-after");
      absl::Duration delay = RetryDelay(1, HttpProviderOptions{}, 0.5, wait);
      FUZZ_CHECK(delay >= *wait,
                 "the retry came before the server's retry-after");
    }
  }
  return 0;
}
