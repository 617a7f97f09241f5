#ifndef CHAT_GATEWAY_OPENAPI_OPENAPI_H_
#define CHAT_GATEWAY_OPENAPI_OPENAPI_H_

#include <string>

#include "gateway/openapi/proto_docs.h"
#include "gateway/transcode/routes.h"

namespace chat::gateway {

// An OpenAPI 3.0 document for every route of `routes`, built from the same
// descriptors and annotations the gateway serves: paths and methods, path
// and query parameters, request bodies and responses with schemas made from
// the message descriptors (proto field names, 64-bit integers as integers,
// as the gateway prints them), the streaming formats, and the error body.
// The Python template's routes (gateway/compat's table) are marked as such,
// with their own streaming format and paging. The chat and key-creation
// bodies and the session_id path parameter carry examples that succeed as
// they stand, for "Try it out" on /docs.
// With `docs`, the proto's comments become descriptions.
std::string GenerateOpenApi(const RouteTable& routes, const std::string& title,
                            const std::string& version,
                            const ProtoDocs* docs = nullptr);

}  // namespace chat::gateway

#endif  // CHAT_GATEWAY_OPENAPI_OPENAPI_H_
