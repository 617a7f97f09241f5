#ifndef CHAT_TESTS_TESTING_CURL_H_
#define CHAT_TESTS_TESTING_CURL_H_

// The curl command run from a test against a server on loopback, with the
// HTTP status and the body of its answer apart. Tests that use it skip when
// HaveCurl() is false.

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace chat::testing {

inline constexpr char kCurlBinary[] = "/usr/bin/curl";

// Whether kCurlBinary can be run.
bool HaveCurl();

struct HttpResult {
  int status = 0;    // 0: curl failed (no answer).
  std::string body;  // With status 0: what curl printed, to say why.
};

// Runs `curl -sS ARGS` (killed after `timeout`) and reads the status code
// from a last line it has curl add with -w.
HttpResult Curl(const std::vector<std::string>& args,
                absl::Duration timeout = absl::Seconds(90));

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_CURL_H_
