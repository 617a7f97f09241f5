#include "server/llm/provider_error.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace chat::llm {
namespace {

// Keeps a provider's message short enough for a status and a log line.
std::string Shorten(absl::string_view text) {
  constexpr size_t kMax = 300;
  if (text.size() <= kMax) return std::string(text);
  return absl::StrCat(text.substr(0, kMax), "...");
}

}  // namespace

absl::Status MapProviderHttpError(absl::string_view provider, int http_status,
                                  absl::string_view error_type,
                                  absl::string_view detail) {
  std::string what = absl::StrCat(provider, " returned HTTP ", http_status);
  if (!error_type.empty())
    absl::StrAppend(&what, " (", Shorten(error_type), ")");
  switch (http_status) {
    case 400:
    case 413:
    case 422:
      if (!detail.empty()) absl::StrAppend(&what, ": ", Shorten(detail));
      return absl::InvalidArgumentError(what);
    case 401:
    case 403:
      return absl::InternalError(
          absl::StrCat(what, ": the server's ", provider,
                       " credentials were refused; check its API key"));
    case 404:
      if (!detail.empty()) absl::StrAppend(&what, ": ", Shorten(detail));
      return absl::FailedPreconditionError(absl::StrCat(
          what, "; check the model name and the provider's base URL"));
    case 408:
    case 504:
      return absl::DeadlineExceededError(what);
    case 429:
      return absl::ResourceExhaustedError(
          absl::StrCat(what, ": rate limited; retry later"));
    default:
      break;
  }
  if (http_status >= 500 && http_status <= 599) {
    return absl::UnavailableError(absl::StrCat(what, "; retry later"));
  }
  return absl::UnknownError(what);
}

int HttpStatusForErrorType(absl::string_view type) {
  struct Entry {
    absl::string_view type;
    int status;
  };
  // Anthropic's documented error types, then OpenAI-compatible ones.
  static constexpr Entry kTable[] = {
      {"invalid_request_error", 400},
      {"authentication_error", 401},
      {"permission_error", 403},
      {"not_found_error", 404},
      {"request_too_large", 413},
      {"rate_limit_error", 429},
      {"api_error", 500},
      {"overloaded_error", 529},
      {"invalid_api_key", 401},
      {"insufficient_quota", 429},
      {"rate_limit_exceeded", 429},
      {"tokens", 429},
      {"server_error", 500},
      {"model_not_found", 404},
      {"context_length_exceeded", 400},
  };
  for (const Entry& e : kTable) {
    if (e.type == type) return e.status;
  }
  return 500;
}

namespace {

bool IsConnectTimeout(const TransportFailure& f) {
  return f.code == CURLE_OPERATION_TIMEDOUT && !f.got_response && !f.stalled &&
         !f.deadline_passed;
}

}  // namespace

absl::Status MapTransportError(absl::string_view provider,
                               const TransportFailure& failure) {
  std::string what = absl::StrCat(
      provider, " request failed: ",
      Shorten(failure.message.empty() ? curl_easy_strerror(failure.code)
                                      : failure.message));
  if (IsConnectTimeout(failure)) {
    return absl::UnavailableError(
        absl::StrCat(what, " (no connection within --connect_timeout)"));
  }
  if (failure.code == CURLE_OPERATION_TIMEDOUT)
    return absl::DeadlineExceededError(what);
  return absl::UnavailableError(what);
}

bool IsRetryableHttpStatus(int http_status) {
  switch (http_status) {
    case 429:
    case 500:
    case 502:
    case 503:
    case 529:
      return true;
    default:
      return false;
  }
}

bool IsRetryableTransportFailure(const TransportFailure& failure) {
  if (failure.got_response) return false;
  if (IsConnectTimeout(failure)) return true;
  switch (failure.code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    // A kept-alive connection the server had closed: nothing was processed.
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
      return true;
    default:
      return false;
  }
}

}  // namespace chat::llm
