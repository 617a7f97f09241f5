#ifndef CHAT_TESTS_TESTING_METRICS_SCRAPE_H_
#define CHAT_TESTS_TESTING_METRICS_SCRAPE_H_

// Reading a /metrics endpoint as Prometheus would, and checking its text
// with Prometheus's own linter.

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chat::testing {

// promtool's path: found on PATH at configure time, else /usr/bin/promtool;
// empty if neither exists.
std::string PromtoolPath();

// True when the test must fail rather than skip without promtool
// (CHAT_TEST_REQUIRE_PROMTOOL=1, as scripts/test.sh and CI set).
bool PromtoolRequired();

// Runs `promtool check metrics` on `text`: OK, or kFailedPrecondition with
// promtool's complaints. Lint warnings (such as a counter without _total)
// count as failures, because promtool exits non-zero for them.
absl::Status PromtoolCheckMetrics(absl::string_view text);

// Runs `promtool check rules` on a rules file's `yaml`: OK, or
// kFailedPrecondition with promtool's complaints (a query that does not
// parse as PromQL, for one).
absl::Status PromtoolCheckRules(absl::string_view yaml);

// GET http://127.0.0.1:`port``path` with curl; the body of a 200, else an
// error naming the status.
absl::StatusOr<std::string> HttpGetBody(int port, absl::string_view path);

// The value of the sample whose line starts with `series` (name and labels
// exactly as rendered, such as `a_total{code="OK"}`), or nullopt.
std::optional<double> SampleValue(absl::string_view text,
                                  absl::string_view series);

}  // namespace chat::testing

#endif  // CHAT_TESTS_TESTING_METRICS_SCRAPE_H_
