#ifndef CHAT_SERVER_SERVICE_RATE_LIMIT_METADATA_H_
#define CHAT_SERVER_SERVICE_RATE_LIMIT_METADATA_H_

// A key's rate-limit standing as gRPC metadata, named and formatted like the
// HTTP headers OpenAI sends (x-ratelimit-limit-requests: 60,
// x-ratelimit-reset-tokens: 6m0s, retry-after: 12), so the gateway passes
// them on unchanged and clients written for OpenAI read them.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/engine/key_quotas.h"

namespace chat {

using MetadataPairs = std::vector<std::pair<std::string, std::string>>;

// The first value of `key` in `metadata`, as gRPC's lookup finds it; "" if
// there is none.
std::string MetadataValue(const MetadataPairs& metadata, absl::string_view key);

// "17ms", "1s", "59s", "6m0s": rounded up, in the shape of Go durations.
std::string FormatResetDuration(absl::Duration d);

// The x-ratelimit-* entries for the kinds of limit `status` has.
MetadataPairs RateLimitMetadata(const RateLimitStatus& status);

// For a refused call: RateLimitMetadata of its payload and `retry-after` (whole
// seconds, at least 1). Empty for any other status.
MetadataPairs RefusalMetadata(const absl::Status& status);

}  // namespace chat

#endif  // CHAT_SERVER_SERVICE_RATE_LIMIT_METADATA_H_
