#include "server/service/rate_limit_metadata.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"

namespace chat {

std::string MetadataValue(const MetadataPairs& metadata,
                          absl::string_view key) {
  for (const auto& [name, value] : metadata) {
    if (name == key) return value;
  }
  return "";
}

std::string FormatResetDuration(absl::Duration d) {
  if (d < absl::Seconds(1)) {
    return absl::StrCat(
        std::max<int64_t>(
            0, absl::ToInt64Milliseconds(absl::Ceil(d, absl::Milliseconds(1)))),
        "ms");
  }
  const int64_t seconds = absl::ToInt64Seconds(absl::Ceil(d, absl::Seconds(1)));
  if (seconds < 60) return absl::StrCat(seconds, "s");
  return absl::StrCat(seconds / 60, "m", seconds % 60, "s");
}

MetadataPairs RateLimitMetadata(const RateLimitStatus& status) {
  MetadataPairs pairs;
  if (status.limit_requests > 0) {
    pairs.emplace_back("x-ratelimit-limit-requests",
                       absl::StrCat(status.limit_requests));
    pairs.emplace_back("x-ratelimit-remaining-requests",
                       absl::StrCat(status.remaining_requests));
    pairs.emplace_back("x-ratelimit-reset-requests",
                       FormatResetDuration(status.reset_requests));
  }
  if (status.limit_tokens > 0) {
    pairs.emplace_back("x-ratelimit-limit-tokens",
                       absl::StrCat(status.limit_tokens));
    pairs.emplace_back("x-ratelimit-remaining-tokens",
                       absl::StrCat(status.remaining_tokens));
    pairs.emplace_back("x-ratelimit-reset-tokens",
                       FormatResetDuration(status.reset_tokens));
  }
  return pairs;
}

MetadataPairs RefusalMetadata(const absl::Status& status) {
  MetadataPairs pairs;
  if (std::optional<RateLimitStatus> standing = RateLimitStatusOf(status)) {
    pairs = RateLimitMetadata(*standing);
  }
  if (std::optional<absl::Duration> retry_after = RetryAfterOf(status)) {
    pairs.emplace_back("retry-after",
                       absl::StrCat(std::max<int64_t>(
                           1, absl::ToInt64Seconds(absl::Ceil(
                                  *retry_after, absl::Seconds(1))))));
  }
  return pairs;
}

}  // namespace chat
