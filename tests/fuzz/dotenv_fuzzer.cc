// ParseDotEnv on arbitrary text (a `.env` file is outside input: whoever
// deploys writes it). Checks that every name it returns is one a `.env`
// assignment may set, and that there is at most one pair per line.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "common/dotenv.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, std::string>> pairs =
      chat::ParseDotEnv(text);

  const size_t lines =
      1 + static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
  FUZZ_CHECK(pairs.size() <= lines, "more assignments than lines");
  for (const auto& [name, value] : pairs) {
    FUZZ_CHECK(!name.empty(), "an empty name");
    for (char c : name) {
      FUZZ_CHECK(absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                     c == '_' || c == '.' || c == '-',
                 "a name with a character names may not have");
    }
    FUZZ_CHECK(value.size() <= text.size(), "a value longer than the file");
  }
  return 0;
}
