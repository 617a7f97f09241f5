#ifndef CHAT_SERVER_LLM_REQUEST_JSON_H_
#define CHAT_SERVER_LLM_REQUEST_JSON_H_

// The pieces of a provider request body, written straight into one string
// instead of built as an nlohmann document and dumped. Each piece has the
// bytes nlohmann's `dump(-1, ' ', false, error_handler_t::replace)` gives
// (the providers' bodies were made that way, and request_json_test holds
// them to it), so a body reads the same to the provider either way.

#include <string>

#include "absl/strings/string_view.h"

namespace chat::llm {

// Appends `text` as a quoted JSON string: `"` and `\` escaped, \b \f \n \r
// \t for those controls, \u00xx (lowercase) for the other bytes below 0x20,
// everything else (DEL, non-ASCII) as is. Ill-formed UTF-8 becomes U+FFFD
// exactly as nlohmann replaces it.
void AppendJsonString(absl::string_view text, std::string* out);

// Appends `value` as nlohmann prints a double (shortest round trip, "1.0"
// for integral values, null for NaN and infinities).
void AppendJsonDouble(double value, std::string* out);

}  // namespace chat::llm

#endif  // CHAT_SERVER_LLM_REQUEST_JSON_H_
