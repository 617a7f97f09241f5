#ifndef CHAT_GATEWAY_TRANSCODE_JSON_PRINTER_H_
#define CHAT_GATEWAY_TRANSCODE_JSON_PRINTER_H_

// A one-pass, reflection-based JSON printer for the gateway's responses. It
// reproduces, byte for byte, what MessageToJson's reference path prints
// (protobuf 3.21's util::MessageToJsonString with preserve_proto_field_names
// and always_print_primitive_fields, then, for types with a 64-bit field, a
// parse and re-dump by nlohmann with the 64-bit strings made numbers),
// without the binary round trip, the type resolver and the second JSON pass
// those take. What it does not model it refuses, so the caller falls back.

#include <string>

#include "google/protobuf/message.h"

namespace chat::gateway {

enum class JsonPrintStyle {
  // util::MessageToJsonString's output as is: 64-bit integers as strings,
  // its string escaping (\u003c for '<', U+2028 escaped...) and doubles.
  kProtobuf,
  // That output read and dumped again by nlohmann::ordered_json, with every
  // 64-bit integer field a number: nlohmann's string escaping (control
  // characters only) and its shortest round-trip doubles.
  kNlohmannInt64AsNumbers,
};

// Appends `message` as JSON in `style` to `out` and returns true; returns
// false, with `out` in an unspecified state, when the message holds
// something this printer does not reproduce exactly (maps, well-known types,
// proto2, strings that are not valid UTF-8, nesting deeper than 32).
bool PrintJson(const google::protobuf::Message& message, JsonPrintStyle style,
               std::string* out);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_JSON_PRINTER_H_
