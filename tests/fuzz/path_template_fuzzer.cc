// PathTemplate::Parse and Match, PercentDecode and ParseQueryString on
// arbitrary text. The input is "TEMPLATE\nPATH\nQUERY" (missing lines are
// empty). Checks Match's contract: on a mismatch the bindings are untouched;
// on a match there is one binding per variable, in order; and a template
// without variables or wildcards matches its own text.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gateway/transcode/path_template.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using chat::gateway::Binding;
  using chat::gateway::PathTemplate;
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<absl::string_view> lines =
      absl::StrSplit(input, absl::MaxSplits('\n', 2));
  lines.resize(3);
  const absl::string_view text = lines[0], path = lines[1], query = lines[2];

  for (const Binding& b : chat::gateway::ParseQueryString(query)) {
    FUZZ_CHECK(b.first.size() + b.second.size() <= query.size(),
               "decoding a query parameter made it longer");
  }
  FUZZ_CHECK(chat::gateway::PercentDecode(path, false).size() <= path.size(),
             "percent-decoding made the path longer");

  absl::StatusOr<PathTemplate> parsed = PathTemplate::Parse(text);
  if (!parsed.ok()) return 0;
  FUZZ_CHECK(parsed->text() == text, "text() is not the template as written");
  const std::vector<std::string> names = parsed->VariableNames();

  const std::vector<Binding> before = {{"sentinel", "value"}};
  std::vector<Binding> bindings = before;
  if (parsed->Match(path, &bindings)) {
    FUZZ_CHECK(bindings.size() == before.size() + names.size(),
               "a match did not bind every variable once");
    for (size_t i = 0; i < names.size(); ++i) {
      FUZZ_CHECK(bindings[before.size() + i].first == names[i],
                 "bindings are not in the variables' order");
    }
  } else {
    FUZZ_CHECK(bindings == before, "a mismatch changed the bindings");
  }

  if (!absl::StrContains(text, '{') && !absl::StrContains(text, '*')) {
    std::vector<Binding> own;
    FUZZ_CHECK(parsed->Match(text, &own),
               "a literal template does not match itself");
    FUZZ_CHECK(own.empty(), "a literal template bound something");
  }
  return 0;
}
