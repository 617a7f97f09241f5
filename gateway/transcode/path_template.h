#ifndef CHAT_GATEWAY_TRANSCODE_PATH_TEMPLATE_H_
#define CHAT_GATEWAY_TRANSCODE_PATH_TEMPLATE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace chat::gateway {

// A field path bound by a URL ("session_id", or "a.b" for a nested field)
// and its percent-decoded value.
using Binding = std::pair<std::string, std::string>;

// A google.api.http path template (googleapis google/api/http.proto):
//   Template = "/" Segments [ Verb ] ;  Segment = "*" | "**" | LITERAL |
//   Variable Variable = "{" FieldPath [ "=" Segments ] "}" ;  Verb = ":"
//   LITERAL
// Supported variables are `{f}`, `{f=*}` (one segment) and `{f=**}` (the
// rest of the path). Immutable once parsed; safe to share between threads.
class PathTemplate {
 public:
  // INVALID_ARGUMENT naming what is wrong if `text` is not a template.
  static absl::StatusOr<PathTemplate> Parse(absl::string_view text);

  // True if `path` (without the query) matches; then `bindings` holds the
  // variables, percent-decoded. `bindings` is untouched on a mismatch.
  bool Match(absl::string_view path, std::vector<Binding>* bindings) const;

  // The template as written in the proto, e.g. "/v1/sessions/{session_id}".
  const std::string& text() const { return text_; }
  // The variables' field paths, in order.
  std::vector<std::string> VariableNames() const;

 private:
  struct Segment {
    enum Kind { kLiteral, kAny, kRest } kind = kLiteral;
    std::string literal;   // kLiteral only.
    std::string variable;  // Field path bound to this segment, or empty.
  };
  std::string text_;
  std::vector<Segment> segments_;
  std::string verb_;  // Without the ':'; empty when the template has none.
};

// Decodes %XX escapes (and, when `plus_is_space`, '+' as in query strings).
// Malformed escapes are kept as written.
std::string PercentDecode(absl::string_view text, bool plus_is_space);

// Splits "a=1&b=x%20y" into decoded (name, value) pairs, in order.
std::vector<Binding> ParseQueryString(absl::string_view query);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_PATH_TEMPLATE_H_
