#include "gateway/transcode/metadata.h"

#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace chat::gateway {
namespace {

constexpr absl::string_view kMetadataPrefix = "grpc-metadata-";

// Keys the gateway sets itself, or only from their own header: never from a
// Grpc-Metadata-<name> header.
constexpr absl::string_view kReservedKeys[] = {
    "x-request-id", "x-forwarded-for", "authorization", "x-api-key",
    "traceparent",  "idempotency-key", "last-event-id"};

// OpenAI's rate-limit headers and Retry-After, as OpenAI spells them (HTTP
// header names are case-insensitive; gRPC keys are lowercase).
constexpr absl::string_view kResponseHeaders[] = {
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "retry-after"};

bool IsReservedKey(absl::string_view key) {
  for (absl::string_view reserved : kReservedKeys) {
    if (key == reserved) return true;
  }
  return false;
}

std::string HttpHeaderName(absl::string_view key) {
  if (key == "retry-after") return "Retry-After";
  return std::string(key);
}

bool IsPrintableAscii(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool IsValidKey(absl::string_view key) {
  if (key.empty() || absl::StartsWith(key, "grpc-") ||
      absl::EndsWith(key, "-bin")) {
    return false;
  }
  for (char c : key) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) ||
          absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-' ||
          c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> ForwardedMetadata(
    const HttpRequest& request, absl::string_view request_id,
    absl::string_view client_address, absl::string_view traceparent) {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("x-request-id", std::string(request_id));
  if (!traceparent.empty()) {
    out.emplace_back("traceparent", std::string(traceparent));
  }
  // "unknown" (RFC 7239's word for an unknown node) rather than nothing: with
  // no x-forwarded-for, chat-server would judge the gateway's own loopback
  // address instead.
  out.emplace_back("x-forwarded-for", client_address.empty()
                                          ? std::string("unknown")
                                          : std::string(client_address));
  for (const auto& field : request) {
    std::string name = absl::AsciiStrToLower(absl::string_view(
        field.name_string().data(), field.name_string().size()));
    std::string value(field.value().data(), field.value().size());
    std::string key;
    if (name == "authorization" || name == "x-api-key" ||
        name == "idempotency-key" || name == "last-event-id") {
      key = name;
    } else if (absl::StartsWith(name, kMetadataPrefix)) {
      key = name.substr(kMetadataPrefix.size());
      if (IsReservedKey(key)) continue;
    } else {
      continue;
    }
    if (!IsValidKey(key) || !IsPrintableAscii(value)) continue;
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

absl::Span<const absl::string_view> ResponseHeaderAllowList() {
  return kResponseHeaders;
}

namespace {

using MetadataPairs = std::vector<std::pair<std::string, std::string>>;

// The value of `key` in `metadata`, if it holds one.
std::optional<absl::string_view> Find(const GrpcMetadata& metadata,
                                      absl::string_view key) {
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}
std::optional<absl::string_view> Find(const MetadataPairs& metadata,
                                      absl::string_view key) {
  for (const auto& [name, value] : metadata) {
    if (name == key) return value;
  }
  return std::nullopt;
}

template <typename Metadata>
HttpHeaders ResponseHeadersFrom(const Metadata* initial,
                                const Metadata* trailing) {
  HttpHeaders out;
  for (absl::string_view key : kResponseHeaders) {
    for (const Metadata* metadata : {initial, trailing}) {
      if (metadata == nullptr) continue;
      std::optional<absl::string_view> value = Find(*metadata, key);
      if (!value.has_value()) continue;
      // A value that could split the header block never reaches the client.
      if (value->empty() || !IsPrintableAscii(*value)) continue;
      out.emplace_back(HttpHeaderName(key), std::string(*value));
      break;
    }
  }
  return out;
}

}  // namespace

HttpHeaders ResponseHeadersFromMetadata(const GrpcMetadata* initial,
                                        const GrpcMetadata* trailing) {
  return ResponseHeadersFrom(initial, trailing);
}

HttpHeaders ResponseHeadersFromMetadata(const MetadataPairs& initial,
                                        const MetadataPairs& trailing) {
  return ResponseHeadersFrom(&initial, &trailing);
}

absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (value.size() < 2 || value.size() > 9) {
    return absl::InvalidArgumentError(
        absl::StrFormat("malformed Grpc-Timeout \"%s\"", value));
  }
  int64_t amount = 0;
  absl::string_view digits = value.substr(0, value.size() - 1);
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrFormat("malformed Grpc-Timeout \"%s\"", value));
    }
  }
  if (!absl::SimpleAtoi(digits, &amount)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("malformed Grpc-Timeout \"%s\"", value));
  }
  switch (value.back()) {
    case 'H':
      return absl::Hours(amount);
    case 'M':
      return absl::Minutes(amount);
    case 'S':
      return absl::Seconds(amount);
    case 'm':
      return absl::Milliseconds(amount);
    case 'u':
      return absl::Microseconds(amount);
    case 'n':
      return absl::Nanoseconds(amount);
    default:
      return absl::InvalidArgumentError(absl::StrFormat(
          "malformed Grpc-Timeout \"%s\": the unit must be one of H M S m u n",
          value));
  }
}

std::string RequestIdFor(const HttpRequest& request) {
  auto it = request.find("x-request-id");
  if (it != request.end()) {
    absl::string_view id(it->value().data(), it->value().size());
    if (!id.empty() && id.size() <= 128 && IsPrintableAscii(id)) {
      return std::string(id);
    }
  }
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return absl::StrFormat("%016x%016x", rng(), rng());
}

}  // namespace chat::gateway

namespace chat::gateway {

TraceContext GatewayTraceFor(const HttpRequest& request) {
  std::optional<TraceContext> trace;
  // Several traceparent headers make it invalid (W3C Trace Context 3.2).
  if (request.count("traceparent") == 1) {
    auto it = request.find("traceparent");
    trace = ParseTraceparent(
        absl::string_view(it->value().data(), it->value().size()));
  }
  if (!trace.has_value()) trace = NewTraceContext();
  trace->parent_id = NewSpanId();
  return *std::move(trace);
}

}  // namespace chat::gateway
