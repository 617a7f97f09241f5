#ifndef CHAT_GATEWAY_OPENAPI_PROTO_DOCS_H_
#define CHAT_GATEWAY_OPENAPI_PROTO_DOCS_H_

// The comments of the API's proto, for the OpenAPI document. Generated code
// keeps no comments, so the build embeds a descriptor set made with
// `protoc --include_source_info` (gateway/CMakeLists.txt) and this reads it.

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace chat::gateway {

// Leading comments by full name: "chat.v1.ChatRequest",
// "chat.v1.ChatRequest.message", "chat.v1.ChatService.Chat". Immutable.
class ProtoDocs {
 public:
  // Reads a serialized google.protobuf.FileDescriptorSet; an unreadable one
  // gives no comments (the document is still valid, only terser).
  static ProtoDocs FromDescriptorSet(absl::string_view serialized);

  // The comment, as one paragraph per blank-line-separated block; "" if none.
  std::string Comment(absl::string_view full_name) const;

 private:
  absl::flat_hash_map<std::string, std::string> comments_;
};

// The comments of proto/chat/v1/chat.proto and
// proto/chat/admin/v1/admin.proto, embedded at build time.
const ProtoDocs& ChatProtoDocs();

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_OPENAPI_PROTO_DOCS_H_
