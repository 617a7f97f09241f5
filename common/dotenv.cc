#include "common/dotenv.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace chat {
namespace {

bool IsValidName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-')
      return false;
  }
  return true;
}

std::string Unescape(absl::string_view quoted) {
  std::string out;
  for (size_t i = 0; i < quoted.size(); ++i) {
    char c = quoted[i];
    if (c == '\\' && i + 1 < quoted.size()) {
      char next = quoted[++i];
      switch (next) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        default:
          out.push_back('\\');
          out.push_back(next);
      }
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ParseDotEnv(
    absl::string_view text) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);  // Also drops a '\r'.
    if (line.empty() || line.front() == '#') continue;
    if (absl::ConsumePrefix(&line, "export "))
      line = absl::StripLeadingAsciiWhitespace(line);
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::string_view name = absl::StripAsciiWhitespace(line.substr(0, eq));
    absl::string_view value =
        absl::StripLeadingAsciiWhitespace(line.substr(eq + 1));
    if (!IsValidName(name)) continue;
    std::string parsed;
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      const char quote = value.front();
      // The closing quote is the last unescaped one; what follows may be a
      // comment.
      size_t close = absl::string_view::npos;
      for (size_t i = 1; i < value.size(); ++i) {
        if (quote == '"' && value[i] == '\\') {
          ++i;
          continue;
        }
        if (value[i] == quote) {
          close = i;
          break;
        }
      }
      if (close == absl::string_view::npos) {
        parsed = std::string(value);  // Unterminated: taken as written.
      } else if (quote == '"') {
        parsed = Unescape(value.substr(1, close - 1));
      } else {
        parsed = std::string(value.substr(1, close - 1));
      }
    } else {
      if (size_t hash = value.find(" #"); hash != absl::string_view::npos) {
        value = value.substr(0, hash);
      }
      if (absl::StartsWith(value, "#")) value = "";
      parsed = std::string(absl::StripTrailingAsciiWhitespace(value));
    }
    pairs.emplace_back(std::string(name), std::move(parsed));
  }
  return pairs;
}

absl::StatusOr<std::vector<std::string>> LoadDotEnvFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(path + " does not exist or cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> set;
  for (auto& [name, value] : ParseDotEnv(text.str())) {
    if (std::getenv(name.c_str()) != nullptr) continue;
    setenv(name.c_str(), value.c_str(), /*overwrite=*/0);
    set.push_back(name);
  }
  return set;
}

}  // namespace chat
