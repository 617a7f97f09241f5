#include "tests/testing/metrics_scrape.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/server_process.h"

namespace chat::testing {

std::string PromtoolPath() {
  for (const char* candidate : {CHAT_PROMTOOL_BINARY, "/usr/bin/promtool"}) {
    if (candidate[0] != '\0' && access(candidate, X_OK) == 0) return candidate;
  }
  return "";
}

bool PromtoolRequired() {
  const char* v = std::getenv("CHAT_TEST_REQUIRE_PROMTOOL");
  return v != nullptr && std::string(v) == "1";
}

namespace {

// Runs `promtool check WHAT` on `text`, written to a file named `file`:
// `metrics` reads it on stdin, `rules` takes its path.
absl::Status PromtoolCheck(absl::string_view what, absl::string_view file,
                           absl::string_view text) {
  std::string promtool = PromtoolPath();
  if (promtool.empty()) {
    return absl::FailedPreconditionError("promtool not found");
  }
  std::string path = absl::StrCat(MakeTempDir(), "/", file);
  {
    std::ofstream out(path, std::ios::binary);
    out << text;
  }
  const std::string input = what == "metrics" ? " < '" : " '";
  std::string output;
  absl::StatusOr<int> code = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("'", promtool, "' check ", what, input, path, "'")},
      &output);
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("promtool check ", what, " exited ", *code, ": ", output));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status PromtoolCheckMetrics(absl::string_view text) {
  return PromtoolCheck("metrics", "metrics.txt", text);
}

absl::Status PromtoolCheckRules(absl::string_view yaml) {
  return PromtoolCheck("rules", "rules.yml", yaml);
}

absl::StatusOr<std::string> HttpGetBody(int port, absl::string_view path) {
  std::string output;
  const std::string marker = "\n__HTTP_STATUS__";
  absl::StatusOr<int> code = RunCommand(
      {"/usr/bin/curl", "-sS", "--max-time", "20", "-w",
       marker + "%{http_code}", absl::StrCat("http://127.0.0.1:", port, path)},
      &output, absl::Seconds(30));
  if (!code.ok()) return code.status();
  size_t at = output.rfind(marker);
  if (*code != 0 || at == std::string::npos) {
    return absl::UnavailableError(absl::StrCat("curl failed: ", output));
  }
  std::string status = output.substr(at + marker.size());
  output.resize(at);
  if (status != "200") {
    return absl::NotFoundError(absl::StrCat("HTTP ", status, ": ", output));
  }
  return output;
}

std::optional<double> SampleValue(absl::string_view text,
                                  absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, series) || line.size() <= series.size() ||
        line[series.size()] != ' ') {
      continue;
    }
    double v = 0;
    if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
  }
  return std::nullopt;
}

}  // namespace chat::testing
