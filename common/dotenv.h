#ifndef CHAT_COMMON_DOTENV_H_
#define CHAT_COMMON_DOTENV_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chat {

// Parses the text of a `.env` file as python-dotenv does for the common
// cases: `KEY=VALUE` lines, an optional `export ` prefix, blank lines and
// `#` comments, spaces around the key and an unquoted value trimmed, a ` #`
// comment after an unquoted value dropped, 'single quotes' taken literally,
// "double quotes" with \n, \t, \" and \\ escapes. Lines that are not
// assignments are skipped. Returns the pairs in file order.
std::vector<std::pair<std::string, std::string>> ParseDotEnv(
    absl::string_view text);

// Reads `path` (if it exists) and sets each variable it assigns that the
// environment does not already have: the real environment wins. Returns the
// names it set (never their values, which may be keys). kNotFound if there is
// no such file.
absl::StatusOr<std::vector<std::string>> LoadDotEnvFile(
    const std::string& path);

}  // namespace chat

#endif  // CHAT_COMMON_DOTENV_H_
