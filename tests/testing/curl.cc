#include "tests/testing/curl.h"

#include <unistd.h>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "tests/testing/server_process.h"

namespace chat::testing {

bool HaveCurl() { return access(kCurlBinary, X_OK) == 0; }

HttpResult Curl(const std::vector<std::string>& args, absl::Duration timeout) {
  std::vector<std::string> argv = {kCurlBinary, "-sS", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output;
  absl::StatusOr<int> code = RunCommand(argv, &output, timeout);
  HttpResult result;
  const size_t newline = output.rfind('\n');
  if (!code.ok() || *code != 0 || newline == std::string::npos ||
      !absl::SimpleAtoi(output.substr(newline + 1), &result.status)) {
    result.status = 0;
    result.body = output;
    return result;
  }
  result.body = output.substr(0, newline);
  return result;
}

}  // namespace chat::testing
