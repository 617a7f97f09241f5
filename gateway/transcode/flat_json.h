#ifndef CHAT_GATEWAY_TRANSCODE_FLAT_JSON_H_
#define CHAT_GATEWAY_TRANSCODE_FLAT_JSON_H_

// A fast path for the request bodies nearly every call sends
// (`{"message":"...","session_id":"..."}`): a one-pass reader that sets the
// fields straight through reflection, instead of a syntax check with
// nlohmann followed by protobuf's JSON parser (which goes through a type
// resolver and a binary round trip).
//
// It is a strict reader of one shape and says no to anything it is not sure
// of; the caller then takes protobuf's path, so what a body means (and every
// error message) never depends on which path read it. transcoder_test's
// differential cases and the transcoder fuzzer compare the two.

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace chat::gateway {

// Reads `body` into `message` (expected empty) and returns true when `body`
// is one JSON object (RFC 8259, JSON whitespace around it) whose members each
// name a different singular field of the message by its proto or JSON name,
// with one of these values: a string without \u escapes, of well-formed
// UTF-8, for a string field; a JSON integer in range for an integer field;
// true or false for a bool field; a non-zero finite number (an integer of at
// most 15 digits, or one with a fraction or exponent) for a double field.
// Otherwise (unknown or repeated keys, null, enums, floats, bytes, messages,
// oneof members, well-known types, anything else) returns false and leaves
// `message` in an unspecified state: clear it before reading it again.
bool ReadFlatJsonObject(absl::string_view body,
                        google::protobuf::Message* message);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_FLAT_JSON_H_
