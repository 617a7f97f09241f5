#ifndef CHAT_GATEWAY_HTTP_CORS_H_
#define CHAT_GATEWAY_HTTP_CORS_H_

// Cross-origin resource sharing (WHATWG Fetch, "CORS protocol") for browser
// front ends served from another origin.

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gateway/http/http_server.h"

namespace chat::gateway {

// Which origins may call the gateway from a browser. Immutable; thread-safe.
class CorsPolicy {
 public:
  // `origins`: a comma-separated list
  // ("https://a.example,http://localhost:3000"),
  // "*" for any origin, or empty for none (same-origin pages only).
  explicit CorsPolicy(absl::string_view origins);

  // Headers every answer to a request from `origin` carries (none if the
  // origin is not allowed or absent).
  HttpHeaders ResponseHeaders(absl::string_view origin) const;

  // The extra headers of a preflight answer: the methods `allowed` and the
  // headers asked for (`requested_headers`, Access-Control-Request-Headers).
  HttpHeaders PreflightHeaders(absl::string_view origin,
                               const std::vector<std::string>& allowed,
                               absl::string_view requested_headers) const;

 private:
  bool Allows(absl::string_view origin) const;

  bool any_ = false;
  std::vector<std::string> origins_;
};

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_HTTP_CORS_H_
