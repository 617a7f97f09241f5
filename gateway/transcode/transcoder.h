#ifndef CHAT_GATEWAY_TRANSCODE_TRANSCODER_H_
#define CHAT_GATEWAY_TRANSCODE_TRANSCODER_H_

// JSON <-> protobuf for the gateway, with protobuf's own JSON mapping
// (util/json_util.h) and the two adjustments the REST contract needs: field
// defaults are always printed (the template always sent `turn_count: 0`,
// `messages: []`), and 64-bit integers print as JSON numbers, not the
// strings proto3 JSON uses (the template sent counts as numbers).

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gateway/transcode/path_template.h"
#include "google/protobuf/message.h"

namespace chat::gateway {

// Builds the request message for `method` from the JSON `body` (bound as the
// annotation's `body_field` says: "*" the whole message, "" none, else one
// field), then the path variables and, when the body is not the whole
// message, the query parameters. Both the proto names and the lowerCamelCase
// JSON names are accepted; unknown JSON fields and query parameters are
// ignored. INVALID_ARGUMENT with a message saying where the input is wrong.
absl::StatusOr<std::unique_ptr<google::protobuf::Message>> BuildRequest(
    const google::protobuf::Descriptor* request_type,
    absl::string_view body_field, absl::string_view body,
    const std::vector<Binding>& path_bindings,
    const std::vector<Binding>& query);

// Checks that `text` is one JSON object; INVALID_ARGUMENT saying at which
// byte and why when it is not.
absl::Status CheckJsonObject(absl::string_view text);

// The message as JSON: proto field names, defaults printed, 64-bit integers
// as numbers. Compact (no spaces).
std::string MessageToJson(const google::protobuf::Message& message);

// The same through util::MessageToJsonString (and, for types with a 64-bit
// field, an nlohmann parse that makes them numbers): what MessageToJson
// falls back to for what its one-pass printer does not handle, and the
// reference the differential tests compare it with.
std::string MessageToJsonViaProtobuf(const google::protobuf::Message& message);

// Sets the field at `field_path` ("a.b" for nested messages; proto or JSON
// names) from its text form, as a path variable or query parameter gives
// it. A repeated field gets `value` appended.
absl::Status SetFieldFromString(google::protobuf::Message* message,
                                absl::string_view field_path,
                                absl::string_view value);

// One event of a server stream, split for the streaming formats: a message
// whose single set oneof field is a message (ChatStreamResponse's `delta` /
// `done`) becomes that field's name and JSON; any other message is
// ("message", whole JSON).
struct StreamEventParts {
  std::string name;
  std::string json;
  // The `text` string field of the event's payload, when it has one (the
  // delta's text): what the template's raw-text stream carries.
  std::string text;
  bool has_text = false;
  // The event's top-level `event_id` string field, when set: the SSE `id:`
  // a client resumes after (ChatStreamResponse.event_id).
  std::string id;
};
StreamEventParts SplitStreamEvent(const google::protobuf::Message& event);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_TRANSCODE_TRANSCODER_H_
