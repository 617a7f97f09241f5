#include "gateway/transcode/path_template.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace chat::gateway {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = absl::ascii_tolower(static_cast<unsigned char>(c));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(absl::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::vector<Binding> ParseQueryString(absl::string_view query) {
  std::vector<Binding> out;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    out.emplace_back(PercentDecode(kv.first, true),
                     PercentDecode(kv.second, true));
  }
  return out;
}

absl::StatusOr<PathTemplate> PathTemplate::Parse(absl::string_view text) {
  PathTemplate t;
  t.text_ = std::string(text);
  if (text.empty() || text[0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("path template \"", text, "\" does not start with '/'"));
  }
  absl::string_view rest = text.substr(1);
  // The verb is a ':' after the last '/' that is outside braces.
  size_t last_slash = rest.rfind('/');
  size_t last_brace = rest.rfind('}');
  size_t search_from = last_slash == absl::string_view::npos ? 0 : last_slash;
  if (last_brace != absl::string_view::npos && last_brace > search_from) {
    search_from = last_brace;
  }
  size_t colon = rest.find(':', search_from);
  if (colon != absl::string_view::npos) {
    t.verb_ = std::string(rest.substr(colon + 1));
    // Verb = ":" LITERAL: with nothing after the ':' the template would match
    // the path without it, but never its own text.
    if (t.verb_.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("path template \"", text, "\" has an empty verb"));
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return t;  // "/" itself.
  for (absl::string_view part : absl::StrSplit(rest, '/')) {
    Segment seg;
    if (part.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("path template \"", text, "\" has an empty segment"));
    }
    if (part.front() == '{') {
      if (part.back() != '}') {
        return absl::InvalidArgumentError(
            absl::StrCat("path template \"", text, "\": unclosed variable"));
      }
      absl::string_view inner = part.substr(1, part.size() - 2);
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(inner, absl::MaxSplits('=', 1));
      seg.variable = std::string(kv.first);
      if (kv.second.empty() || kv.second == "*") {
        seg.kind = Segment::kAny;
      } else if (kv.second == "**") {
        seg.kind = Segment::kRest;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("path template \"", text,
                         "\": unsupported variable pattern ", kv.second));
      }
    } else if (part == "*") {
      seg.kind = Segment::kAny;
    } else if (part == "**") {
      seg.kind = Segment::kRest;
    } else {
      seg.literal = std::string(part);
    }
    if (!t.segments_.empty() && t.segments_.back().kind == Segment::kRest) {
      return absl::InvalidArgumentError(
          absl::StrCat("path template \"", text, "\": '**' must come last"));
    }
    t.segments_.push_back(std::move(seg));
  }
  return t;
}

bool PathTemplate::Match(absl::string_view path,
                         std::vector<Binding>* bindings) const {
  if (path.empty() || path[0] != '/') return false;
  absl::string_view rest = path.substr(1);
  if (!verb_.empty()) {
    // Strip the verb from the end: a variable may itself contain ':' (session
    // ids may), so only the suffix decides.
    std::string suffix = absl::StrCat(":", verb_);
    if (rest.size() < suffix.size() ||
        rest.substr(rest.size() - suffix.size()) != suffix) {
      return false;
    }
    rest = rest.substr(0, rest.size() - suffix.size());
  }
  std::vector<absl::string_view> parts;
  if (!rest.empty()) parts = absl::StrSplit(rest, '/');
  std::vector<Binding> found;
  size_t i = 0;
  for (const Segment& seg : segments_) {
    if (seg.kind == Segment::kRest) {
      if (i >= parts.size()) return false;
      std::string joined;
      for (size_t j = i; j < parts.size(); ++j) {
        if (j > i) joined.push_back('/');
        joined += PercentDecode(parts[j], false);
      }
      if (!seg.variable.empty()) found.emplace_back(seg.variable, joined);
      i = parts.size();
      break;
    }
    if (i >= parts.size()) return false;
    if (seg.kind == Segment::kLiteral) {
      if (parts[i] != seg.literal) return false;
    } else {
      if (parts[i].empty()) return false;
      if (!seg.variable.empty()) {
        found.emplace_back(seg.variable, PercentDecode(parts[i], false));
      }
    }
    ++i;
  }
  if (i != parts.size()) return false;
  bindings->insert(bindings->end(), found.begin(), found.end());
  return true;
}

std::vector<std::string> PathTemplate::VariableNames() const {
  std::vector<std::string> names;
  for (const Segment& seg : segments_) {
    if (!seg.variable.empty()) names.push_back(seg.variable);
  }
  return names;
}

}  // namespace chat::gateway
