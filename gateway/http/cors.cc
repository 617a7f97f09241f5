#include "gateway/http/cors.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace chat::gateway {

CorsPolicy::CorsPolicy(absl::string_view origins) {
  for (absl::string_view origin :
       absl::StrSplit(origins, ',', absl::SkipWhitespace())) {
    origin = absl::StripAsciiWhitespace(origin);
    if (origin == "*") {
      any_ = true;
    } else {
      origins_.emplace_back(origin);
    }
  }
}

bool CorsPolicy::Allows(absl::string_view origin) const {
  if (origin.empty()) return false;
  return any_ ||
         std::find(origins_.begin(), origins_.end(), origin) != origins_.end();
}

HttpHeaders CorsPolicy::ResponseHeaders(absl::string_view origin) const {
  if (!Allows(origin)) return {};
  // Echoing the origin (rather than "*") works for credentialed requests
  // too; Vary keeps caches from serving one origin's answer to another.
  return {{"Access-Control-Allow-Origin", std::string(origin)},
          {"Vary", "Origin"},
          {"Access-Control-Expose-Headers", "x-request-id"}};
}

HttpHeaders CorsPolicy::PreflightHeaders(
    absl::string_view origin, const std::vector<std::string>& allowed,
    absl::string_view requested_headers) const {
  if (!Allows(origin)) return {};
  std::vector<std::string> methods = allowed;
  methods.push_back("OPTIONS");
  std::string headers(absl::StripAsciiWhitespace(requested_headers));
  if (headers.empty()) {
    // X-Api-Key: the other header an API key travels in.
    headers =
        "Content-Type, Authorization, X-Api-Key, X-Request-Id, Grpc-Timeout, "
        "Accept";
  }
  return {{"Access-Control-Allow-Methods", absl::StrJoin(methods, ", ")},
          {"Access-Control-Allow-Headers", headers},
          {"Access-Control-Max-Age", "600"}};
}

}  // namespace chat::gateway
